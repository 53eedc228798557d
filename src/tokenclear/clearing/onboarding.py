"""Onboarding (adapter: store and chain): members and their accounts from a file into the book and
onto the vault, and the end-of-day positions file into the book.

Accounts file, CSV ``account,member,segregation,wallet``: one row an account; ``segregation`` is
HOUSE or CUSTOMER; ``wallet`` the member's address (the only one that may pledge for its accounts).
A member's wallet goes on the identity registry's allow-list; each account is opened on the vault
under its pseudonymous id ``keccak256(salt || member || "/" || account)``, the salt the clearing
house's own, kept with the book. Loading the same file again changes nothing; an account the book
knows with other details is refused, naming the line.

Positions are a snapshot: loading a positions file replaces the book's positions (every account in
it must be onboarded).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from eth_utils import is_address, to_checksum_address
from sqlalchemy import delete, select

from tokenclear.book.positions import Book
from tokenclear.csvfiles import read_rows
from tokenclear.errors import InputError
from tokenclear.ledger.ledger import CUSTOMER, HOUSE, Ledger
from tokenclear.ledger.privacy import account_id
from tokenclear.store.models import Account, Deployment, Member, Position
from tokenclear.store.store import Store

SEGREGATION = {"HOUSE": HOUSE, "CUSTOMER": CUSTOMER}
SALT_RECORD = "account_salt"


@dataclass(frozen=True)
class AccountRow:
    account: str
    member: str
    segregation: str  # HOUSE or CUSTOMER
    wallet: str  # checksummed address
    line: int = 0


def read_accounts(path: Path) -> list[AccountRow]:
    """The accounts file, validated whole before anything is written."""
    rows, seen, wallets = [], set(), {}
    for line, row in read_rows(path, ["account", "member", "segregation", "wallet"]):
        for name in ("account", "member"):
            if not row[name]:
                raise InputError(f"{name} is empty", path=path, line=line, field=name)
        segregation = row["segregation"].upper()
        if segregation not in SEGREGATION:
            raise InputError(f"'{row['segregation']}' is neither HOUSE nor CUSTOMER", path=path, line=line,
                             field="segregation")
        if not is_address(row["wallet"]):
            raise InputError(f"'{row['wallet']}' is not an address", path=path, line=line, field="wallet")
        if row["account"] in seen:
            raise InputError(f"account '{row['account']}' appears twice", path=path, line=line, field="account")
        wallet = to_checksum_address(row["wallet"])
        if wallets.setdefault(row["member"], wallet) != wallet:
            raise InputError(f"member '{row['member']}' has two wallets", path=path, line=line, field="wallet")
        seen.add(row["account"])
        rows.append(AccountRow(row["account"], row["member"], segregation, wallet, line))
    return rows


def account_salt(store: Store) -> bytes:
    """The clearing house's salt for account pseudonyms: drawn once, kept with the book."""
    with store.session() as session:
        record = session.get(Deployment, SALT_RECORD)
        if record is None:
            record = Deployment(name=SALT_RECORD, record={"salt": "0x" + secrets.token_bytes(32).hex()})
            session.add(record)
        return bytes.fromhex(record.record["salt"][2:])


def onboard(store: Store, ledger: Ledger, rows: list[AccountRow], *, salt: bytes, path: Path | None = None) -> int:
    """Members on the allow-list, accounts opened on the vault and recorded in the book; returns how
    many accounts were opened (0 when the file was loaded before)."""
    with store.session() as session:
        members = {m.id: m for m in session.scalars(select(Member))}
        accounts = {a.id: a for a in session.scalars(select(Account))}
    for row in rows:  # every conflict is found before anything is sent
        known = accounts.get(row.account)
        if known is not None and (known.member_id, known.segregation) != (row.member, row.segregation):
            raise InputError(f"account '{row.account}' is already in the book as {known.member_id} "
                             f"{known.segregation}", path=path, line=row.line, field="account")
        member = members.get(row.member)
        if member is not None and member.wallet != row.wallet:
            raise InputError(f"member '{row.member}' is already in the book with wallet {member.wallet}",
                             path=path, line=row.line, field="wallet")
    new_wallets = sorted({row.wallet for row in rows if row.member not in members})
    if new_wallets:
        ledger.onboard(new_wallets)  # registering a wallet twice is harmless
    opened = 0
    for row in rows:
        if row.account in accounts:
            continue
        onchain = account_id(salt, row.member, row.account)
        if not ledger.is_open(onchain):  # a crash after the chain and before the book: not opened twice
            ledger.open_account(onchain, row.wallet, SEGREGATION[row.segregation])
        with store.session() as session:
            if session.get(Member, row.member) is None:
                session.add(Member(id=row.member, name=row.member, group_name=row.member, wallet=row.wallet))
                session.flush()
            session.add(Account(id=row.account, member_id=row.member, segregation=row.segregation,
                                onchain_id="0x" + onchain.hex()))
        opened += 1
    return opened


def load_positions(store: Store, book: Book, *, path: Path | None = None) -> int:
    """Replace the book's positions by ``book`` (one transaction); returns the positions stored."""
    entries = [(account, instrument, int(book.quantity[i, j]))
               for i, account in enumerate(book.accounts) for j, instrument in enumerate(book.instruments)
               if book.quantity[i, j]]
    with store.session() as session:
        known = set(session.scalars(select(Account.id)))
        unknown = sorted({account for account, _, _ in entries} - known)
        if unknown:
            raise InputError(f"account(s) not onboarded: {', '.join(unknown[:5])}"
                             + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                             + " (load them with --accounts first)", path=path, field="account")
        session.execute(delete(Position))
        for account, instrument, quantity in entries:
            session.add(Position(account_id=account, instrument=instrument, quantity=quantity))
    return len(entries)


def read_deployment(path: Path) -> dict:
    """A deployment record written by ``tokenclear ledger deploy --out``: chain id, operator, addresses."""
    import json

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except json.JSONDecodeError as error:
        raise InputError(f"not JSON: {error}", path=path) from None
    fields = ("chain_id", "operator", "addresses", "assets", "deployed_block")
    missing = [name for name in fields if name not in record] if isinstance(record, dict) else list(fields)
    if missing:
        raise InputError(f"not a deployment record (missing {', '.join(missing)})", path=path)
    return record
