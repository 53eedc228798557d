"""HS-VaR and filtered HS on small markets computed by hand, and their invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import context_of, future, random_walk
from tokenclear.book.positions import book_from_entries
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.historical import Historical
from tokenclear.margin.hsvar import scenario_risk

NO_ADDONS = Options(holiday=False)


def margin_of(context, method="hsvar"):
    return {row.account: float(row.margin) for row in run_margin(context, method, NO_ADDONS).accounts}


def test_hand_computed_one_day_var():
    # prices 100, 101, 99, 102, 98, 100, ...: 1-day relative moves known exactly
    prices = np.array([100.0, 101, 99, 102, 98, 100, 103, 97, 100, 104, 96, 100])
    context = context_of({"x": prices}, [future("X", "x", "10")], [("long", "X", 2), ("short", "X", -2)],
                         mpor_days=1, confidence=0.9, min_scenarios=5, required_history=5)  # no short-history add-on
    moves = prices[1:] / prices[:-1] - 1.0
    pnl_long = 2 * 10 * 100.0 * moves  # today's price is 100
    expected_long = np.quantile(-pnl_long, 0.9)
    expected_short = np.quantile(pnl_long, 0.9)
    got = margin_of(context)
    assert got["long"] == pytest.approx(expected_long, abs=0.01)
    assert got["short"] == pytest.approx(expected_short, abs=0.01)
    assert got["long"] != pytest.approx(got["short"], abs=1.0)  # skewed history, different margins


def test_overlapping_mpor_moves_and_stressed_period_inclusion():
    prices = random_walk(1, 600)
    context = context_of({"x": prices}, [future("X", "x")], [("a", "X", 1)], mpor_days=3, lookback=100,
                         stress_period=(np.datetime64("2020-01-10"), np.datetime64("2020-01-30")))
    rows = context.window()
    dates = context.move_dates[rows]
    assert rows.size == 100 + 21  # last 100 rows plus the 21 stressed days outside them
    first = int(np.flatnonzero(context.move_dates == np.datetime64("2020-01-10"))[0])
    assert context.moves[first, 0] == pytest.approx(prices[9] / prices[6] - 1.0)  # overlapping 3-day move
    assert dates.min() == np.datetime64("2020-01-10")


@given(st.integers(1, 50), st.integers(-30, 30).filter(lambda n: n != 0))
@settings(max_examples=25, deadline=None)
def test_margin_is_homogeneous_in_position_size(scale, base):
    prices = random_walk(2, 300, skew=3.0)
    context = context_of({"x": prices}, [future("X", "x", "5")], [("a", "X", base)], mpor_days=2)
    model = Historical.build(context, context.window(), filtered=False)
    one = scenario_risk(np.array([[base]]), model.pnl, measure="quantile", confidence=0.99).risk[0]
    many = scenario_risk(np.array([[base * scale]]), model.pnl, measure="quantile", confidence=0.99).risk[0]
    assert many == pytest.approx(scale * one, rel=1e-12)


def test_margin_rises_with_confidence_and_mpor(shipped_market):
    from tokenclear.instruments.catalogue import load_catalogue
    from tokenclear.instruments.underlyings import load_underlyings
    from tokenclear.margin.context import RunConfig
    from tokenclear.runner import Inputs, context_for
    from tokenclear.settings import PROJECT_DATA

    catalogue = load_catalogue(PROJECT_DATA / "instruments.csv")
    book = book_from_entries([("a", "ESZ18", 10)], catalogue)
    inputs = Inputs(catalogue, load_underlyings(PROJECT_DATA / "underlyings.csv"), book, shipped_market,
                    PROJECT_DATA / "market")
    as_of = np.datetime64("2018-11-30")
    values = {}
    for confidence in (0.95, 0.99, 0.995):
        for mpor in (1, 2, 5):
            context = context_for(inputs, RunConfig(confidence=confidence, mpor_days=mpor), as_of)
            values[confidence, mpor] = margin_of(context)["a"]
    for mpor in (1, 2, 5):
        assert values[0.95, mpor] < values[0.99, mpor] < values[0.995, mpor]
    for confidence in (0.95, 0.99, 0.995):
        assert values[confidence, 1] < values[confidence, 2] < values[confidence, 5]


def test_a_hedge_lowers_margin():
    a = random_walk(3, 400)
    b = a * np.exp(np.random.default_rng(4).standard_normal(400) * 0.002)  # b tracks a closely
    instruments = [future("A", "a"), future("B", "b")]
    context = context_of({"a": a, "b": b}, instruments, [("naked", "A", 10), ("hedged", "A", 10),
                                                         ("hedged", "B", -10)])
    got = margin_of(context)
    assert got["hedged"] < 0.3 * got["naked"]


def test_filtered_hs_scales_with_current_volatility():
    rng = np.random.default_rng(5)
    calm_then_wild = np.concatenate([rng.standard_normal(400) * 0.005, rng.standard_normal(60) * 0.04])
    prices = 100 * np.exp(np.cumsum(calm_then_wild))
    context = context_of({"x": prices}, [future("X", "x")], [("a", "X", 1)], mpor_days=1)
    plain, filtered = margin_of(context, "hsvar")["a"], margin_of(context, "fhs")["a"]
    assert filtered > 1.5 * plain  # calm history rescaled up to today's volatility


def test_drivers_name_worst_date_and_largest_contributor():
    a, b = random_walk(6, 300), random_walk(7, 300, vol=0.001)
    context = context_of({"a": a, "b": b}, [future("A", "a"), future("B", "b")], [("m", "A", 5), ("m", "B", 1)],
                         mpor_days=1)
    row = run_margin(context, "hsvar", NO_ADDONS).accounts[0]
    moves = a[1:] / a[:-1] - 1
    worst_day = np.datetime64("2020-01-01") + np.argmin(moves) + 1
    assert row.worst_scenario == str(worst_day)
    assert row.top_instruments[0][0] == "A"
