"""Add-ons, anti-procyclicality, backtesting statistics and variation margin."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from tests.conftest import context_of, future, random_walk
from tokenclear.book.positions import book_from_entries
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin.addons import concentration_addon, holiday_scale
from tokenclear.margin.backtest import (
    backtest_book,
    christoffersen,
    kupiec,
    run_backtest,
    traffic_light,
)
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.procyclicality import buffered_series, peak_to_trough
from tokenclear.margin.variation import variation_margin
from tokenclear.market.calendars import closed_cash_days


def test_closed_cash_days_on_a_friday_and_a_holiday():
    friday = np.datetime64("2023-03-10")
    assert closed_cash_days("24/7", "XNYS", friday, 2) == 2  # Sat to Tue: four days, two more than the MPOR
    assert closed_cash_days("XNYS", "XNYS", friday, 2) == 0
    assert closed_cash_days("24/7", "XNYS", np.datetime64("2023-03-09"), 2) == 2  # Thursday: Fri to Mon
    assert closed_cash_days("24/7", "XNYS", friday, 1) == 2  # Sat, Sun, Mon against one day
    assert closed_cash_days("24/7", "XNYS", np.datetime64("2023-03-14"), 2) == 0
    # Thursday before Good Friday 2023: crypto trades Friday to Sunday with no cash until Monday
    assert closed_cash_days("24/7", "XNYS", np.datetime64("2023-04-06"), 2) == 3


def test_holiday_addon_is_square_root_of_time_on_a_linear_book():
    prices = random_walk(31, 500)
    specs = {"btc": Underlying("btc", calendar="24/7")}
    friday = np.datetime64("2021-05-14")
    context = context_of({"btc": prices}, [future("B", "btc", "5")], [("a", "B", 10)], specs=specs,
                         risk_calendar="24/7", cash_calendar="XNYS", as_of=friday)
    row = run_margin(context, "hsvar", Options()).accounts[0]
    assert float(row.holiday_addon) == pytest.approx(float(row.base) * (np.sqrt(4 / 2) - 1), abs=0.02)
    assert holiday_scale(np.array([0, 2]), 2).tolist() == pytest.approx([1.0, np.sqrt(2)])


def test_concentration_addon_by_hand():
    quantity = np.array([[100.0, -50.0], [1.0, 0.0]])
    unit_long, unit_short = np.array([10.0, 4.0]), np.array([12.0, 5.0])
    notional = np.array([1000.0, 2000.0])
    capacity = np.array([25_000.0, np.inf])
    addon, days = concentration_addon(quantity, unit_long=unit_long, unit_short=unit_short, notional=notional,
                                      capacity_usd=capacity)
    assert days[0, 0] == pytest.approx(4.0) and days[1, 0] == pytest.approx(0.04)
    assert addon[0] == pytest.approx(10.0 * 100 * (np.sqrt(4.0) - 1))  # 1,000
    assert addon[1] == 0.0


def test_apc_options_never_lower_the_margin_and_buffer_is_25_percent():
    prices = random_walk(32, 2600)  # ten years and more, for the floor10y option
    context = context_of({"x": prices}, [future("X", "x")], [("a", "X", 5)], lookback=250, stress_window=100)
    base = float(run_margin(context, "hsvar", Options(holiday=False)).accounts[0].base)
    buffered = run_margin(context, "hsvar", Options(holiday=False, apc="buffer")).accounts[0]
    assert float(buffered.apc_addon) == pytest.approx(0.25 * base, abs=0.02)
    released = run_margin(context, "hsvar", Options(holiday=False, apc="buffer", apc_released_fraction=1.0))
    assert float(released.accounts[0].apc_addon) == 0.0
    for option in ("floor10y", "stressed-weight"):
        row = run_margin(context, "hsvar", Options(holiday=False, apc=option)).accounts[0]
        assert row.apc_addon >= 0 and float(row.margin) >= base


def test_peak_to_trough_and_buffer_release():
    assert peak_to_trough(np.array([2.0, 8.0, 4.0])) == 4.0
    base = np.concatenate([np.full(30, 100.0), np.full(10, 200.0)])
    buffered = buffered_series(base)
    assert buffered[0] == 125.0 and buffered[30] == 200.0  # buffer drawn down when the base doubles
    assert peak_to_trough(buffered) < peak_to_trough(base)


def test_kupiec_and_christoffersen_against_their_formulas():
    lr, p = kupiec(5, 250, 0.01)
    rate = 5 / 250
    expected = -2 * (245 * np.log(0.99) + 5 * np.log(0.01) - 245 * np.log(1 - rate) - 5 * np.log(rate))
    assert lr == pytest.approx(expected) and 0 < p < 1
    assert kupiec(0, 250, 0.01)[0] == pytest.approx(-2 * 250 * np.log(0.99))
    clustered = np.zeros(100, dtype=bool)
    clustered[[10, 11, 12, 13]] = True
    spread = np.zeros(100, dtype=bool)
    spread[[10, 35, 60, 85]] = True
    assert christoffersen(clustered)[0] > christoffersen(spread)[0]


def test_traffic_light_zones_match_basel_at_99_percent():
    zones = [traffic_light(x, 250, 0.01) for x in range(13)]
    assert zones == ["green"] * 5 + ["yellow"] * 5 + ["red"] * 3
    assert binom.cdf(4, 250, 0.01) < 0.95 <= binom.cdf(5, 250, 0.01)


def test_exceptions_are_near_one_percent_on_long_history(shipped_market):
    from tokenclear.instruments.catalogue import load_catalogue
    from tokenclear.instruments.underlyings import load_underlyings
    from tokenclear.margin.context import RunConfig, build_context
    from tokenclear.settings import PROJECT_DATA

    catalogue = load_catalogue(PROJECT_DATA / "instruments.csv")
    book = book_from_entries([("a", "ESH19", 10)], catalogue)
    context = build_context(book=book, catalogue=catalogue, market=shipped_market,
                            specs=load_underlyings(PROJECT_DATA / "underlyings.csv"),
                            config=RunConfig(lookback=1000), as_of=np.datetime64("2018-12-31"))
    result = run_backtest(context, np.array([10.0]), step=1)
    assert result.exceptions.size > 3000
    assert 0.005 < result.exception_rate < 0.02
    worst = int(np.argmax(result.realised_loss))
    assert result.exceptions[worst]  # the largest realised loss (October 2008) breached the margin
    assert any("overlap" in warning for warning in result.warnings)  # step 1 < MPOR 2
    independent = run_backtest(context, np.array([10.0]))  # default step = MPOR: non-overlapping windows
    assert independent.step == 2 and not independent.warnings
    grid = context.factors.grid
    gaps = np.diff(np.searchsorted(grid, independent.dates))
    assert gaps.min() >= 2  # each realised window ends where the next test starts, or before
    assert independent.exceptions.size == pytest.approx(result.exceptions.size / 2, abs=1)


def test_variation_margin_is_exact_and_sums_to_zero():
    catalogue = Catalogue({"X": future("X", "x", "0.1", "2024-01-01"), "Y": future("Y", "y", "50", "2024-01-01")})
    book = book_from_entries([("long", "X", 3), ("short", "X", -3), ("m", "Y", -7), ("m", "X", 1)], catalogue)
    price_0 = [Decimal("29374.1523"), Decimal("4000.25")]
    price_1 = [Decimal("27000.0001"), Decimal("4010.50")]
    rows = {row.account: row.vm for row in variation_margin(book, catalogue, price_0, price_1)}
    move_x = Decimal("0.1") * (Decimal("27000.0001") - Decimal("29374.1523"))  # -237.41522 per contract
    per_contract = move_x.quantize(Decimal("0.01"))  # -237.42: each contract's variation to the cent first
    assert rows["long"] == -3 * per_contract == Decimal("712.26")  # the long owes 3 x 237.42
    assert rows["short"] == Decimal("-712.26")
    assert rows["m"] == -(per_contract + (-7) * Decimal(50) * Decimal("10.25")) == Decimal("3824.92")
    assert rows["long"] + rows["short"] == 0  # the matched X legs cancel to the cent


PRICE = st.decimals("0.000001", "100000", places=6)


@settings(max_examples=60, deadline=None)
@given(multipliers=st.lists(st.decimals("0.001", "1000", places=3), min_size=1, max_size=4),
       moves=st.lists(st.tuples(PRICE, PRICE), min_size=4, max_size=4),
       legs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(-50, 50)), min_size=1, max_size=12))
def test_a_matched_book_pays_exactly_what_it_receives(multipliers, moves, legs):
    """Every long has its short among the accounts: VM paid equals VM received, to the cent, whatever the
    multipliers and prices (each contract's variation is taken to the cent before the quantities)."""
    names = [f"I{i}" for i in range(len(multipliers))]
    catalogue = Catalogue({name: future(name, "x", str(m), "2024-01-01") for name, m in zip(names, multipliers)})
    entries = []
    for account, instrument, quantity in legs:
        instrument %= len(names)
        entries += [(f"A{account}", names[instrument], quantity), (f"B{account}", names[instrument], -quantity)]
    totals: dict[tuple[str, str], int] = {}
    for account, instrument, quantity in entries:
        totals[(account, instrument)] = totals.get((account, instrument), 0) + quantity
    held = [(account, instrument, q) for (account, instrument), q in totals.items() if q]
    if not held:
        return
    book = book_from_entries(held, catalogue)
    price_0 = [moves[i][0] for i in range(len(book.instruments))]
    price_1 = [moves[i][1] for i in range(len(book.instruments))]
    rows = variation_margin(book, catalogue, price_0, price_1)
    assert sum(row.vm for row in rows) == 0
    assert all(row.vm == row.vm.quantize(Decimal("0.01")) for row in rows)


def test_every_method_backtests_as_a_margin_run_would_run_it_on_each_date():
    from tests.conftest import series
    from tokenclear.book.positions import Book
    from tokenclear.errors import ConfigurationError
    from tokenclear.instruments.catalogue import Catalogue
    from tokenclear.margin.context import RunConfig, build_context
    from tokenclear.market.history import MarketData

    prices = random_walk(71, 420)
    market = MarketData({"x": series("x", prices)})
    catalogue = Catalogue({"X": future("X", "x", "10")})
    config = RunConfig(risk_calendar="24/7", cash_calendar="24/7", min_scenarios=10, lookback=200,
                       required_history=10)
    book = Book(["p"], ["X"], np.array([[3]]))

    def rebuild(date):
        return build_context(book=book, catalogue=catalogue, market=market, specs={}, config=config, as_of=date)

    context = rebuild(None)
    for method in ("fhs", "span", "notional"):
        result = run_backtest(context, np.array([3.0]), method=method, rebuild=rebuild)
        assert result.method == method and result.exceptions.size > 50
        k = result.exceptions.size // 2
        dated = rebuild(result.dates[k])
        row = run_margin(dated, method, Options()).accounts[0]
        assert result.margin[k] == pytest.approx(float(row.base + row.holiday_addon))
        day = int((result.dates[k] - np.datetime64("2020-01-01")).astype(np.int64))
        assert result.realised_loss[k] == pytest.approx(-30 * (prices[day + 2] - prices[day]), rel=1e-9)
    with pytest.raises(ConfigurationError, match="rebuild"):
        run_backtest(context, np.array([3.0]), method="span")


def test_a_book_backtests_every_account_at_once_as_each_alone():
    """The book's backtest (one pass over the test dates, every account at once) gives each account the margin
    series, realised losses and statistics of its own backtest; for a method run on each date, the rebuilt book's
    accounts in order."""
    from tests.conftest import series
    from tokenclear.book.positions import Book
    from tokenclear.margin.context import RunConfig, build_context
    from tokenclear.market.history import MarketData

    market = MarketData({"x": series("x", random_walk(5, 420, skew=3.0)), "y": series("y", random_walk(6, 420))})
    catalogue = Catalogue({"X": future("X", "x", "10"), "Y": future("Y", "y", "2")})
    config = RunConfig(risk_calendar="24/7", cash_calendar="24/7", min_scenarios=10, lookback=200,
                       required_history=10)
    quantity = np.array([[3, 0], [0, -5], [2, -1], [0, 0]])
    book = Book(["a", "b", "c", "flat"], ["X", "Y"], quantity)

    def rebuild(date, held=book):
        return build_context(book=held, catalogue=catalogue, market=market, specs={}, config=config, as_of=date)

    context = rebuild(None)
    for method in ("hsvar", "span"):
        result = backtest_book(context, quantity.astype(np.float64), method=method, rebuild=rebuild)
        assert result.margin.shape == (result.dates.size, 4) and result.dates.size > 50
        for i, account in enumerate(book.accounts):
            alone = Book([account], ["X", "Y"], quantity[i:i + 1])
            single = run_backtest(rebuild(None, alone), quantity[i].astype(np.float64), method=method,
                                  rebuild=lambda date, held=alone: rebuild(date, held))
            np.testing.assert_array_equal(result.dates, single.dates)
            np.testing.assert_allclose(result.margin[:, i], single.margin, rtol=1e-12)
            np.testing.assert_allclose(result.realised_loss[:, i], single.realised_loss, rtol=1e-12, atol=1e-9)
            mine = result.account(i)
            assert mine.exception_count == single.exception_count
            assert mine.traffic_light == single.traffic_light == traffic_light(
                int(single.exceptions[-250:].sum()), min(250, single.exceptions.size), 0.01)
            assert mine.kupiec_p == pytest.approx(kupiec(single.exception_count, single.exceptions.size, 0.01)[1])
            assert mine.christoffersen_lr == pytest.approx(christoffersen(single.exceptions)[0])
        assert result.exceptions[:, 3].sum() == 0 and np.isnan(result.peak_to_trough[3])  # the flat account
        assert result.exceptions[:, :3].any()  # the skewed walk breaches someone: the test would see a swap
