"""Load a folder of ``date,close`` CSV files (one file per series, file stem = series name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_date, parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.market.history import MarketData, PriceSeries


def load_series(path: Path, *, value_column: str = "close") -> PriceSeries:
    """One series; dates must be ISO and strictly ascending; values finite (negative allowed)."""
    rows = read_rows(path, ["date", value_column])
    dates = np.empty(len(rows), dtype="datetime64[D]")
    values = np.empty(len(rows))
    for index, (line, row) in enumerate(rows):
        dates[index] = parse_date(row["date"], path=path, line=line, field="date")
        values[index] = parse_float(row[value_column], path=path, line=line, field=value_column)
        if index and dates[index] <= dates[index - 1]:
            raise InputError(f"date {dates[index]} is not after the previous row's {dates[index - 1]}",
                             path=path, line=line, field="date")
    return PriceSeries(name=Path(path).stem, dates=dates, closes=values)


def load_folder(folder: Path, names: list[str] | None = None, *, value_column: str = "close") -> MarketData:
    """Every ``*.csv`` in ``folder`` (or just ``names``), keyed by file stem."""
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
    return MarketData({path.stem: load_series(path, value_column=value_column) for path in paths})
