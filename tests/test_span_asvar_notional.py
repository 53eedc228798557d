"""SPAN-style, AS-VaR and percentage-of-notional margins on hand-checkable books."""

import numpy as np
import pytest

from tests.conftest import context_of, future, random_walk
from tokenclear.instruments.catalogue import Instrument
from tokenclear.margin import asvar, span
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.grid import SPAN_PRICE, SPAN_VOL, SPAN_WEIGHT

AS_OF = np.datetime64("2020-01-01") + 499
NO_ADDONS = Options(holiday=False)


def span_rows(context, pairs=None):
    options = Options(holiday=False, span_pairs=pairs)
    return {row.account: row for row in run_margin(context, "span", options).accounts}


def test_sixteen_cme_scenarios():
    assert SPAN_PRICE.size == SPAN_VOL.size == SPAN_WEIGHT.size == 16
    assert sorted(set(np.round(np.abs(SPAN_PRICE[:14]), 6))) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert SPAN_PRICE[14:].tolist() == [3.0, -3.0] and SPAN_WEIGHT[14:].tolist() == [0.35, 0.35]


def test_future_scan_risk_and_calendar_spread_charge_by_hand():
    prices = random_walk(21, 500)
    near, far = future("N", "x", "10", "2021-12-01"), future("F", "x", "10", "2022-06-01")
    context = context_of({"x": prices}, [near, far], [("outright", "N", 3), ("spread", "N", 1),
                                                      ("spread", "F", -1)])
    params = span.calibrate(context, context.window())
    scan = np.quantile(np.abs(prices[2:] / prices[:-2] - 1), 0.99)
    assert params.price_scan[0] == pytest.approx(scan)
    rows = span_rows(context)
    # outright: worst of 1.0 x scan and the extreme 3 x scan x 35% = 1.05 x scan
    assert float(rows["outright"].margin_usd) == pytest.approx(3 * 10 * prices[-1] * scan * 1.05, abs=0.01)
    # spread: scan risk nets to 0; intra-commodity charge = 10% x scan x exposure of one leg
    assert float(rows["spread"].components["scan_risk"]) == pytest.approx(0, abs=0.01)
    assert float(rows["spread"].margin_usd) == pytest.approx(0.10 * scan * 10 * prices[-1], abs=0.02)


def test_spot_month_charge_applies_only_near_expiry():
    prices = random_walk(22, 500)
    spot_month = future("S", "x", "1", str(AS_OF + 10))
    later = future("L", "x", "1", str(AS_OF + 90))
    context = context_of({"x": prices}, [spot_month, later], [("s", "S", 4), ("l", "L", 4)])
    rows = span_rows(context)
    scan = span.calibrate(context, context.window()).price_scan[0]
    assert float(rows["s"].components["spot_month_charge"]) == pytest.approx(0.25 * scan * 4 * prices[-1], rel=1e-4)
    assert float(rows["l"].components["spot_month_charge"]) == 0.0


def test_short_option_minimum_binds_for_far_out_of_the_money_short_calls():
    prices = random_walk(23, 500)
    call = Instrument("C", "option", "x", future("F", "x").multiplier, "USD", AS_OF + 60, strike=prices[-1] * 5,
                      option_type="call", volatility=0.2)
    context = context_of({"x": prices}, [call], [("short", "C", -7)])
    row = span_rows(context)["short"]
    scan = span.calibrate(context, context.window()).price_scan[0]
    assert float(row.margin_usd) == pytest.approx(0.10 * scan * prices[-1] * 7, abs=0.011)
    assert float(row.components["short_option_minimum"]) == pytest.approx(float(row.margin_usd), abs=0.02)


def test_inter_commodity_credit_lowers_a_correlated_spread():
    a = random_walk(24, 500)
    b = a * np.exp(np.random.default_rng(25).standard_normal(500) * 0.003)
    instruments = [future("A", "a", "1"), future("B", "b", "1")]
    context = context_of({"a": a, "b": b}, instruments, [("pair", "A", 10), ("pair", "B", -10)])
    pairs = [span.InterPair("a", "b", 1.0, 1.0)]
    params = span.calibrate(context, context.window(), pairs=pairs)
    assert 0.5 < params.pairs[0].credit_rate <= span.CREDIT_CAP
    with_credit = span_rows(context, pairs)["pair"]
    without = span_rows(context)["pair"]
    assert float(with_credit.components["inter_spread_credit"]) > 0
    assert float(with_credit.margin_usd) < 0.5 * float(without.margin_usd)


def test_asvar_publication_is_the_previous_weeks_friday():
    # Wednesday 2023-03-15 uses the set published Friday 2023-03-10; Monday too
    assert asvar.publication_date(np.datetime64("2023-03-15"), "XNYS") == np.datetime64("2023-03-10")
    assert asvar.publication_date(np.datetime64("2023-03-13"), "XNYS") == np.datetime64("2023-03-10")
    assert asvar.publication_date(np.datetime64("2023-03-17"), "XNYS") == np.datetime64("2023-03-10")
    # Good Friday 2023-04-07 closed: the set is published Thursday 2023-04-06
    assert asvar.publication_date(np.datetime64("2023-04-12"), "XNYS") == np.datetime64("2023-04-06")


def test_asvar_parameters_are_frozen_within_the_week_and_diversify():
    a = random_walk(26, 600)
    b = a * np.exp(np.random.default_rng(27).standard_normal(600) * 0.01)
    instruments = [future("A", "a"), future("B", "b")]
    entries = [("long_a", "A", 10), ("pair", "A", 10), ("pair", "B", -10), ("both", "A", 10), ("both", "B", 10)]
    monday = np.datetime64("2021-05-10")
    tuesday_context = context_of({"a": a, "b": b}, instruments, entries, as_of=monday + 1)
    monday_context = context_of({"a": a, "b": b}, instruments, entries, as_of=monday)
    first, second = asvar.calibrate(monday_context), asvar.calibrate(tuesday_context)
    assert first.published == second.published == "2021-05-07" and first.price_move == second.price_move
    got = {row.account: float(row.margin_usd) for row in run_margin(tuesday_context, "asvar", NO_ADDONS).accounts}
    assert got["pair"] < got["long_a"] < got["both"]
    # a single position: its worst-scenario loss at the full published price move
    move = second.price_move[0]
    assert got["long_a"] == pytest.approx(10 * a[monday_context.factors.grid.size] * move, rel=0.02)


def test_percentage_of_notional_by_hand():
    prices = random_walk(28, 500)
    context = context_of({"x": prices}, [future("X", "x", "100", "2022-01-01")], [("a", "X", -3)])
    rate = np.ceil(np.quantile(np.abs(prices[2:] / prices[:-2] - 1), 0.99) / 0.005 - 1e-9) * 0.005
    row = run_margin(context, "notional", NO_ADDONS).accounts[0]
    assert float(row.margin_usd) == pytest.approx(3 * 100 * context.resolved.forward[0] * rate, abs=0.02)
