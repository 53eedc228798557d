"""Strict CSV reading shared by every loader: errors name the file, line and field."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from tokenclear.dates import iso_day
from tokenclear.errors import InputError


def read_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Read a whole CSV file; return ``(line_number, row)`` pairs (header is line 1).

    Fails on a missing file, an empty file, a missing column or a row with the wrong
    number of fields. Values are stripped strings; blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path)
    try:
        return _read_rows(path, required)
    except UnicodeDecodeError as error:
        raise not_utf8(error, path) from None
    except csv.Error as error:
        raise InputError(f"not a readable CSV: {error}", path=path) from None


def not_utf8(error: UnicodeDecodeError, path: Path, shift: int = 0) -> InputError:
    """The error for a file that is not UTF-8, naming the first bad byte (``shift``: bytes cut off before)."""
    return InputError(f"not UTF-8 text: byte {error.object[error.start]:#04x} at offset {error.start + shift}; save "
                      "the file as UTF-8", path=path)


def _read_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise InputError("file is empty (no header row)", path=path) from None
        missing = [name for name in required if name not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}; header is {','.join(header)}",
                             path=path, line=1, field=missing[0])
        rows: list[tuple[int, dict[str, str]]] = []
        for values in reader:
            line = reader.line_num
            if not values or all(not value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise InputError(f"expected {len(header)} fields, found {len(values)}", path=path, line=line)
            rows.append((line, {name: value.strip() for name, value in zip(header, values, strict=True)}))
    if not rows:
        raise InputError("file has a header but no data rows", path=path)
    return rows



def parse_float(value: str, *, path: Path, line: int, field: str, allow_blank: bool = False) -> float:
    """Parse a finite float, or NaN for a blank value when ``allow_blank``."""
    if value == "" and allow_blank:
        return float("nan")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"'{value}' is not a number", path=path, line=line, field=field) from None
    if not np.isfinite(number):
        raise InputError(f"'{value}' is not a finite number", path=path, line=line, field=field)
    return number


def parse_decimal(value: str, *, path: Path, line: int, field: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise InputError(f"'{value}' is not a number", path=path, line=line, field=field) from None
    if not number.is_finite():
        raise InputError(f"'{value}' is not a finite number", path=path, line=line, field=field)
    return number


def parse_date(value: str, *, path: Path, line: int, field: str, allow_blank: bool = False) -> np.datetime64 | None:
    """Parse an ISO date (YYYY-MM-DD) into ``datetime64[D]``."""
    if value == "" and allow_blank:
        return None
    try:
        return iso_day(value)
    except ValueError:
        raise InputError(f"'{value}' is not an ISO date (YYYY-MM-DD)", path=path, line=line, field=field) from None
