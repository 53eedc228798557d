"""The cost of closing out a defaulter's positions in the market: the square-root law on the shipped volumes,
by weekday (pure numeric core).

Selling (or buying back) Q USD of a factor whose market trades V USD that day costs about
``Y x sigma x sqrt(|Q| / V) x |Q|`` (Almgren, Thum, Hauptmann and Li 2005; Toth et al. 2011, "Anomalous price
impact and the critical nature of liquidity in financial markets": Y of order 1; here Y = 1), sigma the
factor's daily volatility. V is the average daily volume times the weekday's share of it, measured from the
shipped volume series (bitcoin trades about 20% less on a Saturday than on an average day), times the
scenario's liquidity multiplier; a market closed that day (an exchange on a weekend) cannot be traded and the
close-out waits for its next open day. Q is the delta-equivalent exposure of the account to the factor: the
P&L of a 1% move, times 100.
"""

from __future__ import annotations

import numpy as np

from tokenclear.margin.valuation import Resolved, revalue

IMPACT_Y = 1.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Calendars closed on the weekend (exchange_calendars names and the 24/5 FX week); 24/7 trades every day.
SEVEN_DAYS = ("24/7",)


def weekday(day: np.datetime64) -> int:
    """0 = Monday .. 6 = Sunday."""
    return int((np.datetime64(day, "D").astype(np.int64) + 3) % 7)


def weekday_profile(dates: np.ndarray, volumes: np.ndarray) -> np.ndarray:
    """float64[7]: the mean volume on each weekday over the mean volume of a trading day (0 where the series
    never trades that weekday)."""
    days = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7
    overall = volumes.mean() if volumes.size else 0.0
    sums, counts = np.bincount(days, volumes, 7), np.bincount(days, minlength=7)
    return np.where(counts > 0, sums / np.maximum(counts, 1) / max(overall, 1e-300), 0.0)


def calendar_profile(calendar: str) -> np.ndarray:
    """float64[7]: 1 on the weekdays the calendar trades, 0 on the others (weekends for all but 24/7)."""
    return np.ones(7) if calendar in SEVEN_DAYS else np.array([1.0] * 5 + [0.0] * 2)


def exposures(resolved: Resolved, quantity: np.ndarray, factors: int, horizon_days: float = 0.0) -> np.ndarray:
    """float64[accounts, factors]: each account's delta-equivalent USD exposure to each factor: (P&L of a +1%
    move - P&L of a -1% move) / 2 x 100; for an absolute factor the move is 1% of its level (the largest
    |forward| of its contracts)."""
    level = np.ones(factors)
    absolute = np.zeros(factors, dtype=bool)
    absolute[resolved.underlying_index] = resolved.absolute
    np.maximum.at(level, resolved.underlying_index, np.where(resolved.absolute, np.abs(resolved.forward), 1.0))
    bump = 0.01 * np.where(absolute, level, 1.0)
    moves = np.concatenate([np.diag(bump), -np.diag(bump)])  # [2 x factors, factors]
    pnl = quantity @ revalue(resolved, moves, horizon_days=horizon_days)  # [accounts, 2 x factors]
    return (pnl[:, :factors] - pnl[:, factors:]) / 2.0 * 100.0


def impact_cost(exposure: np.ndarray, adv_usd: np.ndarray, sigma: np.ndarray, profile: np.ndarray,
                multiplier: np.ndarray | float = 1.0) -> np.ndarray:
    """USD cost of trading ``exposure[..., factor]`` on a day whose volume is ``adv_usd x profile x multiplier``
    (per factor); nan where that day has no volume (closed), 0 where there is nothing to trade."""
    volume = adv_usd * profile * multiplier
    size = np.abs(exposure)
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = IMPACT_Y * sigma * np.sqrt(size / volume) * size
    return np.where(size == 0, 0.0, np.where(volume > 0, cost, np.nan))


def next_open(profiles: np.ndarray, day: int) -> np.ndarray:
    """int[factors]: days from weekday ``day`` to the first weekday (it included) each factor trades."""
    ahead = np.array([[profiles[f, (day + k) % 7] > 0 for k in range(7)] for f in range(profiles.shape[0])])
    return np.where(ahead.any(axis=1), ahead.argmax(axis=1), -1)
