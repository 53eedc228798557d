"""Options marked to market in both premium styles: premium-paid (net option value in
initial margin, no VM) and futures-style (daily VM on the option's settlement price)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pytest
from scipy.stats import norm

from tests.conftest import context_of, future, random_walk
from tokenclear.book.positions import book_from_entries
from tokenclear.errors import InputError, MarketDataError
from tokenclear.instruments.catalogue import Catalogue, Instrument, load_catalogue
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.historical import Historical
from tokenclear.margin.hsvar import portfolio_pnl
from tokenclear.margin.measures import loss_measure
from tokenclear.margin.variation import settlement_prices, variation_margin
from tokenclear.market.history import MarketData, PriceSeries

AS_OF = np.datetime64("2020-01-01") + 499


def call(style: str, strike: float, expiry: np.datetime64 = AS_OF + 60) -> Instrument:
    return Instrument(f"C-{style}", "option", "x", Decimal(10), "USD", expiry, strike=strike, option_type="call",
                      volatility=0.4, premium_style=style)


def black76_call(forward: float, strike: float, years: float, vol: float) -> float:
    d1 = (np.log(forward / strike) + 0.5 * vol**2 * years) / (vol * np.sqrt(years))
    return forward * norm.cdf(d1) - strike * norm.cdf(d1 - vol * np.sqrt(years))


def test_premium_paid_options_credit_longs_and_charge_shorts_their_value():
    prices = random_walk(41, 500)
    paid, futures_style = call("paid", prices[-1]), call("futures", prices[-1])
    context = context_of({"x": prices}, [paid, futures_style],
                         [("long", "C-paid", 2), ("short", "C-paid", -2), ("fstyle", "C-futures", -2)])
    rows = {row.account: row for row in run_margin(context, "hsvar", Options(holiday=False)).accounts}
    premium = black76_call(prices[-1], prices[-1], 60 / 365.25, 0.4) * 10  # per contract, undiscounted
    assert float(rows["long"].net_option_value) == pytest.approx(2 * premium, abs=0.01)
    assert float(rows["short"].net_option_value) == pytest.approx(-2 * premium, abs=0.01)
    assert float(rows["fstyle"].net_option_value) == 0.0
    # the long's loss is bounded by its premium, so risk minus NOV floors at zero: premium paid in full
    assert float(rows["long"].base) <= 2 * premium and float(rows["long"].margin) == 0.0
    # the short covers the buy-back value on top of the risk; the futures-style short pays risk only
    model = Historical.build(context, context.window(), filtered=False)
    short_risk = loss_measure(portfolio_pnl(np.array([[0.0, -2.0]]), model.pnl[[1, 0]]), measure="quantile",
                              confidence=0.99)[0]  # columns of the book: C-futures, C-paid
    assert float(rows["short"].margin) == pytest.approx(short_risk + 2 * premium, abs=0.02)
    assert float(rows["fstyle"].margin) == pytest.approx(short_risk, abs=0.02)


def test_futures_style_options_pay_variation_margin_on_their_settlement_price():
    dates = np.array(["2023-03-09", "2023-03-10"], dtype="datetime64[D]")
    market = MarketData({"x": PriceSeries("x", dates, np.array([100.0, 92.5]))})
    expiry = np.datetime64("2023-06-16")
    catalogue = Catalogue({"F": future("F", "x", "10", str(expiry)), "CF": call("futures", 100.0, expiry),
                           "CP": call("paid", 100.0, expiry)})
    specs = {"x": Underlying("x")}
    book = book_from_entries([("a", "CF", 3), ("b", "CF", -3), ("c", "CP", 5)], catalogue)
    p0 = settlement_prices(catalogue, book.instruments, market, specs, dates[0])
    p1 = settlement_prices(catalogue, book.instruments, market, specs, dates[1])
    q = Decimal("0.000001")
    hand = [Decimal(repr(float(black76_call(f, 100.0, (expiry - d).astype(int) / 365.25, 0.4)))).quantize(
        q, ROUND_HALF_EVEN) for f, d in ((100.0, dates[0]), (92.5, dates[1]))]
    index = book.instruments.index("CF")
    assert [p0[index], p1[index]] == [pytest.approx(hand[0], abs=Decimal("1e-6")),
                                      pytest.approx(hand[1], abs=Decimal("1e-6"))]
    rows = {row.account: row.vm for row in variation_margin(book, catalogue, p0, p1)}
    owed = (-3 * Decimal(10) * (p1[index] - p0[index])).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert rows["a"] == owed > 0 and rows["b"] == -owed  # the long call lost value: it pays; the short receives
    assert rows["c"] == Decimal("0.00")  # premium-paid: no VM


def test_a_futures_style_option_needs_an_implied_volatility_for_its_settlement():
    dates = np.array(["2023-03-09"], dtype="datetime64[D]")
    market = MarketData({"x": PriceSeries("x", dates, np.array([100.0]))})
    option = Instrument("C", "option", "x", Decimal(1), "USD", np.datetime64("2023-06-16"), strike=100.0,
                        option_type="call", premium_style="futures")
    with pytest.raises(MarketDataError, match="needs an implied volatility"):
        settlement_prices(Catalogue({"C": option}), ["C"], market, {}, dates[0])


def test_catalogue_premium_style_is_validated(tmp_path):
    header = "instrument,kind,underlying,multiplier,currency,expiry,strike,option_type,volatility,premium_style\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "C,option,x,1,USD,2024-01-01,100,call,0.2,futures\n"
                             "P,option,x,1,USD,2024-01-01,100,put,0.2,\n")
    catalogue = load_catalogue(good)
    assert catalogue["C"].premium_style == "futures" and not catalogue["C"].premium_paid
    assert catalogue["P"].premium_style == "paid" and catalogue["P"].premium_paid
    for row, field in (("C,option,x,1,USD,2024-01-01,100,call,0.2,upfront", "premium_style"),
                       ("F,future,x,1,USD,2024-01-01,,,,paid", "premium_style")):
        bad = tmp_path / "bad.csv"
        bad.write_text(header + row + "\n")
        with pytest.raises(InputError) as error:
            load_catalogue(bad)
        assert error.value.field == field and error.value.line == 2
