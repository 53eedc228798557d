"""Speed of the risk core: 10,000 accounts x 500 instruments x 1,250 scenarios.

Prints the time of the one matrix product that yields every account's scenario P&L,
each method's whole time and its ratio to that product, the ratio against a
per-account pandas loop (on a 200-account slice), and peak memory. Run: make bench.
"""

from __future__ import annotations

import resource
import time
from decimal import Decimal

import numpy as np
import pandas as pd

from tokenclear.book.positions import Book
from tokenclear.instruments.catalogue import Catalogue, Instrument
from tokenclear.margin.context import RunConfig, build_context
from tokenclear.margin.engine import build_method
from tokenclear.margin.historical import Historical
from tokenclear.margin.measures import loss_measure
from tokenclear.margin.span import Span, calibrate
from tokenclear.market.history import MarketData, PriceSeries

ACCOUNTS, UNDERLYINGS, MONTHS, SCENARIOS = 10_000, 50, 10, 1_250
REPEAT = 3


def best_of(work, repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def synthetic_context():
    rng = np.random.default_rng(42)
    days = SCENARIOS + 60
    start = np.datetime64("2020-01-01")
    dates = start + np.arange(days).astype("timedelta64[D]")
    market = MarketData({f"u{j}": PriceSeries(f"u{j}", dates, 100 * np.exp(np.cumsum(rng.standard_normal(days)
                                                                                    * 0.02)))
                         for j in range(UNDERLYINGS)})
    as_of = dates[-1]
    instruments = {}
    for j in range(UNDERLYINGS):
        for m in range(MONTHS):
            name = f"u{j}m{m}"
            instruments[name] = Instrument(name, "future", f"u{j}", Decimal(10), "USD",
                                           as_of + np.timedelta64(30 * (m + 1), "D"))
    catalogue = Catalogue(instruments)
    quantity = rng.integers(-10, 11, size=(ACCOUNTS, UNDERLYINGS * MONTHS))
    book = Book([f"A{i:05d}" for i in range(ACCOUNTS)], list(instruments), quantity)
    config = RunConfig(risk_calendar="24/7", cash_calendar="24/7", lookback=SCENARIOS)
    return build_context(book=book, catalogue=catalogue, market=market, specs={}, config=config)


def main() -> None:
    context = synthetic_context()
    rows = context.window()
    hs = Historical.build(context, rows, filtered=False)
    quantity = context.book.quantity
    dense = quantity.astype(np.float64)
    print(f"book: {ACCOUNTS:,} accounts x {dense.shape[1]} instruments, {hs.pnl.shape[1]:,} scenarios")

    product = best_of(lambda: dense @ hs.pnl)
    pnl = dense @ hs.pnl
    quantile = best_of(lambda: np.quantile(-pnl, 0.99, axis=1), 1)
    partition = best_of(lambda: loss_measure(pnl, confidence=0.99))
    hs_time = best_of(lambda: hs.margin(quantity))
    span_model = Span.build(context, calibrate(context, rows))
    span_time = best_of(lambda: span_model.margin(quantity))
    fhs_time = best_of(lambda: build_method(context, "fhs", rows).margin(quantity), 1)

    sample = quantity[:200]

    def per_account_loop() -> None:
        frame = pd.DataFrame(hs.pnl.T, columns=context.book.instruments)
        for row in sample:
            series = frame.mul(row, axis=1).sum(axis=1)
            _ = -series.quantile(0.01)

    loop = best_of(per_account_loop, 1)
    vector_slice = best_of(lambda: hs.margin(sample))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    print(f"matrix product (P&L of every account in every scenario): {product:.3f} s")
    print(f"np.quantile over it: {quantile:.3f} s; np.partition-based measure: {partition:.3f} s")
    print(f"HS-VaR whole method:  {hs_time:.3f} s  = {hs_time / product:.2f} x the product   (target < 2 s)")
    print(f"FHS whole method (incl. scenario build): {fhs_time:.3f} s")
    print(f"SPAN whole method:    {span_time:.3f} s  = {span_time / product:.2f} x the product   (target < 1 s)")
    print(f"per-account pandas loop, 200 accounts: {loop:.3f} s; vectorised on the same 200: {vector_slice:.4f} s "
          f"-> {loop / vector_slice:,.0f} x faster")
    print(f"peak memory (max RSS): {peak_gib:.2f} GiB   (target < 4 GiB)")


if __name__ == "__main__":
    main()
