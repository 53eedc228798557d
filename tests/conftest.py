"""Shared builders: small synthetic markets whose margins can be computed by hand."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tokenclear.book.positions import Book, book_from_entries
from tokenclear.instruments.catalogue import Catalogue, Instrument
from tokenclear.instruments.underlyings import Underlying
from tokenclear.margin.context import Context, RunConfig, build_context
from tokenclear.market.files import load_folder
from tokenclear.market.history import MarketData, PriceSeries
from tokenclear.settings import PROJECT_DATA

START = np.datetime64("2020-01-01")


def series(name: str, closes: list[float] | np.ndarray, start: np.datetime64 = START) -> PriceSeries:
    closes = np.asarray(closes, dtype=np.float64)
    return PriceSeries(name, start + np.arange(closes.size).astype("timedelta64[D]"), closes)


def future(name: str, underlying: str, multiplier: str = "1", expiry: str | None = None,
           kind: str | None = None) -> Instrument:
    kind = kind or ("future" if expiry else "perpetual")
    return Instrument(name, kind, underlying, Decimal(multiplier), "USD",
                      None if expiry is None else np.datetime64(expiry))


def context_of(prices: dict[str, np.ndarray], instruments: list[Instrument], entries: list[tuple[str, str, int]],
               *, specs: dict[str, Underlying] | None = None, as_of: np.datetime64 | None = None,
               **config: object) -> Context:
    """A context on a 24/7 grid (every calendar day), so synthetic dates need no holidays."""
    market = MarketData({name: series(name, values) for name, values in prices.items()})
    catalogue = Catalogue({one.instrument: one for one in instruments})
    book = book_from_entries(entries, catalogue)
    defaults: dict[str, object] = {"risk_calendar": "24/7", "cash_calendar": "24/7", "min_scenarios": 10,
                                   "lookback": 1250}
    defaults.update(config)
    return build_context(book=book, catalogue=catalogue, market=market, specs=specs or {},
                         config=RunConfig(**defaults), as_of=as_of)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def shipped_market() -> MarketData:
    from tokenclear.instruments.underlyings import load_underlyings

    absolute = {name for name, spec in load_underlyings(PROJECT_DATA / "underlyings.csv").items()
                if spec.returns == "absolute"}
    return load_folder(PROJECT_DATA / "market", absolute=absolute)


def random_walk(seed: int, size: int, *, start: float = 100.0, vol: float = 0.02, skew: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(size) * vol
    if skew:
        shocks -= skew * vol * (rng.random(size) < 0.05)  # occasional crashes
    return start * np.exp(np.cumsum(shocks))


__all__ = ["Book", "context_of", "future", "random_walk", "series"]
