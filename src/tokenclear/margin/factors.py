"""Risk factors: the price series a book depends on, aligned on the risk calendar.

Factors are the underlyings of the book's instruments plus the FX series that turn a
non-margin-currency instrument into the margin currency (``jpy_usd`` for a JPY
contract margined in USD). Pure: inputs are price series already loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from tokenclear.arrays import DateArray1D, Float64Array1D, Float64Array2D
from tokenclear.errors import MarketDataError
from tokenclear.instruments.underlyings import Underlying
from tokenclear.market.history import MarketData, align, common_grid


@dataclass(frozen=True)
class RiskFactors:
    """Closes of every factor on the grid; the last grid row is the as-of date."""

    names: list[str]
    specs: list[Underlying]
    grid: DateArray1D
    prices: Float64Array2D  # float64[dates, factors]; NaN = stale or missing
    grid_calendar: str

    @property
    def as_of(self) -> np.datetime64:
        return self.grid[-1]

    @property
    def spot(self) -> Float64Array1D:
        return self.prices[-1]

    @property
    def is_absolute(self) -> np.ndarray:
        return np.array([spec.returns == "absolute" for spec in self.specs])

    def index(self, name: str) -> int:
        return self.names.index(name)


def build_factors(market: MarketData, specs: list[Underlying], sessions: DateArray1D, *, calendar: str,
                  as_of: np.datetime64 | None, max_stale_days: int) -> RiskFactors:
    """Align ``specs``' series on ``sessions`` up to ``as_of`` (default: the last date all share).

    A non-session ``as_of`` (a Saturday for a 24/7 book) is appended to the grid. Fails if
    a factor has no fresh close on the as-of date.
    """
    series = [market.get(spec.name) for spec in specs]
    grid = common_grid(series, sessions)
    end = min(one.dates[-1] for one in series)
    if as_of is None:
        as_of = grid[-1]
    else:
        as_of = np.datetime64(as_of, "D")
        if as_of > end + np.timedelta64(max_stale_days, "D"):
            last = min(series, key=lambda one: one.dates[-1])
            raise MarketDataError(f"as-of {as_of} is after the last close of '{last.name}' ({last.dates[-1]})")
    grid = grid[grid <= as_of]
    if grid.size == 0 or grid[-1] != as_of:
        grid = np.append(grid, as_of)
    prices = align(series, grid, max_stale_days=max_stale_days)
    stale = np.isnan(prices[-1])
    if stale.any():
        names = ", ".join(spec.name for spec, bad in zip(specs, stale, strict=True) if bad)
        raise MarketDataError(f"no close within {max_stale_days} days of as-of {as_of} for: {names}")
    return RiskFactors([spec.name for spec in specs], specs, grid, prices, calendar)


def horizon_returns(factors: RiskFactors, horizon_days: int) -> tuple[DateArray1D, Float64Array2D]:
    """Overlapping ``horizon_days`` returns ending on each grid date, rows with a gap dropped.

    Relative factors: ``P[t] / P[t-h] - 1``; absolute factors (those that can go
    negative, like WTI): ``P[t] - P[t-h]`` in price units. Returns (end dates, float64[rows, factors]).
    """
    prices = factors.prices
    if prices.shape[0] <= horizon_days:
        raise MarketDataError(f"history of {prices.shape[0]} dates is too short for a {horizon_days}-day horizon")
    start, end = prices[:-horizon_days], prices[horizon_days:]
    absolute = factors.is_absolute
    relative_bad = (~absolute) & np.any(start <= 0, axis=0)
    if relative_bad.any():
        name = factors.names[int(np.argmax(relative_bad))]
        raise MarketDataError(f"series '{name}' has a price <= 0; declare returns=absolute for it in "
                              "underlyings.csv")
    with np.errstate(invalid="ignore", divide="ignore"):
        moves = np.where(absolute, end - start, end / start - 1.0)
    keep = ~np.isnan(moves).any(axis=1)
    return factors.grid[horizon_days:][keep], moves[keep]


def ewma_volatility(daily_moves: Float64Array2D, *, decay: float, seed_rows: int = 30) -> Float64Array2D:
    """EWMA volatility per row, including that row's move (RiskMetrics, ``decay`` = lambda).

    ``var[t] = decay * var[t-1] + (1 - decay) * move[t]**2``, seeded with the mean square
    of the first ``seed_rows`` moves. Same units as the moves (per day).
    """
    squares = daily_moves**2
    seed = squares[: max(1, min(seed_rows, squares.shape[0]))].mean(axis=0)
    variance, _ = lfilter([1.0 - decay], [1.0, -decay], squares, axis=0, zi=(decay * seed)[None, :])
    return np.sqrt(variance)


def window_rows(dates: DateArray1D, *, as_of: np.datetime64, lookback: int,
                stress_period: tuple[np.datetime64, np.datetime64] | None) -> np.ndarray:
    """Row indices of the scenario window: the last ``lookback`` rows ending at ``as_of``,
    plus the stressed period's rows when it falls outside (so the window includes it)."""
    eligible = np.flatnonzero(dates <= as_of)
    rows = eligible[-lookback:]
    if stress_period is not None:
        stressed = np.flatnonzero((dates >= stress_period[0]) & (dates <= stress_period[1]))
        if stressed.size == 0:
            raise MarketDataError(f"stressed period {stress_period[0]}..{stress_period[1]} has no data")
        rows = np.union1d(rows, stressed)
    return rows
