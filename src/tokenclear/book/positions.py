"""Positions: CSV ``account,instrument,quantity`` (contracts; > 0 long, < 0 short).

The whole file is validated before anything is computed: unknown instrument,
non-numeric or fractional quantity, missing column, duplicate (account, instrument)
row and an empty file each fail with the file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_decimal, read_rows
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import Catalogue


@dataclass(frozen=True)
class Book:
    """Dense position matrix: ``quantity[account, instrument]`` in contracts (int64)."""

    accounts: list[str]
    instruments: list[str]
    quantity: np.ndarray

    def __post_init__(self) -> None:
        assert self.quantity.shape == (len(self.accounts), len(self.instruments))


def load_positions(path: Path, catalogue: Catalogue) -> Book:
    path = Path(path)
    rows = read_rows(path, ["account", "instrument", "quantity"])
    seen: dict[tuple[str, str], int] = {}
    entries: list[tuple[str, str, int]] = []
    for line, row in rows:
        account, name = row["account"], row["instrument"]
        if not account:
            raise InputError("account is blank", path=path, line=line, field="account")
        if name not in catalogue:
            raise InputError(f"unknown instrument '{name}' (not in {catalogue.source})", path=path, line=line,
                             field="instrument")
        quantity = parse_decimal(row["quantity"], path=path, line=line, field="quantity")
        if quantity != quantity.to_integral_value():
            raise InputError(f"quantity '{row['quantity']}' is not a whole number of contracts", path=path,
                             line=line, field="quantity")
        if abs(quantity) > Decimal(10) ** 12:
            raise InputError(f"quantity '{row['quantity']}' exceeds 1e12 contracts", path=path, line=line,
                             field="quantity")
        key = (account, name)
        if key in seen:
            raise InputError(f"duplicate row for account '{account}' and instrument '{name}' (first on line "
                             f"{seen[key]})", path=path, line=line, field="instrument")
        seen[key] = line
        entries.append((account, name, int(quantity)))
    return book_from_entries(entries, catalogue)


def book_from_entries(entries: list[tuple[str, str, int]], catalogue: Catalogue) -> Book:
    """Dense book from (account, instrument, quantity) triples; instruments in catalogue order."""
    accounts = sorted({account for account, _, _ in entries})
    used = {name for _, name, _ in entries}
    instruments = [name for name in catalogue.instruments if name in used]
    account_index = {name: i for i, name in enumerate(accounts)}
    instrument_index = {name: j for j, name in enumerate(instruments)}
    quantity = np.zeros((len(accounts), len(instruments)), dtype=np.int64)
    for account, name, amount in entries:
        quantity[account_index[account], instrument_index[name]] += amount
    return Book(accounts, instruments, quantity)
