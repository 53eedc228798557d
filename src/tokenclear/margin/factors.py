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
class RiskFactors:
    """Closes of every factor on the grid; the last grid row is the as-of date."""

    names: list[str]
    specs: list[Underlying]
    grid: DateArray1D
    prices: Float64Array2D  # float64[dates, factors]; NaN = stale or missing
    grid_calendar: str
    own_dates: list[DateArray1D]  # each factor's own-calendar sessions up to as-of
    own_prices: list[Float64Array1D]  # its closes on them; NaN = stale or missing
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
    own = [own_calendar_closes(one, spec.calendar, end=as_of, max_stale_days=max_stale_days)
           for spec, one in zip(specs, series, strict=True)]  # loop over factors (a handful)
    return RiskFactors([spec.name for spec in specs], specs, grid, prices, calendar, [dates for dates, _ in own],
                       [closes for _, closes in own], max_stale_days)


def own_calendar_closes(series: PriceSeries, calendar: str, *, end: np.datetime64,
                        max_stale_days: int) -> tuple[DateArray1D, Float64Array1D]:
    """The series' closes on its own calendar's sessions from its first date to ``end`` (NaN = stale)."""
    days = calendar_sessions(calendar)
    days = days[(days >= series.dates[0]) & (days <= end)]
    return days, align([series], days, max_stale_days=max_stale_days)[:, 0]


def sample_on_grid(dates: DateArray1D, values: Float64Array1D, grid: DateArray1D, *,
                   max_stale_days: int) -> Float64Array1D:
    """The value on the last of ``dates`` on or before each grid date (NaN if older than ``max_stale_days``)."""
    return align([PriceSeries("", dates, values)], grid, max_stale_days=max_stale_days)[:, 0]


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
    return session_moves(factors.own_dates[column], factors.own_prices[column], horizon,
                         absolute=factors.specs[column].returns == "absolute", name=factors.names[column])


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
            sessions, closes = own_calendar_closes(series, proxy.calendar, end=min(series.dates[-1], factors.as_of),
                                                   max_stale_days=factors.max_stale_days)
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
    moves = np.empty((factors.grid.size, len(factors.names)))
    for column in range(len(factors.names)):  # loop over factors (a handful), not scenarios
        dates, values = own_moves(factors, column, horizon_days)
        moves[:, column] = sample_on_grid(dates, values, factors.grid, max_stale_days=factors.max_stale_days)
    keep = ~np.isnan(moves).any(axis=1)
    return factors.grid[keep], moves[keep]


def daily_volatility(factors: RiskFactors, *, decay: float) -> tuple[DateArray1D, Float64Array2D]:
    """EWMA volatility of each factor's own-calendar daily moves, sampled on the risk grid.

    Units per own session (a calendar day for 24/7 series, a business day otherwise).
    Returns (grid dates where every factor has one, float64[rows, factors]).
    """
    vol = np.empty((factors.grid.size, len(factors.names)))
    for column in range(len(factors.names)):  # loop over factors (a handful)
        dates, values = own_moves(factors, column, 1)
        fresh = ~np.isnan(values)
        if not fresh.any():
            vol[:, column] = np.nan
            continue
        sigma = ewma_volatility(values[fresh][:, None], decay=decay)[:, 0]
        vol[:, column] = sample_on_grid(dates[fresh], sigma, factors.grid, max_stale_days=factors.max_stale_days)
    keep = ~np.isnan(vol).any(axis=1)
    return factors.grid[keep], vol[keep]


def ewma_volatility(daily_moves: Float64Array2D, *, decay: float, seed_rows: int = 30) -> Float64Array2D:
    """EWMA volatility per row, including that row's move (RiskMetrics, ``decay`` = lambda).

    ``var[t] = decay * var[t-1] + (1 - decay) * move[t]**2``, seeded with the mean square
    of the first ``seed_rows`` moves. Same units as the moves (per day).
    """
    squares = daily_moves**2
    seed = squares[: max(1, min(seed_rows, squares.shape[0]))].mean(axis=0)
    from scipy.signal import lfilter  # imported here: scipy.signal costs 1.6 s to import

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
