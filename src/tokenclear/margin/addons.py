"""Add-ons on top of a method's base requirement (margin currency, > 0 = owed).

Holiday / weekend add-on (collected in advance, JSCC holiday-trading practice): an
instrument whose market trades on ``d`` sessions more than the MPOR before cash has
moved ``mpor`` times (a 24/7 future margined on a Thursday or a Friday against XNYS cash
days: ``d = 2``) accrues exposure over ``mpor + d`` of its own sessions instead of
``mpor``; its scenario losses (moves over ``mpor`` of its own sessions, so no weekend is
already inside them) are scaled by ``sqrt((mpor + d) / mpor)`` (square-root-of-time)
and the add-on is the method's requirement with that scaling minus the base requirement.

Concentration (large-position) add-on: a position takes
``days = |quantity| x notional / (participation x ADV)`` days to liquidate; beyond one
day its stand-alone requirement is scaled by ``sqrt(days)`` (square-root
liquidation-horizon rule), and the add-on is that excess:
``sum_i unit_margin_i(sign) x |quantity_i| x max(0, sqrt(days_i) - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.market.calendars import closed_cash_days
from tokenclear.market.history import MarketData

VOLUME_UNITS = ("usd", "shares")
ADV_DAYS = 60


def holiday_days(calendars: list[str], *, cash_calendar: str, as_of: np.datetime64, mpor_days: int) -> np.ndarray:
    """Sessions each calendar's market trades beyond the MPOR before cash has moved ``mpor_days`` times."""
    cache = {name: closed_cash_days(name, cash_calendar, as_of, mpor_days) for name in set(calendars)}
    return np.array([cache[name] for name in calendars], dtype=np.int64)


def holiday_scale(extra_days: np.ndarray, mpor_days: int) -> Float64Array1D:
    return np.sqrt((mpor_days + extra_days) / mpor_days)


@dataclass(frozen=True)
class ConcentrationRule:
    underlying: str
    adv_usd: float | None  # blank = derived from the volume folder
    volume_unit: str | None
    participation: float


def average_daily_volume_usd(rule: ConcentrationRule, *, volumes: MarketData, prices: MarketData,
                             as_of: np.datetime64) -> float:
    """ADV in USD over the ``ADV_DAYS`` observations up to ``as_of`` (shares x close for equities)."""
    if rule.adv_usd is not None:
        return rule.adv_usd
    volume = volumes.get(rule.underlying)
    keep = volume.dates <= as_of
    dates, amounts = volume.dates[keep][-ADV_DAYS:], volume.closes[keep][-ADV_DAYS:]
    if rule.volume_unit == "shares":
        price = prices.get(rule.underlying)
        amounts = amounts * price.closes[np.searchsorted(price.dates, dates)]
    return float(amounts.mean()) if amounts.size else float("nan")


def concentration_addon(quantity: np.ndarray, *, unit_long: Float64Array1D, unit_short: Float64Array1D,
                        notional: Float64Array1D,
                        capacity_usd: Float64Array1D) -> tuple[Float64Array1D, Float64Array2D]:
    """Add-on per account and liquidation days per position.

    ``capacity_usd`` = participation x ADV per instrument (NaN or inf = no limit).
    """
    quantity = np.asarray(quantity, dtype=np.float64)
    size = np.abs(quantity)
    with np.errstate(invalid="ignore", divide="ignore"):
        days = np.where(np.isfinite(capacity_usd) & (capacity_usd > 0), size * notional / capacity_usd, 0.0)
    unit = np.where(quantity >= 0, unit_long[None, :], unit_short[None, :])
    excess = np.maximum(np.sqrt(days) - 1.0, 0.0)
    return (np.maximum(unit, 0.0) * size * excess).sum(axis=1), days
