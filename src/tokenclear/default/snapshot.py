"""The book in the store as the stress run's input files: ``positions.csv`` (account,instrument,quantity) and
``collateral.csv`` (account,asset,quantity in whole units of the registry asset), written to a folder. Default
management and the default fund's recalculation price the store's book through the same files a risk officer
would pass to ``tokenclear stress``; the files' sha256 is recorded with the result."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from tokenclear.clearing.interfaces import LedgerPort, StorePort
from tokenclear.clearing.parameters import TokenAsset
from tokenclear.store.models import Account, Holding, Position

#: The segregations the margin cycle and the stress run cover (a default-fund account is neither).
MARGIN_SEGREGATIONS = ("HOUSE", "CUSTOMER")


def write(store: StorePort, ledger: LedgerPort, tokens: list[TokenAsset], folder: Path) -> dict[str, str]:
    """Write both files into ``folder``; returns each file's sha256. Units are exact (base units over the
    token's decimals, as decimal text)."""
    asset_of = {token.symbol: token.asset for token in tokens}
    places = {token.symbol: ledger.asset_parameters(token.symbol).decimals for token in tokens}
    with store.session() as session:
        margin = {row.id for row in session.scalars(select(Account)) if row.segregation in MARGIN_SEGREGATIONS}
        positions = [(row.account_id, row.instrument, int(row.quantity)) for row in
                     session.scalars(select(Position).order_by(Position.account_id, Position.instrument))
                     if row.account_id in margin and row.quantity]
        holdings = [(row.account_id, row.asset, int(row.units)) for row in
                    session.scalars(select(Holding).order_by(Holding.account_id, Holding.asset))
                    if row.account_id in margin and int(row.units) > 0 and row.asset in asset_of]
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["account,instrument,quantity", *(f"{a},{i},{q}" for a, i, q in positions)]
    (folder / "positions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = ["account,asset,quantity", *(f"{a},{asset_of[s]},{Decimal(u).scaleb(-places[s])}"
                                         for a, s, u in holdings)]
    (folder / "collateral.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in ("positions.csv", "collateral.csv")}


@contextmanager
def files(store: StorePort, ledger: LedgerPort, tokens: list[TokenAsset]) -> Iterator[tuple[Path, Path, dict]]:
    """``(positions.csv, collateral.csv, their sha256)`` of the book, in a folder removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        digests = write(store, ledger, tokens, Path(folder))
        yield Path(folder) / "positions.csv", Path(folder) / "collateral.csv", digests
