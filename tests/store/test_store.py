"""The store on SQLite and on a real PostgreSQL: migrations, exact money, idempotent instructions,
whole-transaction rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select, text

from tokenclear.store.models import Account, Cycle, Holding, Instruction, MarginCall, Member
from tokenclear.store.store import KeyReused, StoreError, open_store

NOW = datetime(2023, 3, 11, 21, 0, tzinfo=UTC)


def seed(session) -> None:
    session.add(Member(id="M01", name="Member 1", group_name="G1", wallet="0x" + "11" * 20))
    session.flush()
    session.add(Account(id="M01-HOUSE", member_id="M01", segregation="HOUSE", onchain_id="0x" + "ab" * 32))
    session.add(Cycle(id=1, key="scheduled:1", at=NOW, kind="scheduled", status="closed", detail={}))
    session.flush()


def test_migrations_make_the_schema_and_rerun_as_no_op(database_url):
    store = open_store(database_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"members", "accounts", "holdings", "margin_calls", "instructions", "reconciliations",
            "leases", "api_clients", "api_requests", "audit_log", "service_events", "price_quotes",
            "alembic_version"} <= tables
    again = open_store(database_url)
    with again.engine.connect() as connection:
        assert connection.execute(text("select version_num from alembic_version")).scalar() == "0006"


def test_calls_issued_before_message_ids_get_theirs(tmp_path):
    """Revision 0004 gives every existing call the ISO 20022 transaction id the code would give it."""
    from sqlalchemy import create_engine

    from tokenclear.clearing.iso20022 import message_id
    from tokenclear.store.store import migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    migrate(engine, "0003")
    with engine.begin() as connection:
        connection.execute(text("insert into members (id, name, group_name, wallet) values "
                                "('M01', 'M01', 'M01', '0x01')"))
        connection.execute(text("insert into accounts (id, member_id, segregation, onchain_id) values "
                                "('M01-HOUSE', 'M01', 'HOUSE', '0x00')"))
        connection.execute(text("insert into cycles (id, key, at, kind, status, detail) values "
                                "(1, 'scheduled:1', '2023-03-10 00:00:00', 'scheduled', 'closed', '{}')"))
        connection.execute(text("insert into margin_calls (key, account_id, cycle_id, amount, currency, issued_at, "
                                "deadline, state, cured_amount) values ('call:scheduled:1:M01-HOUSE', 'M01-HOUSE', 1, "
                                "'10.00', 'USD', '2023-03-10 00:00:00', '2023-03-10 01:00:00', 'issued', '0.00')"))
    store = open_store(url)
    with store.session() as session:
        call = session.scalar(select(MarginCall))
        assert call.message_id == message_id("call:scheduled:1:M01-HOUSE") and len(call.message_id) == 35


def test_money_and_units_round_trip_exactly(database_url):
    store = open_store(database_url)
    huge = 2**255 + 12_345  # far beyond 64 bits and beyond a float's 53-bit mantissa
    with store.session() as session:
        seed(session)
        session.add(Holding(account_id="M01-HOUSE", asset="WETH", units=Decimal(huge)))
    with store.session() as session:
        assert int(session.get(Holding, ("M01-HOUSE", "WETH")).units) == huge
    with store.session() as session:
        call = MarginCall(key="c1", account_id="M01-HOUSE", cycle_id=1, amount=Decimal("98765432109876543.21"),
                          currency="USD", issued_at=NOW, deadline=NOW, state="issued")
        session.add(call)
    with store.session() as session:
        assert session.scalar(select(MarginCall)).amount == Decimal("98765432109876543.21")


def test_a_third_decimal_place_is_refused_not_rounded(database_url):
    store = open_store(database_url)
    with pytest.raises(Exception, match="more than 2 decimal places"), store.session() as session:
        seed(session)
        session.add(MarginCall(key="c1", account_id="M01-HOUSE", cycle_id=1, amount=Decimal("1.005"),
                               currency="USD", issued_at=NOW, deadline=NOW, state="issued"))
    with store.session() as session:
        assert session.scalar(select(Member)) is None  # the whole step was rolled back


def test_instruction_keys_follow_stripes_contract(database_url):
    store = open_store(database_url)
    with store.session() as session:
        first = store.record(session, key="pledge:1", kind="pledge", params={"units": 5}, now=NOW)
    assert first.created
    with store.session() as session:
        replay = store.record(session, key="pledge:1", kind="pledge", params={"units": 5}, now=NOW)
        assert not replay.created and replay.instruction.id == first.instruction.id
    with pytest.raises(KeyReused, match="other parameters"), store.session() as session:
        store.record(session, key="pledge:1", kind="pledge", params={"units": 6}, now=NOW)
    with store.session() as session:
        assert len(session.scalars(select(Instruction)).all()) == 1
    assert [one.key for one in store.in_flight()] == ["pledge:1"]


def test_a_bad_database_url_or_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError):
        open_store("nosuchdb://x")
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store(f"sqlite:///{tmp_path / 'missing-folder' / 'book.db'}")


def test_a_locked_sqlite_database_fails_the_step_whole(tmp_path):
    import sqlite3

    path = tmp_path / "book.db"
    store = open_store(f"sqlite:///{path}", busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="nothing written: database is locked"), store.session() as session:
            seed(session)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with store.session() as session:
        assert session.scalar(select(Member)) is None
        seed(session)
    with store.session() as session:
        assert session.scalar(select(Member)).id == "M01"


def test_the_migrations_make_the_tables_the_models_describe(database_url):
    """Alembic's comparison of the migrated schema with the models finds no table, column or index missing."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tokenclear.store.models import Base

    store = open_store(database_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    structural = [d for d in differences if isinstance(d, tuple) and d[0] in ("add_table", "remove_table",
                                                                              "add_column", "remove_column",
                                                                              "add_index", "remove_index")]
    assert structural == []
