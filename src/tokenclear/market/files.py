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

from tokenclear.columns import PARQUET_SUFFIXES, Table, read_table, read_tables
from tokenclear.errors import InputError
from tokenclear.market.history import MarketData, PriceSeries

JUMP = 4.0
#: A close's magnitude lies within [MIN_CLOSE, MAX_CLOSE] (relative series) or below MAX_CLOSE (absolute): beyond,
#: a unit error or an overflow of the P&L in float64, not a price.
MIN_CLOSE, MAX_CLOSE = 1e-9, 1e12


def load_series(path: Path, *, value_column: str = "close", relative: bool = False,
                confirmed: frozenset[tuple[str, str]] = frozenset()) -> PriceSeries:
    """One series, CSV or Parquet (``date`` and ``value_column``); dates must be ISO and strictly ascending;
    values finite; ``relative``: closes > 0 and no one-day move beyond :data:`JUMP` but those ``confirmed``
    (series, ISO date)."""
    table = read_table(path, {"date": "date", value_column: "number"})
    return checked_series(table, Path(path).stem, np.arange(len(table)), value_column=value_column,
                          relative=relative, confirmed=confirmed)


def checked_series(table: Table, name: str, rows: np.ndarray, *, value_column: str, relative: bool,
                   confirmed: frozenset[tuple[str, str]]) -> PriceSeries:
    """The series of ``table``'s ``rows`` (in file order), checked as :func:`load_series` says; errors name
    the file's line."""
    dates, values = table["date"][rows], table[value_column][rows]
    late = np.flatnonzero(dates[1:] <= dates[:-1])
    if late.size:
        at = int(late[0]) + 1
        raise table.error(f"date {dates[at]} is not after the previous row's {dates[at - 1]}"
                          + (f" of series '{name}'" if "series" in table else ""), int(rows[at]), "date")
    huge = np.flatnonzero(np.abs(values) > MAX_CLOSE)
    if huge.size and value_column == "close":  # volumes may be larger
        raise table.error(f"close {values[huge[0]]:g} on {dates[huge[0]]} is beyond {MAX_CLOSE:g} in magnitude: "
                          "refused as a bad price", int(rows[huge[0]]), value_column)
    if relative:
        _check_relative(table, name, rows, dates, values, value_column, confirmed)
    return PriceSeries(name=name, dates=dates, closes=values)


def _check_relative(table: Table, name: str, rows: np.ndarray, dates: np.ndarray, values: np.ndarray, column: str,
                    confirmed: frozenset[tuple[str, str]]) -> None:
    """Closes > 0 and one-day moves within :data:`JUMP` (vectorised; the first offending row is named)."""
    bad = np.flatnonzero(values < MIN_CLOSE)
    if bad.size:
        raise table.error(f"close {values[bad[0]]:g} on {dates[bad[0]]}: a series of relative moves needs closes "
                          f"> 0 (at least {MIN_CLOSE:g}; declare returns=absolute in underlyings.csv for one that "
                          "can reach 0 or below)", int(rows[bad[0]]), column)
    ratio = values[1:] / values[:-1]
    jumps = np.flatnonzero((ratio > JUMP) | (ratio < 1.0 / JUMP))
    for at in jumps.tolist():  # loop over the (rare) jumps only
        day = str(dates[at + 1])
        if (name, day) not in confirmed:
            raise table.error(f"close {values[at + 1]:g} on {day} is {ratio[at]:.4g}x the previous close "
                              f"{values[at]:g}: refused as a bad price (a one-day move beyond {JUMP:g}x); if it "
                              f"is real, set TOKENCLEAR_CONFIRMED_MOVES={name}:{day}", int(rows[at + 1]), column)


def load_long_table(path: Path, names: list[str] | None = None, *, value_column: str = "close",
                    absolute: frozenset[str] | set[str] = frozenset(),
                    confirmed: frozenset[tuple[str, str]] = frozenset()) -> MarketData:
    """Every series (or just ``names``) of one long table ``date,series,<value_column>``, CSV or Parquet; each
    series' rows in ascending date order, checked as :func:`load_series` checks a file."""
    table = read_table(path, {"date": "date", "series": "text", value_column: "number"})
    keys, first, codes = np.unique(table["series"], return_index=True, return_inverse=True)
    table.check(table["series"] == "", "series", lambda _: "series is blank")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(keys.size + 1))
    index = {str(key): (int(bounds[k]), int(bounds[k + 1])) for k, key in enumerate(keys)}
    if names is not None:
        missing = [name for name in names if name not in index]
        if missing:
            raise InputError(f"no rows for series {', '.join(missing)}", path=path, field="series")
    wanted = names if names is not None else [str(key) for key in keys[np.argsort(first)]]
    check = value_column == "close"
    out = {}
    for name in wanted:  # a loop over series, not rows
        low, high = index[name]
        out[name] = checked_series(table, name, order[low:high], value_column=value_column,
                                   relative=check and name not in absolute, confirmed=confirmed)
    return MarketData(out)


def series_in(prices: Path) -> set[str]:
    """The series a price source holds: a folder's CSV and Parquet file stems, or a long table's series."""
    prices = Path(prices)
    if prices.is_file():
        return {str(name) for name in np.unique(read_table(prices, {"series": "text"})["series"])}
    return {path.stem for suffix in (".csv", *PARQUET_SUFFIXES) for path in prices.glob(f"*{suffix}")}


def load_folder(folder: Path, names: list[str] | None = None, *, value_column: str = "close",
                absolute: frozenset[str] | set[str] = frozenset(),
                confirmed: frozenset[tuple[str, str]] = frozenset()) -> MarketData:
    """Every series of ``folder`` (or just ``names``), keyed by file stem: one ``date,close`` file per series,
    CSV or Parquet (``NAME.csv`` or ``NAME.parquet``); or ``folder`` is one long table file
    (:func:`load_long_table`). Closes of every series not in ``absolute`` are checked as relative ones
    (:func:`load_series`); a volume column is not."""
    folder = Path(folder)
    if folder.is_file():
        return load_long_table(folder, names, value_column=value_column, absolute=absolute, confirmed=confirmed)
    if not folder.is_dir():
        raise InputError("price folder not found", path=folder)
    found: dict[str, Path] = {}
    twice: set[str] = set()
    for path in sorted(path for suffix in (".csv", *PARQUET_SUFFIXES) for path in folder.glob(f"*{suffix}")):
        if path.stem in found:
            twice.add(path.stem)
        found[path.stem] = path
    if names is None:
        names = sorted(found)
    for name in names:
        if name not in found:
            raise InputError(f"no price file for series '{name}'", path=folder / f"{name}.csv")
        if name in twice:
            raise InputError(f"series '{name}' has both a CSV and a Parquet file: keep one", path=folder)
    paths = [found[name] for name in names]
    check = value_column == "close"
    tables = read_tables(paths, {"date": "date", value_column: "number"})
    return MarketData({path.stem: checked_series(table, path.stem, np.arange(len(table)), value_column=value_column,
                                                 relative=check and path.stem not in absolute, confirmed=confirmed)
                       for path, table in zip(paths, tables, strict=True)})  # a loop over series, not rows
