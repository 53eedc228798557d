"""A historical scenario's moves, from the shipped closes over its dates (pure: market data in, arrays out).

A risk factor moves as it did from its last close before the scenario's first day to its last close on or
before its last day (relative: c1 / c0 - 1; absolute, for series that can go negative: c1 - c0). A factor
that has no closes then (bitcoin in 2008) moves as its stress proxy did times its stress beta (or, blank, the
ratio of the two series' daily volatilities), as the margin's stress period does; with neither its move is 0
and a note says so. A collateral asset takes the lowest close of its price series inside the window, as a
ratio to the close before it: the depeg low, not the recovered close.
"""

from __future__ import annotations

import numpy as np

from tokenclear.instruments.underlyings import Underlying
from tokenclear.market.history import MarketData, PriceSeries

#: The close before the window may be this many calendar days before its first day (weekends, holidays).
LEAD_DAYS = 7


def closes_around(series: PriceSeries, start: np.datetime64, end: np.datetime64) -> tuple[float, np.ndarray] | None:
    """(the last close before ``start``, the closes from ``start`` to ``end``), or None where the series has
    no close within LEAD_DAYS before the window or none inside it."""
    before = np.flatnonzero((series.dates < start) & (series.dates >= start - LEAD_DAYS))
    inside = (series.dates >= start) & (series.dates <= end)
    if before.size == 0 or not inside.any():
        return None
    return float(series.closes[before[-1]]), series.closes[inside]


def daily_vol(series: PriceSeries) -> float:
    closes = series.closes[series.closes > 0]
    return float(np.std(np.diff(np.log(closes)))) if closes.size > 2 else 0.0


def window_moves(market: MarketData, specs: list[Underlying], proxies: dict[str, Underlying],
                 start: np.datetime64, end: np.datetime64) -> tuple[np.ndarray, list[str]]:
    """float64[factors]: each factor's move over [start, end] (units per its spec), and notes on proxies."""
    moves = np.zeros(len(specs))
    notes: list[str] = []
    still: list[str] = []
    for column, spec in enumerate(specs):  # a loop over the book's factors (a handful)
        found = closes_around(market.get(spec.name), start, end) if spec.name in market.series else None
        if found is not None:
            before, inside = found
            moves[column] = inside[-1] - before if spec.returns == "absolute" else inside[-1] / before - 1.0
            continue
        proxy = proxies.get(spec.stress_proxy) if spec.stress_proxy else None
        found = closes_around(market.get(proxy.name), start, end) if proxy and proxy.name in market.series else None
        if proxy is None or found is None:
            still.append(spec.name)
            continue
        before, inside = found
        beta = spec.stress_beta if spec.stress_beta is not None else (
            daily_vol(market.get(spec.name)) / max(daily_vol(market.get(proxy.name)), 1e-12)
            if spec.name in market.series else 1.0)
        moves[column] = beta * (inside[-1] / before - 1.0)
        notes.append(f"{spec.name} moves as {proxy.name} x {beta:.3f} from {start} to {end}")
    if still:
        notes.append(f"no closes from {start} to {end} for {', '.join(still)} (nor for a stress proxy): "
                     f"{'its move is' if len(still) == 1 else 'their moves are'} 0")
    return moves, notes


def window_lows(market: MarketData, series_names: list[str | None], start: np.datetime64,
                end: np.datetime64) -> np.ndarray:
    """float64[assets]: the lowest close inside [start, end] over the close before it (1 where the asset has
    no price series with closes there: it keeps its price)."""
    out = np.ones(len(series_names))
    for i, name in enumerate(series_names):  # a loop over the collateral assets (a handful)
        found = closes_around(market.get(name), start, end) if name and name in market.series else None
        if found is not None:
            before, inside = found
            out[i] = float(inside.min()) / before
    return out
