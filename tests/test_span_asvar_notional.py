"""SPAN-style, AS-VaR and percentage-of-notional margins on hand-checkable books."""

import numpy as np
import pytest

from tests.conftest import context_of, future, random_walk
from tokenclear.instruments.catalogue import Instrument
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin import asvar, span
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.grid import SCAN_THIRDS, SPAN_VOL

AS_OF = np.datetime64("2020-01-01") + 499
NO_ADDONS = Options(holiday=False)


def span_rows(context, pairs=None):
    options = Options(holiday=False, span_pairs=pairs)
    return {row.account: row for row in run_margin(context, "span", options).accounts}


def test_sixteen_cme_scenarios_with_the_extreme_move_a_product_parameter():
    assert len(SCAN_THIRDS) + 2 == SPAN_VOL.size == 16
    assert sorted(set(np.round(np.abs(SCAN_THIRDS), 6))) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    prices = random_walk(20, 500)
    specs = {"x": Underlying("x", calendar="24/7"),
             "y": Underlying("y", calendar="24/7", span_extreme_multiple=3.0, span_extreme_fraction=0.33)}
    context = context_of({"x": prices, "y": prices}, [future("X", "x"), future("Y", "y")],
                         [("a", "X", 1), ("a", "Y", 1)], specs=specs)
    model = span.Span.build(context, span.calibrate(context, context.window()))
    grid = model.grid
    assert grid.price_multiple[14:, 0].tolist() == [2.0, -2.0] and grid.price_multiple[14:, 1].tolist() == [3, -3]
    scan = model.parameters.price_scan[0] * prices[-1]
    # the extreme scenario counts 35% of a 2x move on x (70% of the range) and 33% of 3x on y (99%)
    assert grid.loss[0, 15] == pytest.approx(0.35 * 2 * scan, rel=1e-9)
    assert grid.loss[1, 15] == pytest.approx(0.33 * 3 * scan, rel=1e-9)


def test_future_scan_risk_and_calendar_spread_charge_by_hand():
    prices = random_walk(21, 500)
    near, far = future("N", "x", "10", "2021-12-01"), future("F", "x", "10", "2022-06-01")
    context = context_of({"x": prices}, [near, far], [("outright", "N", 3), ("spread", "N", 1),
                                                      ("spread", "F", -1)])
    params = span.calibrate(context, context.window())
    scan = np.quantile(np.abs(prices[2:] / prices[:-2] - 1), 0.99)
    assert params.price_scan[0] == pytest.approx(scan)
    rows = span_rows(context)
    # outright: worst of 1.0 x scan and the extreme 2 x scan x 35% = 0.70 x scan: a plain future pays its range
    assert float(rows["outright"].margin) == pytest.approx(3 * 10 * prices[-1] * scan, abs=0.01)
    # spread: scan risk nets to 0; intra-commodity charge = 10% x scan x exposure of one leg
    assert float(rows["spread"].components["scan_risk"]) == pytest.approx(0, abs=0.01)
    assert float(rows["spread"].margin) == pytest.approx(0.10 * scan * 10 * prices[-1], abs=0.02)


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
    assert float(row.margin) == pytest.approx(0.10 * scan * prices[-1] * 7, abs=0.011)
    assert float(row.components["short_option_minimum"]) == pytest.approx(float(row.margin), abs=0.02)


def option_book(entries):
    prices = random_walk(29, 500)
    expiry = AS_OF + 90
    month = future("F", "x", "50", str(expiry))
    later = future("G", "x", "50", str(AS_OF + 180))
    call = Instrument("C", "option", "x", month.multiplier, "USD", expiry, strike=prices[-1] * 1.05,
                      option_type="call", volatility=0.3)
    put = Instrument("P", "option", "x", month.multiplier, "USD", expiry, strike=prices[-1] * 0.95,
                     option_type="put", volatility=0.3)
    return context_of({"x": prices}, [month, later, call, put], entries), prices


def test_intra_commodity_spreads_form_between_different_months_only():
    context, _ = option_book([("covered", "F", 1), ("covered", "C", -1), ("strangle", "C", -1),
                                   ("strangle", "P", -1), ("calendar", "F", 1), ("calendar", "G", -1),
                                   ("both", "F", 1), ("both", "C", -1), ("both", "G", -1)])
    rows = span_rows(context)
    assert float(rows["covered"].components["intra_spread_charge"]) == 0.0  # one month: no spread
    assert float(rows["strangle"].components["intra_spread_charge"]) == 0.0
    scan = span.calibrate(context, context.window()).price_scan[0]
    model = span.Span.build(context, span.calibrate(context, context.window()))
    exposure = dict(zip(context.resolved.names, model.grid.exposure, strict=True))  # dV/dm per contract
    # calendar: December long one future, March short one: 10% x scan x the smaller month's exposure
    expected = span.INTRA_FLOOR * scan * min(exposure["F"], exposure["G"])
    assert float(rows["calendar"].components["intra_spread_charge"]) == pytest.approx(expected, abs=0.01)
    # both: December nets the future against the short call's delta first, then spreads against March
    december = exposure["F"] - exposure["C"]
    assert 0 < december < exposure["G"]
    expected = span.INTRA_FLOOR * scan * december
    assert float(rows["both"].components["intra_spread_charge"]) == pytest.approx(expected, abs=0.01)


def test_short_option_minimum_is_the_larger_side_not_the_sum():
    context, _ = option_book([("strangle", "C", -1), ("strangle", "P", -1), ("calls", "C", -3),
                                   ("calls", "P", -1)])
    rows = span_rows(context)
    scan = span.calibrate(context, context.window()).price_scan[0]
    forward = context.resolved.forward[context.resolved.names.index("C")]
    one = span.SOM_MULTIPLE * scan * forward * 50  # one short option's underlying exposure x the rate
    assert float(rows["strangle"].components["short_option_minimum"]) == pytest.approx(one, abs=0.01)
    assert float(rows["calls"].components["short_option_minimum"]) == pytest.approx(3 * one, abs=0.01)


def test_look_ahead_is_a_product_parameter_for_option_decay():
    prices = random_walk(30, 500)
    call = Instrument("C", "option", "x", future("F", "x").multiplier, "USD", AS_OF + 20, strike=prices[-1],
                      option_type="call", volatility=0.5)
    losses = []
    for days in (1, 5):
        specs = {"x": Underlying("x", calendar="24/7", span_lookahead_days=days)}
        context = context_of({"x": prices}, [call], [("long", "C", 1)], specs=specs)
        model = span.Span.build(context, span.calibrate(context, context.window()))
        losses.append(model.grid.loss[0, 0])  # price unchanged, vol up: what is lost is time decay
    from tokenclear.instruments.pricing import option_value
    vol_up = 0.5 * (1 + model.parameters.vol_scan[0])
    value = [float(option_value(np.array([False]), np.array([prices[-1]]), np.array([prices[-1]]),
                                np.array([years]), np.array([vol]), np.array([True]))[0])
             for years, vol in ((20 / 365.25, 0.5), (20 / 365.25 - 1 / 365, vol_up), (20 / 365.25 - 5 / 365, vol_up))]
    # a session of a 24/7 product is 365.25 / 365 calendar days
    assert losses[0] == pytest.approx(value[0] - value[1], rel=1e-9)
    assert losses[1] == pytest.approx(value[0] - value[2], rel=1e-9)


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
    assert float(with_credit.margin) < 0.5 * float(without.margin)


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
    got = {row.account: float(row.margin) for row in run_margin(tuesday_context, "asvar", NO_ADDONS).accounts}
    assert got["pair"] < got["long_a"] < got["both"]
    # a single position: its worst-scenario loss at the full published price move
    move = second.price_move[0]
    assert got["long_a"] == pytest.approx(10 * a[monday_context.factors.grid.size] * move, rel=0.02)


def test_percentage_of_notional_by_hand():
    prices = random_walk(28, 500)
    context = context_of({"x": prices}, [future("X", "x", "100", "2022-01-01")], [("a", "X", -3)])
    rate = np.ceil(np.quantile(np.abs(prices[2:] / prices[:-2] - 1), 0.99) / 0.005 - 1e-9) * 0.005
    row = run_margin(context, "notional", NO_ADDONS).accounts[0]
    assert float(row.margin) == pytest.approx(3 * 100 * context.resolved.forward[0] * rate, abs=0.02)
