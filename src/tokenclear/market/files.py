"""Load a folder of ``date,close`` CSV files (one file per series, file stem = series name).

Every close is checked before anything is computed: a series of relative moves (all but those declared
``absolute`` in ``underlyings.csv``) needs closes > 0 (a close of 0 gives every position a margin of 0, a
negative one flips the move's sign), and a one-day move beyond ``JUMP`` (4x up or down to a quarter) is refused
as a bad price (a fat-fingered tick, a unit error) unless it is confirmed as real
(``TOKENCLEAR_CONFIRMED_MOVES=series:date``). The largest one-day move of the shipped series is SOL's -42%
(2022-11-09); LUNA's -96% in May 2022 would need confirming. Absolute series (oil, which closed at -37.63 USD
on 2020-04-20) are checked for finite values only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_date, parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.market.history import MarketData, PriceSeries

JUMP = 4.0
#: A close's magnitude lies within [MIN_CLOSE, MAX_CLOSE] (relative series) or below MAX_CLOSE (absolute): beyond,
#: a unit error or an overflow of the P&L in float64, not a price.
MIN_CLOSE, MAX_CLOSE = 1e-9, 1e12


def load_series(path: Path, *, value_column: str = "close", relative: bool = False,
                confirmed: frozenset[tuple[str, str]] = frozenset()) -> PriceSeries:
    """One series; dates must be ISO and strictly ascending; values finite; ``relative``: closes > 0 and no
    one-day move beyond :data:`JUMP` but those ``confirmed`` (series, ISO date)."""
    rows = read_rows(path, ["date", value_column])
    dates = np.empty(len(rows), dtype="datetime64[D]")
    values = np.empty(len(rows))
    for index, (line, row) in enumerate(rows):
        dates[index] = parse_date(row["date"], path=path, line=line, field="date")
        values[index] = parse_float(row[value_column], path=path, line=line, field=value_column)
        if index and dates[index] <= dates[index - 1]:
            raise InputError(f"date {dates[index]} is not after the previous row's {dates[index - 1]}",
                             path=path, line=line, field="date")
    name = Path(path).stem
    huge = np.flatnonzero(np.abs(values) > MAX_CLOSE)
    if huge.size and value_column == "close":  # volumes may be larger
        raise InputError(f"close {values[huge[0]]:g} on {dates[huge[0]]} is beyond {MAX_CLOSE:g} in magnitude: "
                         "refused as a bad price", path=path, line=rows[huge[0]][0], field=value_column)
    if relative:
        _check_relative(path, name, rows, dates, values, value_column, confirmed)
    return PriceSeries(name=name, dates=dates, closes=values)


def _check_relative(path: Path, name: str, rows: list, dates: np.ndarray, values: np.ndarray, column: str,
                    confirmed: frozenset[tuple[str, str]]) -> None:
    """Closes > 0 and one-day moves within :data:`JUMP` (vectorised; the first offending row is named)."""
    bad = np.flatnonzero(values < MIN_CLOSE)
    if bad.size:
        line = rows[bad[0]][0]
        raise InputError(f"close {values[bad[0]]:g} on {dates[bad[0]]}: a series of relative moves needs closes "
                         f"> 0 (at least {MIN_CLOSE:g}; declare returns=absolute in underlyings.csv for one that "
                         "can reach 0 or below)",
                         path=path, line=line, field=column)
    ratio = values[1:] / values[:-1]
    jumps = np.flatnonzero((ratio > JUMP) | (ratio < 1.0 / JUMP))
    for at in jumps.tolist():  # loop over the (rare) jumps only
        day = str(dates[at + 1])
        if (name, day) not in confirmed:
            raise InputError(f"close {values[at + 1]:g} on {day} is {ratio[at]:.4g}x the previous close "
                             f"{values[at]:g}: refused as a bad price (a one-day move beyond {JUMP:g}x); if it is "
                             f"real, set TOKENCLEAR_CONFIRMED_MOVES={name}:{day}", path=path,
                             line=rows[at + 1][0], field=column)


def load_folder(folder: Path, names: list[str] | None = None, *, value_column: str = "close",
                absolute: frozenset[str] | set[str] = frozenset(),
                confirmed: frozenset[tuple[str, str]] = frozenset()) -> MarketData:
    """Every ``*.csv`` in ``folder`` (or just ``names``), keyed by file stem. Closes of every series not in
    ``absolute`` are checked as relative ones (:func:`load_series`); a volume column is not."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("price folder not found", path=folder)
    if names is None:
        paths = sorted(folder.glob("*.csv"))
    else:
        paths = []
        for name in names:
            path = folder / f"{name}.csv"
            if not path.is_file():
                raise InputError(f"no price file for series '{name}'", path=path)
            paths.append(path)
    check = value_column == "close"
    return MarketData({path.stem: load_series(path, value_column=value_column,
                                              relative=check and path.stem not in absolute, confirmed=confirmed)
                       for path in paths})
