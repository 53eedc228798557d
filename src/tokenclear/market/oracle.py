"""The oracle guard: one trustworthy price per asset from several independent sources.

Each update, per asset (``now`` is passed in; the guard reads no clock):

1. **Staleness**: quotes older than ``max_age_s`` (or stamped in the future) are dropped.
2. **Quorum**: fewer than ``min_sources`` fresh quotes trips the breaker.
3. **Agreement**: the median of the fresh quotes; a quote further than ``max_source_deviation``
   from it is an outlier and dropped (one manipulated source cannot move the price). If fewer than
   ``min_sources`` quotes agree, the breaker trips.
4. **TWAP check**: the candidate (median of the agreeing quotes) is compared with the time-weighted
   average of earlier candidates over ``twap_window_s``; a deviation above ``max_twap_deviation``
   (a flash move) trips the breaker. Every candidate enters the TWAP, so a move that persists is
   accepted once the TWAP has caught up with it, and a one-tick spike is not.
5. **Fallback** when the breaker trips: ``last-good`` keeps the last accepted price, for at most
   ``max_last_good_age_s``, and widens the asset's haircut by ``max(fallback_addon, |move|)``;
   ``halt`` (or no usable last good price) stops valuation of that asset: it counts for nothing.

Every decision is returned with its inputs, kept in :attr:`OracleGuard.decisions` and logged
(structlog, event ``price decision``).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from tokenclear.errors import ConfigurationError

FALLBACKS = ("last-good", "halt")
MAX_HISTORY = 10_000  # candidates kept per asset for the TWAP (bounded)
MAX_DECISIONS = 100_000  # audit trail kept in memory (oldest dropped; the log keeps all)
CLOCK_SKEW_S = 5.0  # a quote stamped further in the future than this is not trusted

log = structlog.get_logger("tokenclear.oracle")


@dataclass(frozen=True)
class Quote:
    source: str
    price: float  # margin currency per unit, > 0
    at: datetime  # timezone-aware UTC


@dataclass(frozen=True)
class GuardConfig:
    max_age_s: float = 300.0
    min_sources: int = 2
    max_source_deviation: float = 0.02
    max_twap_deviation: float = 0.10
    twap_window_s: float = 3600.0
    fallback: str = "last-good"
    fallback_addon: float = 0.05
    max_last_good_age_s: float = 86_400.0

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConfigurationError(f"fallback must be one of {', '.join(FALLBACKS)}")
        if self.min_sources < 1 or self.max_age_s <= 0 or self.twap_window_s <= 0:
            raise ConfigurationError("min_sources >= 1, max_age_s > 0 and twap_window_s > 0")
        if not 0 < self.max_source_deviation < 1 or not 0 < self.max_twap_deviation < 1:
            raise ConfigurationError("deviation limits must lie in (0, 1)")


@dataclass(frozen=True)
class PriceDecision:
    """``status``: ``accepted``, ``fallback`` (last good price, widened haircut) or ``halted``."""

    asset: str
    at: datetime
    status: str
    price: float | None
    haircut_addon: float
    reason: str
    fresh: dict[str, float]
    stale: dict[str, float]
    outliers: dict[str, float]
    median: float | None
    twap: float | None

    @property
    def usable(self) -> bool:
        return self.price is not None

    def as_log(self) -> dict[str, object]:
        return {"asset": self.asset, "at": self.at.isoformat(), "status": self.status, "price": self.price,
                "haircut_addon": self.haircut_addon, "reason": self.reason, "fresh": self.fresh,
                "stale": self.stale, "outliers": self.outliers, "median": self.median, "twap": self.twap}


@dataclass
class _AssetState:
    history: deque[tuple[datetime, float]] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    last_good: tuple[datetime, float] | None = None


def twap(history: list[tuple[datetime, float]], now: datetime, window_s: float) -> float | None:
    """Time-weighted average of a step path of (time, price) over the ``window_s`` before ``now``."""
    points = [(at, price) for at, price in history if at <= now]
    if not points:
        return None
    start = now.timestamp() - window_s
    total = weight = 0.0
    for index, (at, price) in enumerate(points):
        until = points[index + 1][0].timestamp() if index + 1 < len(points) else now.timestamp()
        held = until - max(at.timestamp(), start)
        if held > 0:
            total += price * held
            weight += held
    return total / weight if weight > 0 else points[-1][1]


class OracleGuard:
    """Stateful guard over many assets (state: each asset's recent candidates and last good price)."""

    def __init__(self, config: GuardConfig = GuardConfig()) -> None:
        self.config = config
        self._state: dict[str, _AssetState] = {}
        self.decisions: deque[PriceDecision] = deque(maxlen=MAX_DECISIONS)

    def state(self) -> dict:
        """The guard's memory as JSON (per asset: the candidates within the TWAP window, the last good
        price), to store with a cycle; :meth:`restore` carries on from it after a restart."""
        out = {}
        for asset, state in self._state.items():
            history = list(state.history)
            if history:
                start = history[-1][0].timestamp() - self.config.twap_window_s
                first = next((i for i, (at, _) in enumerate(history) if at.timestamp() > start), len(history))
                history = history[max(first - 1, 0):]  # the step in force at the window's start, then the rest
            out[asset] = {"history": [[at.isoformat(), price] for at, price in history],
                          "last_good": None if state.last_good is None else
                          [state.last_good[0].isoformat(), state.last_good[1]]}
        return out

    def restore(self, data: dict) -> None:
        """Carry on from :meth:`state` (replaces what the guard holds for those assets)."""
        for asset, one in data.items():
            state = _AssetState()
            state.history.extend((datetime.fromisoformat(at), float(price)) for at, price in one["history"])
            if one["last_good"] is not None:
                state.last_good = (datetime.fromisoformat(one["last_good"][0]), float(one["last_good"][1]))
            self._state[asset] = state

    def update(self, asset: str, quotes: list[Quote], now: datetime) -> PriceDecision:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        config = self.config
        state = self._state.setdefault(asset, _AssetState())
        fresh: dict[str, float] = {}
        stale: dict[str, float] = {}
        for quote in quotes:
            age_s = (now - quote.at).total_seconds()
            good = -CLOCK_SKEW_S <= age_s <= config.max_age_s and quote.price > 0
            (fresh if good else stale)[quote.source] = quote.price

        def decide(reason: str, candidate: float | None, median: float | None, outliers: dict[str, float],
                   average: float | None, move: float = 0.0) -> PriceDecision:
            if candidate is not None:
                state.last_good = (now, candidate)
                status, price, addon = "accepted", candidate, 0.0
            else:
                last = state.last_good
                age_s = None if last is None else (now - last[0]).total_seconds()
                if config.fallback == "last-good" and last is not None and age_s <= config.max_last_good_age_s:
                    status, price, addon = "fallback", last[1], max(config.fallback_addon, abs(move))
                else:
                    status, price, addon = "halted", None, 0.0
            decision = PriceDecision(asset, now, status, price, addon, reason, fresh, stale, outliers, median,
                                     average)
            self.decisions.append(decision)
            log.info("price decision", **decision.as_log())
            return decision

        if len(fresh) < config.min_sources:
            return decide(f"{len(fresh)} fresh source(s), {config.min_sources} needed", None, None, {}, None)
        median = statistics.median(fresh.values())
        outliers = {source: price for source, price in fresh.items()
                    if abs(price / median - 1.0) > config.max_source_deviation}
        agreeing = [price for source, price in fresh.items() if source not in outliers]
        if len(agreeing) < config.min_sources:
            return decide(f"sources disagree: {len(agreeing)} within {config.max_source_deviation:.1%} of the "
                          "median", None, median, outliers, None)
        candidate = statistics.median(agreeing)
        average = twap(list(state.history), now, config.twap_window_s)
        state.history.append((now, candidate))
        dropped = f"; dropped outlier(s) {', '.join(sorted(outliers))}" if outliers else ""
        if average is None:
            return decide("first price (no TWAP yet)" + dropped, candidate, median, outliers, None)
        move = candidate / average - 1.0
        if abs(move) > config.max_twap_deviation:
            return decide(f"move of {move:+.2%} from the TWAP exceeds {config.max_twap_deviation:.1%}" + dropped,
                          None, median, outliers, average, move)
        return decide("within limits" + dropped, candidate, median, outliers, average)
