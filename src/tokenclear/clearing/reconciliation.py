"""The book against the chain: the book's holdings follow the vault's events (sync), and reconciliation
compares them per account and token, and in total, every difference with its cause."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tokenclear.clearing.interfaces import LedgerPort, StorePort
from tokenclear.store import queries
from tokenclear.store.models import Holding, Reconciliation, ReconciliationBreak, SyncState


@dataclass(frozen=True)
class Break:
    account: str  # "*" for a token's vault total
    asset: str
    book_units: int
    chain_units: int
    cause: str


def sync(store: StorePort, ledger: LedgerPort, symbol_of: dict[str, str]) -> int:
    """Apply vault events after the cursor to the book's holdings, moving the cursor in the same
    transaction; returns the holding changes applied. ``symbol_of``: token address (lower case) -> symbol."""
    with store.session() as session:
        state = session.get(SyncState, "vault")
        start = ledger.deployed_block if state is None else state.block + 1
        head = ledger.block_number()
        if start > head:
            return 0
        changes = [change for event in ledger.vault_events(start, head) for change in holding_changes(event, symbol_of)]
        accounts = queries.account_ids(session, sorted({onchain_id for onchain_id, _, _ in changes}))
        applied = 0
        for onchain_id, symbol, delta in changes:
            account = accounts.get(onchain_id)
            if account is None:
                continue  # an account the book does not know: reconciliation lists it
            holding = session.get(Holding, (account, symbol))
            if holding is None:
                holding = Holding(account_id=account, asset=symbol, units=Decimal(0))
                session.add(holding)
            holding.units = Decimal(holding.units) + delta
            assert holding.units >= 0, f"book holding of {account} in {symbol} went negative"
            applied += 1
        if state is None:
            session.add(SyncState(name="vault", block=head))
        else:
            state.block = head
    return applied


def holding_changes(event, symbol_of: dict[str, str]) -> list[tuple[str, str, int]]:
    """(on-chain account id hex, token symbol, signed units) of one vault event. A token the book does not
    track is left out, never a crash: the vault's total of it then differs from the book's (reconciliation)."""
    args = event.args
    if event.name in ("Pledged", "Released", "Seized", "FundApplied"):
        symbol = symbol_of.get(str(args["token"]).lower())
        sign = 1 if event.name == "Pledged" else -1
        return [] if symbol is None else [("0x" + bytes(args["account"]).hex(), symbol, sign * int(args["amount"]))]
    if event.name == "Substituted":
        account = "0x" + bytes(args["account"]).hex()
        legs = [(symbol_of.get(str(args["token_out"]).lower()), -int(args["amount_out"])),
                (symbol_of.get(str(args["token_in"]).lower()), int(args["amount_in"]))]
        return [(account, symbol, units) for symbol, units in legs if symbol is not None]
    if event.name == "Ported":
        symbol = symbol_of.get(str(args["token"]).lower())
        units = int(args["amount"])
        return [] if symbol is None else [("0x" + bytes(args["account"]).hex(), symbol, -units),
                                          ("0x" + bytes(args["to_account"]).hex(), symbol, units)]
    return []


def compare(book: dict[tuple[str, str], int], chain: dict[tuple[str, str], int], totals: dict[str, int],
            accounts: list[str], symbols: list[str]) -> list[Break]:
    """Every difference between the book's and the chain's units, per account and token, then per token in
    total (a vault total above the book's accounts: an account the book does not know)."""
    breaks = []
    for account in accounts:
        for symbol in symbols:
            book_units, chain_units = book.get((account, symbol), 0), chain[(account, symbol)]
            if chain_units != book_units:
                cause = ("book holds units the vault does not" if book_units > chain_units
                         else "vault holds units the book has not recorded")
                breaks.append(Break(account, symbol, book_units, chain_units, cause))
    for symbol in symbols:
        total_book = sum(units for (_, held), units in book.items() if held == symbol)
        if totals[symbol] != total_book:
            breaks.append(Break("*", symbol, total_book, totals[symbol],
                                "vault total differs from the book's (an account the book does not know)"))
    return breaks


def reconcile(store: StorePort, ledger: LedgerPort, symbols: list[str], now: datetime) -> list[Break]:
    """Compare the synced book with the vault and store the run with its breaks."""
    with store.session() as session:
        book = queries.holdings(session)
        accounts = queries.accounts(session)
        block = ledger.block_number()
        held = ledger.holdings([bytes.fromhex(a.onchain_id[2:]) for a in accounts], symbols)  # a few bulk calls
        chain = {(a.id, s): units for a, row in zip(accounts, held, strict=True)
                 for s, units in zip(symbols, row, strict=True)}
        breaks = compare(book, chain, {s: ledger.total_held(s) for s in symbols}, [a.id for a in accounts], symbols)
        run = Reconciliation(at=now, block=block, accounts=len(accounts), breaks=len(breaks))
        session.add(run)
        session.flush()
        for one in breaks:
            session.add(ReconciliationBreak(reconciliation_id=run.id, account_id=one.account, asset=one.asset,
                                            book_units=Decimal(one.book_units), chain_units=Decimal(one.chain_units),
                                            cause=one.cause))
    return breaks
