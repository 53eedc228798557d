"""Positions: CSV or Parquet ``account,instrument,quantity`` (contracts; > 0 long, < 0 short), or with exchange
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

from tokenclear.columns import Table, factorize, positions_in, read_table
from tokenclear.csvfiles import parse_decimal
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


def read_positions(path: Path, catalogue: Catalogue, *, sum_duplicates: bool = False,
                   row_groups: tuple[int, ...] | None = None) -> tuple[Book, list[str]]:
    """The positions of ``path`` and what was done to read them (warnings).

    A row names its contract by ``instrument`` (the catalogue's name) or by exchange symbology: ``exchange``,
    ``contract`` (the product code), ``expiry`` (``YYYYMM``, ``YYYYMMDD`` or ``YYYY-MM-DD``) and, for an
    option, ``put_call`` (``P``/``C``) and ``strike``; its size is ``quantity`` (net, > 0 long) or gross
    ``long`` and ``short`` (each >= 0; the account is margined on their difference). A second row for the
    same account and contract is refused, or summed into the first with a warning when ``sum_duplicates``.
    ``row_groups``: only those row groups of a Parquet file (a partition of a distributed run)."""
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

    entries, warnings = read_entries(path, resolve, sum_duplicates=sum_duplicates, row_groups=row_groups)
    return book_from_entries(entries, catalogue), warnings


@dataclass(frozen=True)
class Entries:
    """The distinct (account, contract) positions of a file, in the order they first appear: equal-length
    arrays of account names, contract names (object) and net quantities in contracts (int64)."""

    account: np.ndarray
    contract: np.ndarray
    quantity: np.ndarray


#: Columns a positions file may carry: the contract by name or by exchange symbology, the size net or gross.
_TEXT = ("instrument", "exchange", "contract", "expiry", "put_call", "strike")
_SIZES = ("quantity", "long", "short")


def read_entries(path: Path, resolve, *, sum_duplicates: bool = False, symbology_only: bool = False,
                 row_groups: tuple[int, ...] | None = None) -> tuple[Entries, list[str]]:
    """The distinct positions of ``path`` (CSV or Parquet) and the warnings; ``resolve(row, by_symbol, line)``
    names a row's contract (raising :class:`InputError` for one it does not know). It is called once per
    distinct contract (``row`` is the first row naming it), so a book of millions of rows costs a loop over
    its contracts only; every other check is vectorised and names the first offending line.
    ``symbology_only``: the file must name contracts by exchange symbology."""
    path = Path(path)
    table = read_table(path, {"account": "text"}, optional={**{name: "text" for name in _TEXT},
                                                             **{name: "whole" for name in _SIZES}},
                       row_groups=row_groups)
    header = set(table.header)
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
    account = table["account"]
    table.check(account == "", "account", lambda _: "account is blank")
    contract = _resolve_contracts(table, resolve, by_symbol)
    quantity = _net_quantity(table, gross)
    return _distinct(table, account, contract, quantity, sum_duplicates)


def _resolve_contracts(table: Table, resolve, by_symbol: bool) -> np.ndarray:
    """Each row's contract name: ``resolve`` once per distinct key, in the order keys first appear (so the
    first failing key is the first offending line)."""
    keys = [name for name in (_TEXT[1:] if by_symbol else _TEXT[:1]) if name in table]
    codes = [factorize(table[name])[0] for name in keys]
    key = codes[0] if len(codes) == 1 else np.column_stack(codes)  # one column: a 1-D unique, far faster
    _, first, inverse = np.unique(key, axis=None if len(codes) == 1 else 0, return_index=True, return_inverse=True)
    names = np.empty(first.size, dtype=object)
    for key in np.argsort(first).tolist():  # a loop over distinct contracts, not rows
        row = int(first[key])
        names[key] = resolve({name: table[name][row] for name in keys}, by_symbol, int(table.lines[row]))
    return names[inverse.ravel()]


def _net_quantity(table: Table, gross: bool) -> np.ndarray:
    if gross:
        long, short = table["long"], table["short"]
        table.check(long < 0, "long", lambda _: "gross long and short are >= 0")
        table.check(short < 0, "short", lambda _: "gross long and short are >= 0")
        sized = {"long": long, "short": short}
        quantity = long - short
    else:
        sized = {"quantity": table["quantity"]}
        quantity = sized["quantity"]
    for field, values in sized.items():
        table.check(np.abs(values) > 10 ** 12, field,
                    lambda row, field=field, values=values: f"{field} '{values[row]}' exceeds 1e12 contracts")
    return quantity


def _distinct(table: Table, account: np.ndarray, contract: np.ndarray, quantity: np.ndarray,
              sum_duplicates: bool) -> tuple[Entries, list[str]]:
    """One entry per (account, contract), duplicates refused (or summed, with a warning naming each)."""
    account_code, _ = factorize(account)
    contract_code, contract_names = factorize(contract)
    pair = account_code.astype(np.int64) * len(contract_names) + contract_code
    _, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    twice = np.flatnonzero(first[inverse] != np.arange(pair.size))
    warnings = []
    if twice.size and not sum_duplicates:
        row = int(twice[0])
        raise table.error(f"duplicate row for account '{account[row]}' and instrument '{contract[row]}' (first on "
                          f"line {table.lines[first[inverse[row]]]}); --sum-duplicates adds them up", row,
                          "instrument")
    if twice.size:
        summed = [f"{account[row]} {contract[row]} (lines {table.lines[first[inverse[row]]]} and {table.lines[row]})"
                  for row in twice.tolist()]  # a loop over the duplicates only
        warnings.append(f"{table.path.name}: duplicate rows summed: {'; '.join(summed)}")
    totals = np.zeros(first.size, dtype=np.int64)
    np.add.at(totals, inverse, quantity)
    order = np.argsort(first, kind="stable")
    rows = first[order]
    return Entries(account[rows], contract[rows], totals[order]), warnings


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


def book_from_entries(entries: list[tuple[str, str, int]] | Entries, catalogue: Catalogue) -> Book:
    """Dense book from (account, instrument, quantity) triples; instruments in catalogue order."""
    return dense_book(entries, catalogue.instruments)


def dense_book(entries: list[tuple[str, str, int]] | Entries, order) -> Book:
    """Dense book from positions (triples or :class:`Entries`); accounts sorted, the contracts held in the order
    of ``order``."""
    if not isinstance(entries, Entries):
        columns = list(zip(*entries, strict=True)) or [(), (), ()]
        entries = Entries(np.asarray(columns[0], dtype=object), np.asarray(columns[1], dtype=object),
                          np.asarray(columns[2], dtype=np.int64))
    accounts, row = np.unique(entries.account.astype(str), return_inverse=True)
    used = set(entries.contract.tolist())
    instruments = [name for name in order if name in used]
    column = positions_in(entries.contract, instruments)
    quantity = np.zeros((accounts.size, len(instruments)), dtype=np.int64)
    np.add.at(quantity, (row.ravel(), column), entries.quantity)
    return Book(accounts.tolist(), instruments, quantity)
