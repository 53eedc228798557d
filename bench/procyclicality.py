"""Procyclicality of each APC option on the shipped data: peak-to-trough ratio of the margin
series of a long position as a fraction of its notional, so that the price level does not count
(EMIR RTS 153/2013 Art. 28; the measure of ESMA's APC guidelines).

* the S&P 500 1999-2018 (ESH19 on ``spx_1999_2018``), weekly as-of dates 2006-2012 (the 2008
  crisis inside) and 2009-2018, 1,250-day lookback: none, buffer (25%, drawn down in stress),
  floor10y (ten-year lookback floor: refused before 2009, when ten years of data do not exist),
  stressed-weight (25% on the stress period 2008-09..2009-03, used only once it is past: a
  margin as of 2006 cannot know 2008);
* BTC (BTC-PERP), weekly 2022-01..2023-08 on the crypto history (665 scenarios), with the
  stress period proxied by the Nasdaq 1999-2018 times the volatility ratio; floor10y is refused
  there (ten years of history do not exist).

Run: ``.venv/bin/python bench/procyclicality.py``.
"""

from __future__ import annotations

import time

import numpy as np

from tokenclear.book.positions import book_from_entries
from tokenclear.errors import ConfigurationError
from tokenclear.instruments.catalogue import load_catalogue
from tokenclear.instruments.underlyings import load_underlyings
from tokenclear.margin.context import RunConfig, build_context, factor_specs, series_names
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.procyclicality import buffered_series, peak_to_trough
from tokenclear.market.calendars import sessions
from tokenclear.market.files import load_folder
from tokenclear.settings import get_settings

STRESS = (np.datetime64("2008-09-01"), np.datetime64("2009-03-31"))
CASES = {"ES (S&P 500)": ("ESH19", "2006-01-02", "2012-12-31"),  # 2008 inside; floor10y needs 2009 on
         "ES 2009-2018": ("ESH19", "2009-01-12", "2018-12-31"),  # ten years of history on every date
         "BTC": ("BTC-PERP", "2022-01-03", "2023-08-25")}


def series_for(instrument: str, start: str, end: str):
    settings = get_settings()
    catalogue = load_catalogue(settings.instruments_file)
    specs = load_underlyings(settings.underlyings_file)
    book = book_from_entries([("LONG", instrument, 1)], catalogue)
    config = RunConfig(stress_period=STRESS, lookback=1250)
    plain = RunConfig(lookback=1250)  # the window alone: no stress period (the old default)
    market = load_folder(settings.prices_dir, series_names(factor_specs(book, catalogue, specs, config)))
    grid = sessions("XNYS")
    dates = grid[(grid >= np.datetime64(start)) & (grid <= np.datetime64(end))][::5]
    margins: dict[str, list[float]] = {"none": [], "floor10y": [], "stressed-weight": [], "no stress period": []}
    for date in dates.tolist():  # one context per weekly as-of date
        context = build_context(book=book, catalogue=catalogue, market=market, specs=specs, config=config,
                                as_of=np.datetime64(date, "D"))
        bare = build_context(book=book, catalogue=catalogue, market=market, specs=specs, config=plain,
                             as_of=np.datetime64(date, "D"))
        run = run_margin(bare, "hsvar", Options(holiday=False))
        margins["no stress period"].append(float(run.accounts[0].margin) / float(bare.resolved.notional[0]))
        for apc in ("none", "floor10y", "stressed-weight"):
            try:
                run = run_margin(context, "hsvar", Options(holiday=False, apc=None if apc == "none" else apc))
            except ConfigurationError:
                margins[apc].append(float("nan"))
                continue
            margins[apc].append(float(run.accounts[0].margin) / float(context.resolved.notional[0]))
    out = {name: np.array(values) for name, values in margins.items()}
    out["buffer"] = buffered_series(out["none"])
    return dates, out


def main() -> None:
    started = time.perf_counter()
    print("peak-to-trough ratio of the margin of a long position, as a fraction of its notional (HS-VaR 99%, "
          "MPOR 2 days, weekly as-of dates)")
    print("columns: no stress period and no APC (the old default); then with the stress period 2008-09..2009-03 in "
          "the window, each APC option")
    print(f"{'product':14}{'period':>25}{'no stress':>11}{'none':>8}{'buffer':>8}{'floor10y':>10}"
          f"{'stressed-weight':>17}")
    for label, (instrument, start, end) in CASES.items():
        dates, margins = series_for(instrument, start, end)
        cells = []
        for apc in ("no stress period", "none", "buffer", "floor10y", "stressed-weight"):
            values = margins[apc]
            cells.append("refused" if np.isnan(values).any() else f"{peak_to_trough(values):.2f}")
        print(f"{label:14}{f'{dates[0]}..{dates[-1]}':>25}{cells[0]:>11}{cells[1]:>8}{cells[2]:>8}{cells[3]:>10}"
              f"{cells[4]:>17}")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
