"""Exchange settlement prices from a file (adapter edge): CSV ``date,instrument,price``, one price per
instrument and date, as the clearing house publishes them; the price is kept as its decimal text."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_date, parse_decimal, read_rows
from tokenclear.errors import InputError

Settlements = dict[tuple[np.datetime64, str], Decimal]


def load_settlements(path: Path, instruments: set[str] | None = None) -> Settlements:
    """Prices keyed by (date, instrument); a bad date or price, a duplicate, or an instrument outside
    ``instruments`` (the catalogue) is an :class:`InputError` naming the line and field."""
    out: Settlements = {}
    for line, row in read_rows(path, ["date", "instrument", "price"]):
        day = parse_date(row["date"], path=path, line=line, field="date")
        name = row["instrument"]
        if instruments is not None and name not in instruments:
            raise InputError(f"instrument '{name}' is not in the catalogue", path=path, line=line, field="instrument")
        price = parse_decimal(row["price"], path=path, line=line, field="price")
        if (day, name) in out:
            raise InputError(f"a second price for {name} on {day}", path=path, line=line, field="instrument")
        out[(day, name)] = price
    return out
