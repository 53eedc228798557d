"""Weekend risk counted once: HS-VaR margin by weekday against the empirical loss quantile
of the horizon each weekday's margin has to cover.

For a long delta-one position in BTC (trades 24/7) and in the S&P 500 (trades on XNYS),
margined on the XNYS risk grid with XNYS cash days and a 2-day MPOR: the margin
(base + holiday add-on, % of notional) on every as-of date, averaged per weekday,
against the 99% quantile of the realised loss from that weekday's close to the close of
the MPOR-th cash session after it (Thursday and Friday: four calendar days for BTC), over
the series' whole history. Run: ``.venv/bin/python bench/weekday_margin.py``.
"""

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np

from tokenclear.book.positions import Book
from tokenclear.instruments.catalogue import Catalogue, Instrument
from tokenclear.instruments.underlyings import load_underlyings
from tokenclear.margin.context import RunConfig, build_context
from tokenclear.margin.engine import Options, run_margin
from tokenclear.market.calendars import closed_cash_days, next_session, sessions
from tokenclear.market.files import load_folder
from tokenclear.settings import get_settings

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")
PRODUCTS = {"BTC": "btc_usd", "ES": "spx"}
START, END = np.datetime64("2022-06-01"), np.datetime64("2023-08-25")
TYPICAL_WEEK = np.arange(np.datetime64("2023-03-06"), np.datetime64("2023-03-11"))  # Mon..Fri, no holiday


def cash_end(date: np.datetime64, mpor: int, cash: str) -> np.datetime64:
    end = date
    for _ in range(mpor):
        end = next_session(cash, end)
    return end


def empirical(series, mpor: int, cash: str, confidence: float) -> dict[int, float]:
    """99% loss quantile (fraction of price) from each weekday's close to its cash horizon's close."""
    cash_days = sessions(cash)
    starts = series.dates[np.isin(series.dates, cash_days)]
    losses: dict[int, list[float]] = {w: [] for w in range(5)}
    for day in starts.tolist():  # a report over a few hundred dates, outside the risk core
        date = np.datetime64(day, "D")
        end = cash_end(date, mpor, cash)
        k = int(np.searchsorted(series.dates, end, side="right")) - 1
        i = int(np.searchsorted(series.dates, date))
        if series.dates[k] != end or k <= i:
            continue
        weekday = (date.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
        losses[int(weekday)].append(1.0 - series.closes[k] / series.closes[i])
    return {w: float(np.quantile(v, confidence)) for w, v in losses.items() if v}


def pooled(series, calendar: str, horizon: int, confidence: float) -> float:
    """99% loss quantile over every ``horizon``-session window of the product's own calendar."""
    own = sessions(calendar)
    closes = series.closes[np.isin(series.dates, own)]
    return float(np.quantile(1.0 - closes[horizon:] / closes[:-horizon], confidence))


def main() -> None:
    settings = get_settings()
    specs = load_underlyings(settings.underlyings_file)
    market = load_folder(settings.prices_dir, list(PRODUCTS.values()))
    config = RunConfig(risk_calendar="XNYS", cash_calendar="XNYS")
    grid = sessions("XNYS")
    dates = grid[(grid >= START) & (grid <= END)]
    print(f"HS-VaR 99%, MPOR {config.mpor_days} days, XNYS risk grid and cash days, no stress period, "
          f"as-of {START}..{END}; margin = base + holiday add-on, % of notional")
    print("empirical: that weekday's cash horizon, whole history; pooled: every window of the same number of the")
    print("product's own sessions (H), whole history")
    print(f"{'product':8}{'weekday':>8}{'dates':>7}{'H':>3}{'margin %':>10}{'base %':>9}{'empirical %':>13}"
          f"{'ratio':>7}{'pooled %':>10}{'ratio':>7}")
    started = time.perf_counter()
    for label, underlying in PRODUCTS.items():
        name = f"{label}-1"
        catalogue = Catalogue({name: Instrument(name, "perpetual", underlying, Decimal(1), "USD")})
        book = Book(["LONG"], [name], np.array([[1]]))
        margin = {w: [] for w in range(5)}
        base = {w: [] for w in range(5)}
        for date in dates.tolist():  # one margin run per as-of date
            as_of = np.datetime64(date, "D")
            context = build_context(book=book, catalogue=catalogue, market=market, specs=specs, config=config,
                                    as_of=as_of)
            run = run_margin(context, "hsvar", Options(holiday=True))
            notional = float(context.resolved.notional[0])
            weekday = int((as_of.view("int64") - 4) % 7)
            margin[weekday].append(float(run.accounts[0].margin) / notional)
            base[weekday].append(float(run.accounts[0].base) / notional)
        reference = empirical(market.get(underlying), config.mpor_days, config.cash_calendar, config.confidence)
        calendar = specs[underlying].calendar
        for w in range(5):
            m, b, e = np.mean(margin[w]), np.mean(base[w]), reference[w]
            horizon = config.mpor_days + closed_cash_days(calendar, config.cash_calendar, TYPICAL_WEEK[w],
                                                          config.mpor_days)
            p = pooled(market.get(underlying), calendar, horizon, config.confidence)
            print(f"{label:8}{WEEKDAYS[w]:>8}{len(margin[w]):>7}{horizon:>3}{100 * m:>10.2f}{100 * b:>9.2f}"
                  f"{100 * e:>13.2f}{m / e:>7.2f}{100 * p:>10.2f}{m / p:>7.2f}")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
