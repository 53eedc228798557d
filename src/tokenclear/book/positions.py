"""Positions: CSV ``account,instrument,quantity`` (contracts; > 0 long, < 0 short), or with exchange
symbology (``exchange,contract,expiry,put_call,strike``) and gross ``long,short`` quantities, as the
position files of clearing firms carry them (:func:`read_positions`).

The whole file is validated before anything is computed: unknown instrument,
non-numeric or fractional quantity, missing column, duplicate (account, instrument)
row (or, on request, duplicates summed with a warning) and an empty file each fail with the
file, line and field.
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

    def entries(self) -> dict[str, dict[str, int]]:
        """The open positions by account and instrument (zeros left out), as plain ints (JSON)."""
        rows, columns = np.nonzero(self.quantity)
        out: dict[str, dict[str, int]] = {}
        for i, j in zip(rows.tolist(), columns.tolist(), strict=True):
            out.setdefault(self.accounts[i], {})[self.instruments[j]] = int(self.quantity[i, j])
        return out


def load_positions(path: Path, catalogue: Catalogue) -> Book:
    """The positions of ``path``; a duplicate (account, instrument) row is refused."""
    return read_positions(path, catalogue)[0]


def read_positions(path: Path, catalogue: Catalogue, *, sum_duplicates: bool = False) -> tuple[Book, list[str]]:
    """The positions of ``path`` and what was done to read them (warnings).

    A row names its contract by ``instrument`` (the catalogue's name) or by exchange symbology: ``exchange``,
    ``contract`` (the product code), ``expiry`` (``YYYYMM``, ``YYYYMMDD`` or ``YYYY-MM-DD``) and, for an
    option, ``put_call`` (``P``/``C``) and ``strike``; its size is ``quantity`` (net, > 0 long) or gross
    ``long`` and ``short`` (each >= 0; the account is margined on their difference). A second row for the
    same account and contract is refused, or summed into the first with a warning when ``sum_duplicates``."""
    symbols: dict[tuple, list[str]] | None = None

    def resolve(row: dict[str, str], by_symbol: bool, line: int) -> str:
        nonlocal symbols
        if by_symbol:
            symbols = _symbology(catalogue) if symbols is None else symbols
            found = symbols.get(symbol_key(row, path, line), [])
            name = one_match(found, row, "in the catalogue", path, line)
        else:
            name = row["instrument"]
        if name not in catalogue:
            raise InputError(f"unknown instrument '{name}' (not in {catalogue.source})", path=path, line=line,
                             field="instrument")
        return name

    entries, warnings = read_entries(path, resolve, sum_duplicates=sum_duplicates)
    return book_from_entries(entries, catalogue), warnings


def read_entries(path: Path, resolve, *, sum_duplicates: bool = False,
                 symbology_only: bool = False) -> tuple[list[tuple[str, str, int]], list[str]]:
    """``(account, contract, net quantity)`` of every distinct row of ``path`` and the warnings; ``resolve(row,
    by_symbol, line)`` names a row's contract (raising :class:`InputError` for one it does not know).
    ``symbology_only``: the file must name contracts by exchange symbology."""
    path = Path(path)
    rows = read_rows(path, ["account"])
    header = set(rows[0][1])
    by_symbol = "instrument" not in header
    gross = "quantity" not in header
    symbology, sizes = ("exchange", "contract", "expiry"), ("long", "short")
    missing = []
    if symbology_only and not by_symbol:
        raise InputError("these contracts are named by exchange symbology: give exchange,contract,expiry"
                         "[,put_call,strike] instead of instrument", path=path, line=1, field="instrument")
    if by_symbol:  # neither form at all: the plain form's column is what is missing
        missing += [n for n in symbology if n not in header] if header & set(symbology) else ["instrument"]
    if gross:
        missing += [n for n in sizes if n not in header] if header & set(sizes) else ["quantity"]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}: a row names its contract by instrument or by "
                         "exchange,contract,expiry[,put_call,strike], and its size by quantity or long,short",
                         path=path, line=1, field=missing[0])
    seen: dict[tuple[str, str], int] = {}
    totals: dict[tuple[str, str], int] = {}
    summed: list[str] = []
    for line, row in rows:
        account = row["account"]
        if not account:
            raise InputError("account is blank", path=path, line=line, field="account")
        name = resolve(row, by_symbol, line)
        if gross:
            long, short = _contracts(row, "long", path, line), _contracts(row, "short", path, line)
            if long < 0 or short < 0:
                raise InputError("gross long and short are >= 0", path=path, line=line,
                                 field="long" if long < 0 else "short")
            quantity = long - short
        else:
            quantity = _contracts(row, "quantity", path, line)
        key = (account, name)
        if key in seen:
            if not sum_duplicates:
                raise InputError(f"duplicate row for account '{account}' and instrument '{name}' (first on line "
                                 f"{seen[key]}); --sum-duplicates adds them up", path=path, line=line,
                                 field="instrument")
            summed.append(f"{account} {name} (lines {seen[key]} and {line})")
        else:
            seen[key] = line
        totals[key] = totals.get(key, 0) + quantity
    warnings = [f"{path.name}: duplicate rows summed: {'; '.join(summed)}"] if summed else []
    return [(account, name, q) for (account, name), q in totals.items()], warnings


def _contracts(row: dict[str, str], field: str, path: Path, line: int) -> int:
    quantity = parse_decimal(row[field], path=path, line=line, field=field)
    if quantity != quantity.to_integral_value():
        raise InputError(f"{field} '{row[field]}' is not a whole number of contracts", path=path, line=line,
                         field=field)
    if abs(quantity) > Decimal(10) ** 12:
        raise InputError(f"{field} '{row[field]}' exceeds 1e12 contracts", path=path, line=line, field=field)
    return int(quantity)


def _symbology(catalogue: Catalogue) -> dict[tuple, list[str]]:
    """(exchange, product code, expiry month, put/call, strike) -> instruments of the catalogue."""
    out: dict[tuple, list[str]] = {}
    for one in catalogue.select(list(catalogue.instruments)):
        if one.exchange is None or one.product_code is None or one.expiry is None:
            continue
        month = str(one.expiry)[:7].replace("-", "")
        kind = None if one.option_type is None else one.option_type[0].upper()
        strike = None if one.strike is None else Decimal(repr(float(one.strike)))
        out.setdefault((one.exchange, one.product_code, month, kind, strike), []).append(one.instrument)
    return out


def symbol_key(row: dict[str, str], path: Path, line: int) -> tuple[str, str, str, str | None, Decimal | None]:
    """(exchange, product code, expiry month ``YYYYMM``, put/call, strike) of a row in exchange symbology."""
    expiry = row["expiry"].replace("-", "")
    if len(expiry) not in (6, 8) or not expiry.isdigit():
        raise InputError(f"expiry '{row['expiry']}' is not YYYYMM, YYYYMMDD or YYYY-MM-DD", path=path, line=line,
                         field="expiry")
    kind = row.get("put_call", "").upper()[:1] or None
    if kind not in (None, "P", "C"):
        raise InputError(f"put_call '{row['put_call']}' is not P or C", path=path, line=line, field="put_call")
    strike = None
    if kind is not None:
        strike = parse_decimal(row.get("strike", ""), path=path, line=line, field="strike")
    return row["exchange"].upper(), row["contract"].upper(), expiry[:6], kind, strike


def one_match(found: list[str], row: dict[str, str], where: str, path: Path, line: int) -> str:
    """The one contract a row's symbology matches, else an error naming the row's contract."""
    if len(found) == 1:
        return found[0]
    what = f"{row['exchange']} {row['contract']} {row['expiry']}"
    if row.get("put_call"):
        what += f" {row['put_call']} {row.get('strike', '')}"
    reason = "no contract" if not found else f"{len(found)} contracts ({', '.join(found)})"
    raise InputError(f"{what}: {reason} {where} matches", path=path, line=line, field="contract")


def book_from_entries(entries: list[tuple[str, str, int]], catalogue: Catalogue) -> Book:
    """Dense book from (account, instrument, quantity) triples; instruments in catalogue order."""
    return dense_book(entries, catalogue.instruments)


def dense_book(entries: list[tuple[str, str, int]], order) -> Book:
    """Dense book from (account, contract, quantity) triples; the contracts held, in the order of ``order``."""
    accounts = sorted({account for account, _, _ in entries})
    used = {name for _, name, _ in entries}
    instruments = [name for name in order if name in used]
    account_index = {name: i for i, name in enumerate(accounts)}
    instrument_index = {name: j for j, name in enumerate(instruments)}
    quantity = np.zeros((len(accounts), len(instruments)), dtype=np.int64)
    for account, name, amount in entries:
        quantity[account_index[account], instrument_index[name]] += amount
    return Book(accounts, instruments, quantity)
