"""Price histories (pure): series of daily closes and their alignment on a calendar grid.

Prices may be negative (WTI settled at -37.63 USD on 2020-04-20); nothing here assumes
positivity. Returns are built in :mod:`tokenclear.margin.scenarios`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tokenclear.arrays import DateArray1D, Float64Array1D, Float64Array2D
from tokenclear.errors import MarketDataError


@dataclass(frozen=True)
class PriceSeries:
    """Daily closes of one series, dates strictly ascending (``datetime64[D]``)."""

    name: str
    dates: DateArray1D
    closes: Float64Array1D


@dataclass(frozen=True)
class MarketData:
    """A set of price series keyed by name (the CSV file stem, e.g. ``btc_usd``)."""

    series: dict[str, PriceSeries] = field(default_factory=dict)

    def get(self, name: str) -> PriceSeries:
        try:
            return self.series[name]
        except KeyError:
            known = ", ".join(sorted(self.series)) or "none"
            raise MarketDataError(f"no price series '{name}' (known: {known})") from None

    def restrict(self, names: list[str]) -> MarketData:
        return MarketData({name: self.get(name) for name in names})


def align(series: list[PriceSeries], grid: DateArray1D, *, max_stale_days: int) -> Float64Array2D:
    """Closes on ``grid`` dates: float64[len(grid), len(series)].

    Each grid date takes the series' last close on or before it; a close older than
    ``max_stale_days`` calendar days (or no close yet) is NaN. One ``searchsorted`` over
    all series at once: series ``i``'s days are offset by ``i * span`` so they sort as one array.
    """
    if not series or grid.size == 0:
        return np.full((grid.size, len(series)), np.nan)
    days = [one.dates.astype("datetime64[D]").astype(np.int64) for one in series]
    query = grid.astype("datetime64[D]").astype(np.int64)
    low = min(int(query.min()), *(int(one[0]) for one in days if one.size))
    span = max(int(query.max()), *(int(one[-1]) for one in days if one.size)) - low + 1
    offsets = np.arange(len(series), dtype=np.int64) * span
    keys = np.concatenate([one - low + offset for one, offset in zip(days, offsets, strict=True)])
    closes = np.concatenate([one.closes for one in series])
    first = np.cumsum([0] + [one.size for one in days[:-1]])
    wanted = offsets[:, None] + (query - low)[None, :]  # [series, grid]: ascending when the grid is
    position = np.searchsorted(keys, wanted, side="right") - 1
    safe = np.maximum(position, 0)
    fresh = (position >= first[:, None]) & (wanted - keys[safe] <= max_stale_days)
    return np.where(fresh, closes[safe], np.nan).T


def common_grid(series: list[PriceSeries], sessions: DateArray1D) -> DateArray1D:
    """Sessions between the latest first date and the earliest last date of ``series``."""
    if not series:
        raise MarketDataError("no price series to align")
    start = max(one.dates[0] for one in series)
    end = min(one.dates[-1] for one in series)
    if start > end:
        names = ", ".join(one.name for one in series)
        raise MarketDataError(f"price series {names} share no common dates")
    return sessions[(sessions >= start) & (sessions <= end)]
