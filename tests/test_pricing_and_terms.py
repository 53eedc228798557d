"""Pricers against independent computations; the term-structure rule; negative prices."""

import numpy as np
import pytest
from scipy import integrate, stats

from tests.conftest import context_of, future
from tokenclear.instruments.catalogue import Instrument
from tokenclear.instruments.pricing import bachelier, black76
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin.engine import Options, run_margin


def test_black76_put_call_parity_and_lognormal_expectation():
    forward, strike, years, vol = 100.0, 95.0, 0.5, 0.3
    call = black76(forward, strike, years, vol, True)
    put = black76(forward, strike, years, vol, False)
    assert call - put == pytest.approx(forward - strike, abs=1e-10)
    sigma = vol * np.sqrt(years)
    dist = stats.lognorm(s=sigma, scale=forward * np.exp(-0.5 * sigma**2))
    expected, _ = integrate.quad(lambda x: max(x - strike, 0.0) * dist.pdf(x), 0, 1000, limit=200)
    assert call == pytest.approx(expected, rel=1e-6)


def test_bachelier_against_numerical_integration_with_negative_forward():
    forward, strike, years, vol = -10.0, -5.0, 0.25, 40.0
    dist = stats.norm(loc=forward, scale=vol * np.sqrt(years))
    expected, _ = integrate.quad(lambda x: max(strike - x, 0.0) * dist.pdf(x), -200, 200, limit=200)
    assert bachelier(forward, strike, years, vol, False) == pytest.approx(expected, rel=1e-7)


def test_expired_options_are_intrinsic():
    assert black76(110.0, 100.0, 0.0, 0.3, True) == pytest.approx(10.0)
    assert bachelier(-40.0, -30.0, 0.0, 20.0, False) == pytest.approx(10.0)


def test_contract_months_get_different_margins_by_the_term_rule():
    rng = np.random.default_rng(11)
    prices = 60 * np.exp(np.cumsum(rng.standard_normal(500) * 0.03))
    specs = {"oil": Underlying("oil", calendar="24/7", carry_rate=0.02, term_decay=1.0)}
    near, far = future("NEAR", "oil", "1000", "2021-06-15"), future("FAR", "oil", "1000", "2022-06-15")
    context = context_of({"oil": prices}, [near, far], [("n", "NEAR", 1), ("f", "FAR", 1)], specs=specs)
    resolved = context.resolved
    as_of = np.datetime64("2020-01-01") + 499
    years = np.array([(np.datetime64("2021-06-15") - as_of).astype(int),
                      (np.datetime64("2022-06-15") - as_of).astype(int)]) / 365.25
    np.testing.assert_allclose(resolved.forward, prices[-1] * np.exp(0.02 * years))
    np.testing.assert_allclose(resolved.beta, np.exp(-1.0 * years))
    got = {row.account: float(row.margin) for row in run_margin(context, "hsvar", Options(holiday=False)).accounts}
    assert got["f"] < got["n"]  # the far month moves less (Samuelson effect)


def test_negative_prices_margin_with_absolute_moves_and_bachelier():
    rng = np.random.default_rng(12)
    prices = 20 + np.cumsum(rng.standard_normal(400) * 1.5)
    prices[-5:] = [18.27, 10.0, -37.63, 10.01, 12.0]  # April 2020's negative settlement inside the history
    specs = {"wti": Underlying("wti", calendar="24/7", returns="absolute", option_model="bachelier")}
    put = Instrument("P", "option", "wti", future("x", "wti").multiplier * 1000, "USD", np.datetime64("2021-06-01"),
                     strike=0.0, option_type="put", volatility=None)
    context = context_of({"wti": prices}, [future("CL", "wti", "1000", "2021-06-01"), put],
                         [("a", "CL", 10), ("b", "P", -10)], specs=specs)
    rows = run_margin(context, "hsvar", Options(holiday=False)).accounts
    assert all(np.isfinite(float(row.margin)) and row.margin > 0 for row in rows)
    # the 2-day move into -37.63 (18.27 -> -37.63 = -55.90) is the worst for the long future
    assert float(rows[0].margin) <= 10 * 1000 * 55.90 + 0.01


def test_relative_moves_on_a_negative_series_ask_for_absolute():
    from tokenclear.errors import MarketDataError

    prices = np.linspace(20, -5, 300)
    with pytest.raises(MarketDataError, match="returns=absolute"):
        context_of({"wti": prices}, [future("CL", "wti", "1000", "2021-06-01")], [("a", "CL", 1)])
