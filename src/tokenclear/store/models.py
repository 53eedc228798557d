"""Tables of the book. Money is exact: currency amounts with 2 decimals and token base units with
78 digits (a uint256 fits), ``NUMERIC`` on PostgreSQL and decimal text on SQLite; never float
(:mod:`tokenclear.store.types`). Times are UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tokenclear.store.types import ExactDecimal

Money = ExactDecimal(24, 2)
Units = ExactDecimal(78, 0)
UTC_TIME = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class Member(Base):
    __tablename__ = "members"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    group_name: Mapped[str] = mapped_column(String(128))
    wallet: Mapped[str] = mapped_column(String(42), unique=True)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    segregation: Mapped[str] = mapped_column(String(8))  # HOUSE or CUSTOMER
    onchain_id: Mapped[str] = mapped_column(String(66), unique=True)  # 0x + 32 bytes


class Holding(Base):
    """The book's view of what an account holds in the vault, in token base units."""

    __tablename__ = "holdings"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    units: Mapped[Decimal] = mapped_column(Units)


class Cycle(Base):
    __tablename__ = "cycles"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    kind: Mapped[str] = mapped_column(String(16))  # scheduled or intraday
    status: Mapped[str] = mapped_column(String(16))  # open or closed
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Requirement(Base):
    __tablename__ = "requirements"
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    requirement: Mapped[Decimal] = mapped_column(Money)  # > 0 owed by the member
    collateral: Mapped[Decimal] = mapped_column(Money)  # post-haircut, as the vault values it
    coverage: Mapped[Decimal] = mapped_column(Money)  # collateral - requirement


class MarginCall(Base):
    __tablename__ = "margin_calls"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UTC_TIME)
    deadline: Mapped[datetime] = mapped_column(UTC_TIME)
    state: Mapped[str] = mapped_column(String(20))
    cured_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    settled_at: Mapped[datetime | None] = mapped_column(UTC_TIME, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(35), nullable=True)  # ISO 20022 TxId (35 characters)

    __table_args__ = (Index("ix_margin_calls_state", "state"),
                      Index("ix_margin_calls_message_id", "message_id", unique=True))


class CallEvent(Base):
    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("margin_calls.id"))
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    source: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")


class Instruction(Base):
    """Every instruction to the chain, keyed for idempotency (Stripe's contract)."""

    __tablename__ = "instructions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    params_digest: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending, confirmed, failed
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTC_TIME)
    updated_at: Mapped[datetime] = mapped_column(UTC_TIME)

    __table_args__ = (Index("ix_instructions_status", "status"),)


class Reconciliation(Base):
    __tablename__ = "reconciliations"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    block: Mapped[int]
    accounts: Mapped[int]
    breaks: Mapped[int]


class ReconciliationBreak(Base):
    __tablename__ = "reconciliation_breaks"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("reconciliations.id"))
    account_id: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(16))
    book_units: Mapped[Decimal] = mapped_column(Units)
    chain_units: Mapped[Decimal] = mapped_column(Units)
    cause: Mapped[str] = mapped_column(Text)


class SyncState(Base):
    """How far the book has read the chain: the last block whose vault events it has applied."""

    __tablename__ = "sync_state"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    block: Mapped[int]


class Deployment(Base):
    """Where the clearing system's contracts live (``Ledger.record``), so a restart can attach to them."""

    __tablename__ = "deployments"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    record: Mapped[dict] = mapped_column(JSON)


class Position(Base):
    """Open positions in whole contracts (> 0 long); the cycle's requirements and VM are computed on these."""

    __tablename__ = "positions"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger)


class DefaultCase(Base):
    """A member's default in the default manager's hands: the plan fixed when it opened (ports, seizures, sales,
    the waterfall's transfers, each under its idempotency key) and each step's result, so a restart carries on
    from the stored plan and never re-plans on a book the first steps already changed."""

    __tablename__ = "default_cases"
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True)
    scenario: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # open or closed
    plan: Mapped[dict] = mapped_column(JSON)
    done: Mapped[dict] = mapped_column(JSON, default=dict)  # step key -> its result
    opened_at: Mapped[datetime] = mapped_column(UTC_TIME)
    closed_at: Mapped[datetime | None] = mapped_column(UTC_TIME, nullable=True)


class FundSizing(Base):
    """One sizing of the default fund (Cover 2 over the stress library on the book as it stood), monthly or on
    demand: the fund, the scenario and members that set it, and each member's contribution (USD, text)."""

    __tablename__ = "fund_sizings"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    as_of: Mapped[str] = mapped_column(String(10))
    fund: Mapped[Decimal] = mapped_column(Money)
    scenario: Mapped[str] = mapped_column(String(64))
    contributions: Mapped[dict] = mapped_column(JSON)  # member -> USD as text
    detail: Mapped[dict] = mapped_column(JSON, default=dict)  # the two members, the inputs' sha256, the rule


class Lease(Base):
    """Who runs a singleton job (the service's schedule) until when (wall-clock UTC); renewed while held."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTC_TIME)


class ApiClient(Base):
    """An OAuth2 client of the service: its argon2 secret hash, its role and (a member's client) its member."""

    __tablename__ = "api_clients"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # ccp, member, feed, regulator
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTC_TIME)
    disabled: Mapped[bool] = mapped_column(default=False)


class ApiRequest(Base):
    """A write under its Idempotency-Key (per client): the body's sha256 and the first answer, replayed as is."""

    __tablename__ = "api_requests"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(256))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(nullable=True)  # None: the first request is still running
    response: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTC_TIME)

    __table_args__ = (UniqueConstraint("actor", "key", name="uq_api_requests_actor_key"),)


class AuditEntry(Base):
    """One request to the service: who, what, the answer's status and how long it took (wall clock)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    actor: Mapped[str] = mapped_column(String(64))  # the client id, or "anonymous"
    role: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(256))
    status_code: Mapped[int]
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    milliseconds: Mapped[float]

    __table_args__ = (Index("ix_audit_log_actor", "actor"),)


class ServiceEvent(Base):
    """One run of a scheduled job that is not a cycle (the monthly haircut review, the fund's sizing, an intraday
    check), under a key that makes it run once (``review:2023-04``)."""

    __tablename__ = "service_events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class PriceQuote(Base):
    """A quote a price feed posted to the service (USD per unit, decimal text as posted), stamped with the time it
    is for; the oracle guard reads the latest per source."""

    __tablename__ = "price_quotes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    series: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    price: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTC_TIME)
    posted_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_price_quotes_series_at", "series", "at"),)
