"""Shared fixtures: the shipped collateral reference data and the market data it reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tokenclear.collateral import files
from tokenclear.settings import PROJECT_DATA

COLLATERAL = PROJECT_DATA / "collateral"


@pytest.fixture(scope="session")
def reference() -> files.Reference:
    return files.load_reference(COLLATERAL)


@pytest.fixture(scope="session")
def market(reference):
    """(prices, volumes) for the shipped registry, margin currency USD."""
    return files.load_market(PROJECT_DATA / "market", PROJECT_DATA / "volume", reference.registry, "USD")


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of data/collateral to break on purpose."""
    target = tmp_path / "collateral"
    shutil.copytree(COLLATERAL, target)
    return target
