"""What the workflow talks to: the ledger (the chain's contracts), the store (the book), a clock and a price
feed, as Protocols; the real implementations are ``tokenclear.ledger.ledger.Ledger`` and
``tokenclear.store.store.Store``, the embedded EVM and SQLite by default."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from tokenclear.market.history import MarketData
from tokenclear.market.oracle import Quote


class LedgerPort(Protocol):
    """The clearing system's contracts, as the workflow uses them (amounts in token base units, values in
    micro-USD, prices USD per whole token with 8 decimals)."""

    operator: str
    deployed_block: int
    vault_address: str

    def block_number(self) -> int: ...
    def token_address(self, symbol: str) -> str: ...
    def set_asset(self, symbol: str, *, haircut_bps: int, price_e8: int, eligible: bool = True) -> Any: ...
    def settle_payments(self, key: str, payments: Sequence[Any], symbol: str = ...) -> list[Any]: ...
    def release(self, key: str | bytes, account: bytes, symbol: str, units: int) -> Any: ...
    def declare_default(self, account: bytes) -> Any: ...
    def set_requirements(self, key: str, floors: Sequence[Any]) -> list[Any]: ...
    def open_account(self, account: bytes, member: str, segregation: int) -> Any: ...
    def is_open(self, account: bytes) -> bool: ...
    def port(self, key: str | bytes, account: bytes, symbol: str, units: int, to_account: bytes) -> Any: ...
    def seize(self, key: str | bytes, account: bytes, symbol: str, units: int, receiver: str) -> Any: ...
    def apply_fund(self, key: str | bytes, account: bytes, symbol: str, units: int, defaulted: bytes,
                   receiver: str) -> Any: ...
    def dvp(self, key: str | bytes, asset: str, seller: str, asset_units: int, cash: str, buyer: str,
            cash_units: int) -> Any: ...
    def balance(self, symbol: str, holder: str) -> int: ...
    def is_defaulted(self, account: bytes) -> bool: ...
    def carried_out(self, key: str | bytes, function: str, caller: str | None = None) -> bool: ...
    def transfer_restriction(self, symbol: str, payer: str, receiver: str, units: int) -> str | None: ...
    def transfer_restrictions(self, symbol: str, transfers: Sequence[tuple[str, str, int]]) -> list[str | None]: ...
    def asset_parameters(self, symbol: str) -> Any: ...
    def assets_parameters(self, symbols: Sequence[str]) -> dict[str, Any]: ...
    def collateral_value(self, account: bytes) -> int: ...
    def collateral_values(self, accounts: Sequence[bytes]) -> list[int]: ...
    def held(self, account: bytes, symbol: str) -> int: ...
    def holdings(self, accounts: Sequence[bytes], symbols: Sequence[str]) -> list[list[int]]: ...
    def total_held(self, symbol: str) -> int: ...
    def vault_events(self, from_block: int | None = None, to_block: int | None = None) -> list[Any]: ...


class StorePort(Protocol):
    """The book: transactions, and instructions recorded before they are sent."""

    def session(self) -> AbstractContextManager[Any]: ...
    def record(self, session: Any, *, key: str, kind: str, params: dict, now: datetime) -> Any: ...
    def in_flight(self) -> list[Any]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock a replay moves by hand (UTC)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("a clock does not go back")
        self._now = moment


class PriceFeed(Protocol):
    def quotes(self, series: str, at: datetime) -> list[Quote]: ...


class HistoryFeed:
    """Quotes from the shipped daily closes, without look-ahead: a day's close is known once the day
    has ended (crypto closes at 24:00 UTC), so at ``at`` the quote is the last close dated before
    ``at``'s date, stamped ``at``. One source ("close"); the replay's guard needs a quorum of one."""

    def __init__(self, market: MarketData, *, max_stale_days: int = 5) -> None:
        self.market = market
        self.max_stale_days = max_stale_days

    def quotes(self, series: str, at: datetime) -> list[Quote]:
        one = self.market.get(series)
        day = np.datetime64(at.date(), "D")
        index = int(np.searchsorted(one.dates, day, side="left")) - 1
        if index < 0 or (day - one.dates[index]).astype(int) > self.max_stale_days + 1:
            return []
        return [Quote("close", float(one.closes[index]), at)]


class MarkedFeed:
    """Another feed with some series marked by hand (an operator's intraday marks): a marked series
    quotes its mark from the source ``mark``; a mark of ``None`` suspends the series (no quotes, as in
    a feed outage); the others pass through."""

    def __init__(self, base: PriceFeed, marks: dict[str, float | None]) -> None:
        self.base = base
        self.marks = dict(marks)

    def quotes(self, series: str, at: datetime) -> list[Quote]:
        if series in self.marks:
            mark = self.marks[series]
            return [] if mark is None else [Quote("mark", mark, at)]
        return self.base.quotes(series, at)
