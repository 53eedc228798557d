"""The store: an engine, its migrations, sessions, and the idempotent instruction log.

``open_store(url)`` upgrades the schema with Alembic (the schema is made only by migrations).
SQLite is the embedded default (``sqlite:///tokenclear.db``); PostgreSQL via ``postgresql+psycopg://``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tokenclear.errors import TokenclearError
from tokenclear.store.models import Instruction

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30


class StoreError(TokenclearError):
    """The database refused or could not carry out a step (nothing of the step was written)."""


class KeyReused(StoreError):
    """An idempotency key came back with different parameters (Stripe: an error, not a replay)."""


def digest(params: dict) -> str:
    """sha256 of the parameters' canonical JSON."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def _sqlite_pragmas(busy_timeout_s: float):
    def apply(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return apply


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@dataclass(frozen=True)
class Recorded:
    """The result of recording an instruction: ``created`` False = a replay of ``instruction``."""

    instruction: Instruction
    created: bool


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed at the end, rolled back whole on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as error:
            session.rollback()
            raise StoreError(f"database error, nothing written: {error.orig}") from error
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def record(self, session: Session, *, key: str, kind: str, params: dict, now: datetime) -> Recorded:
        """Insert the instruction under ``key``, or return the first one for a replay.

        Same key and same parameters: the stored instruction (and its result). Same key with
        other parameters: :class:`KeyReused`.
        """
        wanted = digest(params)
        found = session.scalar(select(Instruction).where(Instruction.key == key))
        if found is None:
            row = Instruction(key=key, kind=kind, params_digest=wanted, params=params, status="pending", result={},
                              created_at=now, updated_at=now)
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:  # another writer inserted the key meanwhile
                found = session.scalar(select(Instruction).where(Instruction.key == key))
            else:
                return Recorded(row, True)
        if found.kind != kind or found.params_digest != wanted:
            raise KeyReused(f"instruction key '{key}' was first used for {found.kind} with other parameters")
        return Recorded(found, False)

    def in_flight(self) -> list[Instruction]:
        with self.session() as session:
            return list(session.scalars(select(Instruction).where(Instruction.status == "pending")
                                        .order_by(Instruction.id)))


def open_store(url: str, *, busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> Store:
    """Connect and bring the schema to the newest migration. ``busy_timeout_s``: how long a SQLite
    writer waits for another's lock before the step fails (whole) with :class:`StoreError`."""
    try:
        engine = create_engine(url, future=True)
    except Exception as error:  # noqa: BLE001 - a bad URL is an input error, whatever the driver raises
        raise StoreError(f"cannot use database URL: {error}") from error
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_s))
    try:
        migrate(engine)
    except OperationalError as error:
        raise StoreError(f"cannot open the database: {error.orig}") from error
    return Store(engine)
