"""Price paths of collateral (pure): h-day loss quantiles of a series, FX cross series,
stressed windows, and asset returns on the risk core's scenario dates."""

from __future__ import annotations

import math

import numpy as np

from tokenclear.arrays import DateArray1D, Float64Array1D, Float64Array2D
from tokenclear.collateral.assets import Registry
from tokenclear.errors import MarketDataError
from tokenclear.market.history import MarketData, PriceSeries


def fx_name(currency: str) -> str:
    """Series of USD per unit of ``currency`` (``jpy_usd``)."""
    return f"{currency.lower()}_usd"


def fx_cross(currency: str, margin_currency: str, market: MarketData) -> PriceSeries | None:
    """Margin-currency units per unit of ``currency`` (``None`` when they are the same).

    Built from the ``xxx_usd`` series; a cross of two non-USD currencies uses the dates both share.
    """
    if currency == margin_currency:
        return None
    if margin_currency == "USD":
        return market.get(fx_name(currency))
    quote = market.get(fx_name(margin_currency))
    if currency == "USD":
        return PriceSeries(f"usd_{margin_currency.lower()}", quote.dates, 1.0 / quote.closes)
    base = market.get(fx_name(currency))
    dates = np.intersect1d(base.dates, quote.dates)
    ratio = base.closes[np.searchsorted(base.dates, dates)] / quote.closes[np.searchsorted(quote.dates, dates)]
    return PriceSeries(f"{currency.lower()}_{margin_currency.lower()}", dates, ratio)


def loss_quantiles(closes: Float64Array1D, *, max_horizon: int, confidence: float) -> Float64Array1D:
    """Loss quantile of overlapping ``h``-observation returns for h = 1..max_horizon.

    Returns float64[max_horizon]: entry ``h - 1`` is ``quantile(-(P[t]/P[t-h] - 1), confidence)``,
    floored at 0 and made non-decreasing in ``h`` (a longer liquidation horizon never gives a smaller
    haircut). Horizons longer than the series have none of their own and take the square-root of time
    from the longest horizon the series supports.
    """
    closes = np.asarray(closes, dtype=np.float64)
    out = np.zeros(max_horizon)
    usable = min(max_horizon, closes.size - 1)
    for h in range(1, usable + 1):  # a loop over horizons (<= max_horizon), each vectorised over time
        losses = 1.0 - closes[h:] / closes[:-h]
        out[h - 1] = max(float(np.quantile(losses, confidence)), 0.0)
    if usable < max_horizon:
        if usable < 1:
            raise MarketDataError("a price series needs at least two closes")
        out[usable:] = out[usable - 1] * np.sqrt(np.arange(usable + 1, max_horizon + 1) / usable)
    return np.maximum.accumulate(out)


def at_horizon(curve: Float64Array1D, horizon_days: float) -> float:
    """Interpolate a curve of h = 1..H quantiles (with 0 at h = 0) at a fractional horizon;
    beyond H by the square-root of time."""
    size = curve.size
    if horizon_days <= 0:
        return 0.0
    if horizon_days > size:
        return float(curve[-1] * math.sqrt(horizon_days / size))
    grid = np.arange(0, size + 1, dtype=np.float64)
    return float(np.interp(horizon_days, grid, np.concatenate([[0.0], curve])))


def window(series: PriceSeries, as_of: np.datetime64, observations: int,
           max_stale_days: int | None = None) -> Float64Array1D:
    """The last ``observations`` + 1 closes on or before ``as_of`` (so ``observations`` returns); with
    ``max_stale_days``, the last close must lie at most that many calendar days before ``as_of``."""
    keep = series.dates <= as_of
    closes = series.closes[keep]
    if closes.size < 2:
        raise MarketDataError(f"series '{series.name}' has fewer than two closes on or before {as_of}")
    last = series.dates[keep][-1]
    if max_stale_days is not None and (as_of - last).astype(int) > max_stale_days:
        raise MarketDataError(f"series '{series.name}' last closes on {last}, {(as_of - last).astype(int)} days "
                              f"before as-of {as_of} (at most {max_stale_days}): its prices are stale")
    return closes[-(observations + 1):]


def stressed_window(series: PriceSeries, as_of: np.datetime64, observations: int) -> Float64Array1D:
    """The ``observations`` + 1 consecutive closes up to ``as_of`` whose daily returns have the
    largest realised variance (the series' most volatile period)."""
    keep = series.dates <= as_of
    closes = series.closes[keep]
    if closes.size <= observations + 1:
        return closes
    squares = (closes[1:] / closes[:-1] - 1.0) ** 2
    sums = np.convolve(squares, np.ones(observations), mode="valid")  # sums[i] covers returns i..i+obs-1
    start = int(np.argmax(sums))
    return closes[start:start + observations + 1]


def asset_returns(registry: Registry, market: MarketData, end_dates: DateArray1D, *, horizon: int,
                  margin_currency: str, max_stale_days: int = 5) -> Float64Array2D:
    """Each asset's return in the margin currency over ``horizon`` observations ending on each of
    ``end_dates``: float64[dates, assets]. Assets without a series (par, duration, volatility
    models) and missing history give 0 (no measured co-movement)."""
    out = np.zeros((len(end_dates), len(registry)))
    for column, asset in enumerate(registry.assets):  # a loop over assets (~20), vectorised over dates
        legs = [market.get(asset.price_series)] if asset.price_series else []
        cross = fx_cross(asset.currency, margin_currency, market)
        if cross is not None:
            legs.append(cross)
        for leg in legs:
            position = np.searchsorted(leg.dates, end_dates, side="right") - 1
            safe = np.maximum(position, 0)
            age_days = (end_dates - leg.dates[safe]).astype("timedelta64[D]").astype(np.int64)
            ok = (position - horizon >= 0) & (age_days <= max_stale_days)
            growth = np.where(ok, leg.closes[safe] / leg.closes[np.maximum(position - horizon, 0)], 1.0)
            out[:, column] = (1.0 + out[:, column]) * growth - 1.0
    return out
