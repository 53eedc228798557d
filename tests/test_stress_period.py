"""A stress period always exists: factors without history that far back move as their stated
long-history proxy, scaled; floor10y is refused on short history; APC defaults in the cycle."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import future, random_walk, series
from tokenclear.book.positions import book_from_entries
from tokenclear.errors import ConfigurationError
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin.context import RunConfig, build_context
from tokenclear.margin.engine import Options, run_margin
from tokenclear.market.history import MarketData

OLD, NEW = np.datetime64("2008-01-01"), np.datetime64("2020-01-01")
PERIOD = (np.datetime64("2008-09-01"), np.datetime64("2008-10-31"))


def stressed_context(beta: float | None, **config: object):
    proxy = random_walk(51, 700, vol=0.03)  # 2008-01-01 onwards, every calendar day
    young = random_walk(52, 500, vol=0.02)  # 2020-01-01 onwards
    market = MarketData({"proxy": series("proxy", proxy, OLD), "young": series("young", young, NEW)})
    specs = {"proxy": Underlying("proxy", calendar="24/7"),
             "young": Underlying("young", calendar="24/7", stress_proxy="proxy", stress_beta=beta)}
    catalogue = Catalogue({"Y": future("Y", "young")})
    book = book_from_entries([("a", "Y", 1)], catalogue)
    settings = {"risk_calendar": "24/7", "cash_calendar": "24/7", "min_scenarios": 10, "lookback": 250,
                "stress_period": PERIOD, **config}
    context = build_context(book=book, catalogue=catalogue, market=market, specs=specs,
                            config=RunConfig(**settings))  # type: ignore[arg-type]
    return context, proxy, young


def test_a_factor_without_history_moves_as_its_proxy_times_beta_in_the_stress_period():
    context, proxy, _ = stressed_context(1.5)
    rows = np.flatnonzero((context.move_dates >= PERIOD[0]) & (context.move_dates <= PERIOD[1]))
    assert rows.size == 61  # every day of September and October 2008 on the 24/7 grid
    days = (context.move_dates[rows] - OLD).astype(np.int64)
    np.testing.assert_allclose(context.moves[rows, 0], 1.5 * (proxy[days] / proxy[days - 2] - 1.0), rtol=1e-12)
    assert any("young moves as proxy x 1.500" in note for note in context.warnings)
    window = context.window()
    assert np.isin(rows, window).all() and window.size == 250 + 61  # the lookback plus the stress period
    stressed = context.stressed_rows()
    assert np.array_equal(stressed, rows)


def test_a_blank_beta_is_the_ratio_of_daily_volatilities():
    context, proxy, young = stressed_context(None)
    own = young[1:] / young[:-1] - 1
    theirs = proxy[1:] / proxy[:-1] - 1
    beta = own.std() / theirs.std()
    first = int(np.flatnonzero(context.move_dates >= PERIOD[0])[0])
    day = int((context.move_dates[first] - OLD).astype(np.int64))
    assert context.moves[first, 0] == pytest.approx(beta * (proxy[day] / proxy[day - 2] - 1), rel=1e-9)


def test_stressed_weight_uses_the_proxy_period_and_floor10y_is_refused_on_short_history():
    context, _, _ = stressed_context(3.0)
    row = run_margin(context, "hsvar", Options(holiday=False, apc="stressed-weight")).accounts[0]
    stressed_losses = -context.moves[context.stressed_rows(), 0] * context.resolved.notional[0]
    stressed = np.quantile(stressed_losses, 0.99)
    base = float(row.base)
    assert float(row.apc_addon) == pytest.approx(max(0.75 * base + 0.25 * stressed - base, 0.0), abs=0.02)
    with pytest.raises(ConfigurationError, match="floor10y APC needs 2,520 observations"):
        run_margin(context, "hsvar", Options(holiday=False, apc="floor10y"))
