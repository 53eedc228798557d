"""Risk factors: the price series a book depends on, each on its own calendar, aligned on
the risk calendar's grid.

Factors are the underlyings of the book's instruments plus the FX series that turn a
non-margin-currency instrument into the margin currency (``jpy_usd`` for a JPY
contract margined in USD). Pure: inputs are price series already loaded.

Each factor's moves are taken over ``h`` sessions of *its own* calendar (two calendar
days for a 24/7 crypto series, two business days for an index) and then sampled at the
risk grid's dates: the move of every factor ending on grid date ``t`` is its own-calendar
move ending on its last session on or before ``t``. So a 2-day BTC scenario always spans
two days, never a weekend folded into Monday, and the weekend is charged once, by the
holiday add-on (:mod:`tokenclear.margin.addons`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import DateArray1D, Float64Array1D, Float64Array2D
from tokenclear.errors import MarketDataError
from tokenclear.instruments.underlyings import Underlying
from tokenclear.market.calendars import sessions as calendar_sessions
from tokenclear.market.history import MarketData, PriceSeries, align, common_grid


@dataclass(frozen=True)
class OwnCalendar:
    """The closes of the factors that share one calendar, on that calendar's sessions up to as-of."""

    calendar: str
    columns: np.ndarray  # int[k]: the factors' columns in RiskFactors
    sessions: DateArray1D  # from the group's earliest first close
    closes: Float64Array2D  # float64[sessions, k]; NaN = stale, missing or before the factor's first close


@dataclass(frozen=True)
class RiskFactors:
    """Closes of every factor on the grid; the last grid row is the as-of date."""

    names: list[str]
    specs: list[Underlying]
    grid: DateArray1D
    prices: Float64Array2D  # float64[dates, factors]; NaN = stale or missing
    grid_calendar: str
    own: tuple[OwnCalendar, ...]  # the factors grouped by their own calendar
    max_stale_days: int = 5

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
    calendars = [spec.calendar for spec in specs]
    own = tuple(own_calendar_closes([series[column] for column in columns], name, columns, end=as_of,
                                    max_stale_days=max_stale_days)
                for name in dict.fromkeys(calendars)  # loop over calendars (two or three)
                for columns in [np.array([i for i, one in enumerate(calendars) if one == name])])
    return RiskFactors([spec.name for spec in specs], specs, grid, prices, calendar, own, max_stale_days)


def own_calendar_closes(series: list[PriceSeries], calendar: str, columns: np.ndarray, *, end: np.datetime64,
                        max_stale_days: int) -> OwnCalendar:
    """``series``' closes on ``calendar``'s sessions from their earliest first date to ``end``."""
    days = calendar_sessions(calendar)
    days = days[(days >= min(one.dates[0] for one in series)) & (days <= end)]
    return OwnCalendar(calendar, columns, days, align(series, days, max_stale_days=max_stale_days))


def sample_rows(dates: DateArray1D, values: Float64Array2D, grid: DateArray1D, *,
                max_stale_days: int) -> Float64Array2D:
    """The row of ``values`` on the last of ``dates`` on or before each grid date (NaN if older than
    ``max_stale_days``): float64[grid, columns]."""
    position = np.searchsorted(dates, grid, side="right") - 1
    safe = np.maximum(position, 0)
    fresh = (position >= 0) & ((grid - dates[safe]).astype("timedelta64[D]").astype(np.int64) <= max_stale_days)
    if dates.size == 0:
        return np.full((grid.size, values.shape[1]), np.nan)
    return np.where(fresh[:, None], values[safe], np.nan)


def sample_on_grid(dates: DateArray1D, values: Float64Array1D, grid: DateArray1D, *,
                   max_stale_days: int) -> Float64Array1D:
    """The value on the last of ``dates`` on or before each grid date (NaN if older than ``max_stale_days``)."""
    return sample_rows(dates, values[:, None], grid, max_stale_days=max_stale_days)[:, 0]


def check_positive(factors: RiskFactors) -> None:
    """Fail naming the first relative-return factor with a close <= 0 (its returns would be meaningless)."""
    absolute = factors.is_absolute
    bad = [int(column) for group in factors.own
           for column in group.columns[((group.closes <= 0).any(axis=0)) & ~absolute[group.columns]]]
    if bad:
        raise MarketDataError(f"series '{factors.names[min(bad)]}' has a price <= 0; declare returns=absolute for "
                              "it in underlyings.csv")


def group_moves(group: OwnCalendar, horizon: int, absolute: np.ndarray) -> tuple[DateArray1D, Float64Array2D]:
    """``horizon``-session moves of a calendar group's factors: (end dates, float64[dates, k]).

    ``absolute[j]``: column ``j`` moves as ``P[t] - P[t-h]`` (price units), else ``P[t] / P[t-h] - 1``."""
    closes = group.closes
    if closes.shape[0] <= horizon:
        return group.sessions[:0], closes[:0]
    start, end = closes[:-horizon], closes[horizon:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return group.sessions[horizon:], np.where(absolute[None, :], end - start, end / start - 1.0)


def session_moves(dates: DateArray1D, prices: Float64Array1D, horizon: int, *, absolute: bool,
                  name: str) -> tuple[DateArray1D, Float64Array1D]:
    """``horizon``-session moves of one series on its own sessions: (end dates, moves)."""
    if prices.size <= horizon:
        return dates[:0], prices[:0]
    start, end = prices[:-horizon], prices[horizon:]
    if absolute:
        return dates[horizon:], end - start
    if np.any(prices[~np.isnan(prices)] <= 0):
        raise MarketDataError(f"series '{name}' has a price <= 0; declare returns=absolute for it in underlyings.csv")
    return dates[horizon:], end / start - 1.0


def own_moves(factors: RiskFactors, column: int, horizon: int) -> tuple[DateArray1D, Float64Array1D]:
    """Factor ``column``'s ``horizon``-session moves on its own calendar: (end dates, moves)."""
    group = next(one for one in factors.own if column in one.columns)
    closes = group.closes[:, int(np.flatnonzero(group.columns == column)[0])]
    return session_moves(group.sessions, closes, horizon, absolute=factors.specs[column].returns == "absolute",
                         name=factors.names[column])


def stress_moves(factors: RiskFactors, market: MarketData, proxies: dict[str, Underlying], dates: DateArray1D,
                 horizon: int) -> tuple[Float64Array2D, list[str]]:
    """MPOR moves of every factor on the stressed ``dates``, from its own history or its stress proxy.

    A factor with no move on a date takes its proxy's own-calendar move times ``stress_beta``
    (blank: the ratio of the factor's to the proxy's daily volatility over each one's whole
    history up to as-of, so a crypto factor proxied by the Nasdaq moves with crypto's size).
    A factor with neither gets a zero move on those dates; the returned notes say so.
    """
    out = np.empty((dates.size, len(factors.names)))
    notes: list[str] = []
    for column, spec in enumerate(factors.specs):  # loop over factors (a handful)
        own_dates, own = own_moves(factors, column, horizon)
        values = sample_on_grid(own_dates, own, dates, max_stale_days=factors.max_stale_days)
        missing = np.isnan(values)
        if missing.any() and spec.stress_proxy:
            proxy = proxies[spec.stress_proxy]
            series = market.get(proxy.name)
            group = own_calendar_closes([series], proxy.calendar, np.array([0]),
                                        end=min(series.dates[-1], factors.as_of), max_stale_days=factors.max_stale_days)
            sessions, closes = group.sessions, group.closes[:, 0]
            proxy_dates, proxy_moves = session_moves(sessions, closes, horizon, absolute=proxy.returns == "absolute",
                                                     name=proxy.name)
            beta = spec.stress_beta if spec.stress_beta is not None else volatility_ratio(
                factors, column, sessions, closes, absolute=proxy.returns == "absolute")
            sampled = sample_on_grid(proxy_dates, proxy_moves, dates, max_stale_days=factors.max_stale_days)
            values = np.where(missing, beta * sampled, values)
            notes.append(f"stress period: {spec.name} moves as {proxy.name} x {beta:.3f} where it has no history")
            missing = np.isnan(values)
        if missing.any():
            notes.append(f"stress period: {spec.name} has no history and no stress_proxy on {int(missing.sum())} "
                         "date(s): its move there is 0 (set stress_proxy in underlyings.csv)")
            values = np.where(missing, 0.0, values)
        out[:, column] = values
    return out, notes


def volatility_ratio(factors: RiskFactors, column: int, proxy_sessions: DateArray1D, proxy_closes: Float64Array1D,
                     *, absolute: bool) -> float:
    """Daily volatility of the factor over its history up to as-of, over the proxy's over its own."""
    _, own = own_moves(factors, column, 1)
    _, proxy = session_moves(proxy_sessions, proxy_closes, 1, absolute=absolute, name="proxy")
    own_sd, proxy_sd = np.nanstd(own), np.nanstd(proxy)
    if not (np.isfinite(own_sd) and proxy_sd > 0):
        raise MarketDataError(f"cannot scale the stress proxy of '{factors.names[column]}': no volatility to compare")
    return float(own_sd / proxy_sd)


def horizon_returns(factors: RiskFactors, horizon_days: int) -> tuple[DateArray1D, Float64Array2D]:
    """``horizon_days``-session moves of each factor on its own calendar, on the risk grid.

    Relative factors: ``P[t] / P[t-h] - 1``; absolute factors (those that can go
    negative, like WTI): ``P[t] - P[t-h]`` in price units, ``t - h`` counted in the
    factor's own sessions. Grid rows where a factor has no fresh move are dropped.
    Returns (end dates, float64[rows, factors]).
    """
    if factors.prices.shape[0] <= horizon_days:
        raise MarketDataError(f"history of {factors.prices.shape[0]} dates is too short for a {horizon_days}-day "
                              "horizon")
    check_positive(factors)
    absolute = factors.is_absolute
    moves = np.empty((factors.grid.size, len(factors.names)))
    for group in factors.own:  # loop over calendars (two or three), not factors or scenarios
        dates, values = group_moves(group, horizon_days, absolute[group.columns])
        moves[:, group.columns] = sample_rows(dates, values, factors.grid, max_stale_days=factors.max_stale_days)
    keep = ~np.isnan(moves).any(axis=1)
    return factors.grid[keep], moves[keep]


def daily_volatility(factors: RiskFactors, *, decay: float) -> tuple[DateArray1D, Float64Array2D]:
    """EWMA volatility of each factor's own-calendar daily moves, sampled on the risk grid.

    A session without a move (stale or missing close) is skipped: the volatility carries over from
    the factor's last move, and a grid date takes it while that move is at most ``max_stale_days``
    old. Units per own session (a calendar day for 24/7 series, a business day otherwise).
    Returns (grid dates where every factor has one, float64[rows, factors]).
    """
    check_positive(factors)
    absolute = factors.is_absolute
    vol = np.empty((factors.grid.size, len(factors.names)))
    for group in factors.own:  # loop over calendars (two or three)
        dates, values = group_moves(group, 1, absolute[group.columns])
        if dates.size == 0:
            vol[:, group.columns] = np.nan
            continue
        sigma = ewma_volatility(values, decay=decay)
        rows = np.arange(dates.size)[:, None]
        last = np.maximum.accumulate(np.where(np.isnan(values), -1, rows), axis=0)  # last row with a move
        position = np.searchsorted(dates, factors.grid, side="right") - 1
        source = np.where(position[:, None] >= 0, last[np.maximum(position, 0)], -1)  # [grid, k]
        safe = np.maximum(source, 0)
        age = (factors.grid[:, None] - dates[safe]).astype("timedelta64[D]").astype(np.int64)
        usable = (source >= 0) & (age <= factors.max_stale_days)
        picked = np.take_along_axis(sigma, safe, axis=0)
        vol[:, group.columns] = np.where(usable, picked, np.nan)
    keep = ~np.isnan(vol).any(axis=1)
    return factors.grid[keep], vol[keep]


def ewma_volatility(daily_moves: Float64Array2D, *, decay: float, seed_rows: int = 30) -> Float64Array2D:
    """EWMA volatility per row, including that row's move (RiskMetrics, ``decay`` = lambda).

    ``var[t] = decay * var[t-1] + (1 - decay) * move[t]**2``, seeded with the mean square
    of each column's first ``seed_rows`` moves. A NaN move is skipped: its row is NaN and the
    variance carries over. Same units as the moves (per day). Vectorised over columns; the
    recursion runs over rows.
    """
    squares = daily_moves**2
    fresh = ~np.isnan(squares)
    taken = fresh & (np.cumsum(fresh, axis=0) <= seed_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(taken, squares, 0.0).sum(axis=0) / taken.sum(axis=0)
    out = np.full(squares.shape, np.nan)
    keep, weight = decay, 1.0 - decay
    for row in range(squares.shape[0]):  # the recursion over dates; each step is a vector over factors
        step = keep * variance + weight * squares[row]
        variance = np.where(fresh[row], step, variance)
        out[row] = np.where(fresh[row], step, np.nan)
    return np.sqrt(out)


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
