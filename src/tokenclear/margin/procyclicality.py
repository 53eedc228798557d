"""Anti-procyclicality (EMIR Art. 28 / RTS 153/2013 Art. 28) and its measure.

Three options, each returning a requirement at least the base one:

* ``buffer``: a 25% buffer on top of the base margin, released (in whole or part) in
  periods of stress when requirements rise significantly;
* ``floor10y``: the base margin floored by the same method on a ten-year lookback;
* ``stressed-weight``: 75% base + 25% the margin on the stressed-period observations
  (at least 25% weight on stressed observations).

Procyclicality is measured by the peak-to-trough ratio of a margin series.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from tokenclear.arrays import Float64Array1D
from tokenclear.errors import ConfigurationError

ApcOption = Literal["buffer", "floor10y", "stressed-weight"]
APC_OPTIONS: tuple[ApcOption, ...] = get_args(ApcOption)
BUFFER = 0.25
STRESS_WEIGHT = 0.25


def buffer_addon(base: Float64Array1D, *, released_fraction: float = 0.0) -> Float64Array1D:
    """The 25% buffer, less the fraction released in stress (0 = full buffer, 1 = none)."""
    if not 0.0 <= released_fraction <= 1.0:
        raise ConfigurationError("released fraction must lie in [0, 1]")
    return BUFFER * (1.0 - released_fraction) * np.maximum(base, 0.0)


def floor_addon(base: Float64Array1D, long_lookback: Float64Array1D) -> Float64Array1D:
    return np.maximum(long_lookback - base, 0.0)


def stressed_weight_addon(base: Float64Array1D, stressed: Float64Array1D) -> Float64Array1D:
    blended = (1.0 - STRESS_WEIGHT) * base + STRESS_WEIGHT * stressed
    return np.maximum(blended - base, 0.0)


def peak_to_trough(series: Float64Array1D) -> float:
    """max / min of a positive margin series (inf when it touches 0)."""
    series = np.asarray(series, dtype=np.float64)
    low = series.min()
    return float(series.max() / low) if low > 0 else float("inf")


def buffered_series(base: Float64Array1D, *, rise_window: int = 20) -> Float64Array1D:
    """Margin under the buffer option over time: base x 1.25, except that when the base
    has risen by more than the buffer over ``rise_window`` observations (stress) the
    buffer is drawn down: the margin stays at the previous margin if that covers the
    base. A recursion over time (not accounts or scenarios)."""
    base = np.asarray(base, dtype=np.float64)
    out = np.empty_like(base)
    for t, value in enumerate(base):
        stressed = t >= rise_window and value > (1.0 + BUFFER) * base[t - rise_window]
        out[t] = max(value, min(out[t - 1], (1.0 + BUFFER) * value)) if stressed and t else (1.0 + BUFFER) * value
    return out
