"""Stateless option pricers on a future, vectorised (float64 arrays broadcast together).

Futures-style premium (no discounting), as for Eurex's futures-style margined options.
``years`` is time to expiry in years; at ``years <= 0`` the value is intrinsic.
"""

from __future__ import annotations

import numpy as np

from tokenclear.arrays import Float64Array

_SMALL = 1e-12


def ndtr(x: Float64Array) -> Float64Array:
    """The standard normal distribution function (scipy's), imported when an option is first valued: a book of
    futures does not pay scipy.special's 0.3-0.4 s import."""
    from scipy.special import ndtr as scipy_ndtr

    return scipy_ndtr(x)


def black76(forward: Float64Array, strike: Float64Array, years: Float64Array, volatility: Float64Array,
            is_call: np.ndarray) -> Float64Array:
    """Black-76 value of a call/put on a future (lognormal; ``forward`` and ``strike`` > 0)."""
    forward = np.maximum(np.asarray(forward, dtype=np.float64), _SMALL)
    strike = np.asarray(strike, dtype=np.float64)
    stdev = np.asarray(volatility, dtype=np.float64) * np.sqrt(np.maximum(years, 0.0))
    live = stdev > _SMALL
    safe = np.where(live, stdev, 1.0)
    d1 = (np.log(forward / strike) + 0.5 * safe**2) / safe
    d2 = d1 - safe
    call = forward * ndtr(d1) - strike * ndtr(d2)
    put = call - forward + strike
    value = np.where(is_call, call, put)
    intrinsic = np.where(is_call, np.maximum(forward - strike, 0.0), np.maximum(strike - forward, 0.0))
    return np.where(live, value, intrinsic)


def bachelier(forward: Float64Array, strike: Float64Array, years: Float64Array, volatility: Float64Array,
              is_call: np.ndarray) -> Float64Array:
    """Bachelier (normal) value; works for negative forwards. ``volatility`` in price units per sqrt(year)."""
    forward = np.asarray(forward, dtype=np.float64)
    stdev = np.asarray(volatility, dtype=np.float64) * np.sqrt(np.maximum(years, 0.0))
    live = stdev > _SMALL
    safe = np.where(live, stdev, 1.0)
    moneyness = np.where(is_call, forward - strike, strike - forward)
    d = moneyness / safe
    value = moneyness * ndtr(d) + safe * np.exp(-0.5 * d * d) / np.sqrt(2.0 * np.pi)
    return np.where(live, value, np.maximum(moneyness, 0.0))


def option_value(model_is_normal: np.ndarray, forward: Float64Array, strike: Float64Array, years: Float64Array,
                 volatility: Float64Array, is_call: np.ndarray) -> Float64Array:
    """Black-76 where ``model_is_normal`` is False, Bachelier where True (row-wise)."""
    normal = bachelier(forward, strike, years, volatility, is_call)
    if np.all(model_is_normal):
        return normal
    lognormal = black76(np.where(model_is_normal, 1.0, forward), np.where(model_is_normal, 1.0, strike), years,
                        volatility, is_call)
    return np.where(model_is_normal, normal, lognormal)
