"""Weekend risk counted once: each factor moves over its own sessions; the holiday add-on
covers exactly the sessions a product trades beyond the MPOR before cash moves."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import context_of, future, random_walk
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin.engine import Options, run_margin
from tokenclear.market.calendars import sessions

SPECS = {"btc": Underlying("btc", calendar="24/7"), "es": Underlying("es", calendar="XNYS")}


def weekday_context(as_of: str, **config: object):
    days = 900
    prices = {"btc": random_walk(5, days, vol=0.03), "es": random_walk(6, days, vol=0.01)}
    return context_of(prices, [future("B", "btc"), future("E", "es")], [("a", "B", 1), ("b", "E", 1)],
                      specs=SPECS, risk_calendar="XNYS", cash_calendar="XNYS", as_of=np.datetime64(as_of),
                      **config), prices


def test_each_factor_moves_over_its_own_sessions_on_the_business_day_grid():
    context, prices = weekday_context("2022-06-10")
    start = np.datetime64("2020-01-01")
    monday = np.datetime64("2022-06-06")
    row = int(np.flatnonzero(context.move_dates == monday)[0])
    day = int((monday - start).astype(np.int64))
    btc, es = context.factors.names.index("btc"), context.factors.names.index("es")
    # BTC: two calendar days, Saturday to Monday; never Thursday to Monday folded onto the grid
    assert context.moves[row, btc] == pytest.approx(prices["btc"][day] / prices["btc"][day - 2] - 1.0, rel=1e-12)
    # ES: two XNYS sessions, Thursday to Monday
    assert context.moves[row, es] == pytest.approx(prices["es"][day] / prices["es"][day - 4] - 1.0, rel=1e-12)
    assert context.move_dates.size == np.isin(context.move_dates, sessions("XNYS")).sum()  # scenario dates: XNYS


def test_the_weekend_is_charged_once_on_thursday_and_friday_and_never_on_other_days():
    by_day = {}
    for as_of in ("2022-06-06", "2022-06-07", "2022-06-08", "2022-06-09", "2022-06-10"):
        context, _ = weekday_context(as_of)
        run = run_margin(context, "hsvar", Options())
        by_day[as_of] = ({row.account: row for row in run.accounts}, run.holiday_days)
    for as_of, (rows, days) in by_day.items():
        weekend = as_of in ("2022-06-09", "2022-06-10")  # Thu: Fri..Mon; Fri: Sat..Tue
        assert days == {"B": 2 if weekend else 0, "E": 0}
        btc = rows["a"]
        expected = float(btc.base) * (np.sqrt(4 / 2) - 1) if weekend else 0.0
        assert float(btc.holiday_addon) == pytest.approx(expected, abs=0.02)
        assert float(rows["b"].holiday_addon) == 0.0  # ES never: it does not trade while cash is shut


def test_a_24_7_future_margined_on_a_business_day_grid_spans_two_days_in_every_scenario():
    context, prices = weekday_context("2022-06-10")
    btc = context.factors.names.index("btc")
    start = np.datetime64("2020-01-01")
    days = (context.move_dates - start).astype(np.int64)
    two_day = prices["btc"][days] / prices["btc"][days - 2] - 1.0
    np.testing.assert_allclose(context.moves[:, btc], two_day, rtol=1e-12)
