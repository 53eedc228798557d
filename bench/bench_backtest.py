"""Backtesting a whole book: every account at once against one account at a time.

The regulator's exposure report backtests every margin account (PQD 6.5). ``backtest_book`` makes one pass over
the test dates with every account in the matrix product; the old way ran ``run_backtest`` once per account.
Prints both times, their ratio, and checks that they agree account by account. Run: make bench.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

import numpy as np

from tokenclear.book.positions import Book
from tokenclear.instruments.catalogue import Catalogue, Instrument
from tokenclear.margin.backtest import backtest_book, run_backtest
from tokenclear.margin.context import RunConfig, build_context
from tokenclear.market.history import MarketData, PriceSeries

UNDERLYINGS, MONTHS, LOOKBACK, DAYS = 10, 4, 500, 1_100


def synthetic_context(accounts: int):
    rng = np.random.default_rng(7)
    dates = np.datetime64("2020-01-01") + np.arange(DAYS).astype("timedelta64[D]")
    market = MarketData({f"u{j}": PriceSeries(f"u{j}", dates, 100 * np.exp(np.cumsum(
        rng.standard_t(4, DAYS) * 0.015))) for j in range(UNDERLYINGS)})
    as_of = dates[-1]
    instruments = {f"u{j}m{m}": Instrument(f"u{j}m{m}", "future", f"u{j}", Decimal(10), "USD",
                                           as_of + np.timedelta64(30 * (m + 1), "D"))
                   for j in range(UNDERLYINGS) for m in range(MONTHS)}
    quantity = rng.integers(-10, 11, size=(accounts, len(instruments)))
    book = Book([f"A{i:04d}" for i in range(accounts)], list(instruments), quantity)
    config = RunConfig(risk_calendar="24/7", cash_calendar="24/7", lookback=LOOKBACK)
    return build_context(book=book, catalogue=Catalogue(instruments), market=market, specs={}, config=config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    args = parser.parse_args()
    context = synthetic_context(args.accounts)
    quantity = context.book.quantity.astype(np.float64)
    start = time.perf_counter()
    book = backtest_book(context, quantity)
    at_once = time.perf_counter() - start
    start = time.perf_counter()
    alone = [run_backtest(context, row) for row in quantity]  # the old report's loop, for the comparison
    one_by_one = time.perf_counter() - start
    worst = max(float(np.max(np.abs(book.margin[:, i] - a.margin) / np.maximum(a.margin, 1.0)))
                for i, a in enumerate(alone))
    agree = all(book.account(i).exception_count == a.exception_count and book.account(i).traffic_light ==
                a.traffic_light for i, a in enumerate(alone))
    print(f"book: {args.accounts:,} accounts x {quantity.shape[1]} instruments, {book.dates.size} test dates, "
          f"windows of {LOOKBACK} scenarios")
    print(f"every account at once (backtest_book): {at_once:8.3f} s")
    print(f"one account at a time (run_backtest):  {one_by_one:8.3f} s   ratio {one_by_one / at_once:.1f}x")
    print(f"agreement: largest relative margin difference {worst:.1e}; exceptions and traffic lights "
          f"{'equal' if agree else 'DIFFER'} for every account; exceptions in all {int(book.exceptions.sum())}")


if __name__ == "__main__":
    main()
