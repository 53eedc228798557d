"""Exchange settlement prices from a file (adapter edge): CSV ``date,instrument,price``, one price per
instrument and date, as the clearing house publishes them; the price is kept as its decimal text."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from tokenclear.csvfiles import read_rows
from tokenclear.errors import InputError

Settlements = dict[tuple[np.datetime64, str], Decimal]


def load_settlements(path: Path, instruments: set[str] | None = None) -> Settlements:
    """Prices keyed by (date, instrument); a bad date or price, a duplicate, or an instrument outside
    ``instruments`` (the catalogue) is an :class:`InputError` naming the line and field."""
    out: Settlements = {}
    for line, row in read_rows(path, ["date", "instrument", "price"]):
        try:
            if len(row["date"]) != 10:
                raise ValueError
            day = np.datetime64(row["date"], "D")
        except ValueError:
            raise InputError(f"'{row['date']}' is not an ISO date (YYYY-MM-DD)", path=path, line=line,
                             field="date") from None
        name = row["instrument"]
        if instruments is not None and name not in instruments:
            raise InputError(f"instrument '{name}' is not in the catalogue", path=path, line=line, field="instrument")
        try:
            price = Decimal(row["price"])
            if not price.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise InputError(f"'{row['price']}' is not a decimal price", path=path, line=line, field="price") from None
        if (day, name) in out:
            raise InputError(f"a second price for {name} on {day}", path=path, line=line, field="instrument")
        out[(day, name)] = price
    return out
