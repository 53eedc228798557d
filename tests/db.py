"""Database fixtures shared by the store and workflow tests: SQLite files and a throw-away
PostgreSQL cluster (one per test session and xdist worker), a fresh database per test."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from tokenclear.store.throwaway import postgres_cluster

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    with postgres_cluster() as url:
        yield url


def fresh_postgres(server_url: str) -> str:
    name = f"t{next(_names)}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'book.db'}"
    return fresh_postgres(request.getfixturevalue("postgres_server"))
