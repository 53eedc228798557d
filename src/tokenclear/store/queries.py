"""Typed queries of the clearing book: the questions the workflow asks of it, each in one place."""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tokenclear.clearing.calls import DEFAULTED, OPEN_STATES
from tokenclear.store.models import (
    Account,
    Cycle,
    DefaultCase,
    Holding,
    Instruction,
    MarginCall,
    Member,
    Position,
    Requirement,
)


def open_call(session: Session, account_id: str) -> MarginCall | None:
    return session.scalar(select(MarginCall).where(MarginCall.account_id == account_id,
                                                   MarginCall.state.in_(OPEN_STATES)))


def in_default(session: Session, account_id: str) -> bool:
    """An account with a defaulted call, or of a member whose default is managed, is in default management's
    hands."""
    if session.scalar(select(MarginCall.id).where(MarginCall.account_id == account_id,
                                                  MarginCall.state == DEFAULTED)) is not None:
        return True
    account = session.get(Account, account_id)
    return account is not None and session.get(DefaultCase, account.member_id) is not None


def call_by_key(session: Session, key: str) -> MarginCall | None:
    return session.scalar(select(MarginCall).where(MarginCall.key == key))


def cycle_by_key(session: Session, key: str) -> Cycle | None:
    return session.scalar(select(Cycle).where(Cycle.key == key))


def last_closed_cycle(session: Session) -> Cycle | None:
    return session.scalar(select(Cycle).where(Cycle.status == "closed").order_by(Cycle.at.desc()))


def previous_closed_cycle(session: Session, cycle: Cycle) -> Cycle | None:
    """The last closed cycle before ``cycle``."""
    return session.scalar(select(Cycle).where(Cycle.status == "closed", Cycle.at < cycle.at)
                          .order_by(Cycle.at.desc()))


def open_cycles(session: Session) -> list[Cycle]:
    """Cycles recorded but not closed (a crash between their first instruction and their end), oldest first."""
    return list(session.scalars(select(Cycle).where(Cycle.status == "open").order_by(Cycle.at)))


def requirements_of(session: Session, cycle_id: int) -> list[Requirement]:
    return list(session.scalars(select(Requirement).where(Requirement.cycle_id == cycle_id)))


def previous_daily_cycle(session: Session, key: str) -> Cycle | None:
    """The last closed cycle other than ``key`` that paid VM (intraday cycles do not)."""
    return session.scalar(select(Cycle).where(Cycle.status == "closed", Cycle.key != key, Cycle.kind != "intraday")
                          .order_by(Cycle.at.desc()))


def instruction(session: Session, key: str) -> Instruction | None:
    return session.scalar(select(Instruction).where(Instruction.key == key))


def instructions_in(session: Session, statuses: tuple[str, ...]) -> list[Instruction]:
    """Instructions in ``statuses``, oldest first."""
    return list(session.scalars(select(Instruction).where(Instruction.status.in_(statuses)).order_by(Instruction.id)))


def account_by_onchain(session: Session, onchain_id: str) -> Account | None:
    return session.scalar(select(Account).where(Account.onchain_id == onchain_id))


def instruction_keys(session: Session) -> list[str]:
    return list(session.scalars(select(Instruction.key).order_by(Instruction.id)))


def accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.id)))


IN_CHUNK = 10_000  # values per SQL IN list (SQLite allows 32,766 variables a statement)


def account_ids(session: Session, onchain_ids: list[str]) -> dict[str, str]:
    """On-chain account id (hex) -> the book's account id, for those of ``onchain_ids`` the book knows."""
    out: dict[str, str] = {}
    for start in range(0, len(onchain_ids), IN_CHUNK):
        chunk = onchain_ids[start:start + IN_CHUNK]
        out.update((onchain_id, account) for onchain_id, account in session.execute(
            select(Account.onchain_id, Account.id).where(Account.onchain_id.in_(chunk))))
    return out


def accounts_in_default(session: Session, ids: list[str] | None = None) -> set[str]:
    """The accounts (of ``ids``, or all) in default management's hands (:func:`in_default`), in two queries."""
    called = select(MarginCall.account_id).where(MarginCall.state == DEFAULTED)
    managed = select(Account.id).join(DefaultCase, DefaultCase.member_id == Account.member_id)
    if ids is not None:
        called, managed = called.where(MarginCall.account_id.in_(ids)), managed.where(Account.id.in_(ids))
    return set(session.scalars(called)) | set(session.scalars(managed))


def members_in_default(session: Session) -> set[str]:
    """The members with a margin account in default management's hands (:func:`in_default`)."""
    margin = {account.id: account.member_id for account in margin_accounts(session)}
    return {margin[account] for account in accounts_in_default(session) if account in margin}


def last_cycle_date(session: Session) -> str | None:
    """The date of the closes the book was last valued at (its last closed cycle), or None."""
    last = last_closed_cycle(session)
    return None if last is None else last.detail.get("date")


def margin_accounts(session: Session) -> list[Account]:
    """The accounts the margin cycle covers: house and customer (a default-fund account is neither)."""
    return list(session.scalars(select(Account).where(Account.segregation.in_(("HOUSE", "CUSTOMER")))
                                .order_by(Account.id)))


def wallets(session: Session) -> dict[str, str]:
    """Each account's member wallet."""
    members = {member.id: member.wallet for member in session.scalars(select(Member))}
    return {account.id: members[account.member_id] for account in session.scalars(select(Account))}


def holdings(session: Session) -> dict[tuple[str, str], int]:
    """(account, token symbol) -> base units the book holds."""
    return {(h.account_id, h.asset): int(h.units) for h in session.scalars(select(Holding))}


def latest_requirement(session: Session, account_id: str) -> Decimal:
    """The account's requirement of the latest cycle (USD); 0.00 before the first."""
    row = session.scalar(select(Requirement).join(Cycle, Requirement.cycle_id == Cycle.id)
                         .where(Requirement.account_id == account_id).order_by(Cycle.at.desc()))
    return Decimal("0.00") if row is None else row.requirement


def positions(session: Session) -> list[tuple[str, str, int]]:
    """(account, instrument, signed contracts) of every open position."""
    return [(row.account_id, row.instrument, int(row.quantity)) for row in session.scalars(select(Position))]


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC columns; every time in the book is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def holding_units(session: Session, symbol: str, account_ids: list[str]) -> dict[str, int]:
    """Units of ``symbol`` the book holds for each of ``account_ids`` (token base units; absent: none)."""
    rows = session.scalars(select(Holding).where(Holding.asset == symbol, Holding.account_id.in_(account_ids)))
    return {holding.account_id: int(holding.units) for holding in rows}


def last_risk_detail(session: Session, known: Container[int] = ()) -> tuple[int, dict | None] | None:
    """(cycle id, stored risk state) of the last cycle that measured one, None before the first. A cycle
    records its risk once and keeps it, so for a cycle id in ``known`` the state is not read again: (id, None)."""
    for cycle_id in session.scalars(select(Cycle.id).order_by(Cycle.at.desc(), Cycle.id.desc())):
        if cycle_id in known:
            return cycle_id, None
        detail = session.scalar(select(Cycle.detail).where(Cycle.id == cycle_id))
        if "risk" in detail:
            return cycle_id, detail["risk"]
    return None
