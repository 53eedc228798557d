"""Risk measures of scenario P&L, row-wise over accounts, by partial sorting (np.partition).

Conventions (losses L = -P&L, P&L > 0 = gain to the account):

* ``quantile`` (default): the ``confidence`` quantile of L with numpy's default
  linear interpolation, i.e. ``np.quantile(L, confidence)``: with n scenarios and
  ``h = (n - 1) * (1 - confidence)`` it interpolates between the ``floor(h)``-th and the
  next order statistic of the P&L. Computed with one ``np.partition`` (O(n)) instead of
  a full sort.
* ``kth``: the k-th worst loss, ``k = ceil(n * (1 - confidence))`` (13th of 1,250 at 99%).
* ``es``: expected shortfall, the mean of the ``ceil(n * (1 - es_confidence))`` worst
  losses (32 of 1,250 at 97.5%).
"""

from __future__ import annotations

import math

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.errors import ConfigurationError

MEASURES = ("quantile", "kth", "es")
_EPS = 1e-9


def tail_count(n: int, confidence: float) -> int:
    """Number of scenarios in the tail beyond ``confidence`` (at least one)."""
    return max(1, math.ceil(n * (1.0 - confidence) - _EPS))


def loss_measure(pnl: Float64Array2D, *, measure: str = "quantile", confidence: float = 0.99) -> Float64Array1D:
    """Risk of each row of ``pnl`` (float64[rows, scenarios]) as a loss: > 0 means a loss."""
    if not 0.5 < confidence < 1.0:
        raise ConfigurationError(f"confidence {confidence} must lie in (0.5, 1)")
    n = pnl.shape[-1]
    if measure == "quantile":
        position = (n - 1) * (1.0 - confidence)
        low = int(math.floor(position))
        fraction = position - low
        high = min(low + 1, n - 1)
        # one selection at ``high``; the ``low``-th statistic is then the largest of the first ``high``
        # entries (a pass over ~1% of the row), which is several times faster than selecting both
        part = np.partition(pnl, high, axis=-1)
        upper = part[..., high]
        lower = part[..., :high].max(axis=-1) if high > low else upper
        return -(lower + fraction * (upper - lower))
    if measure == "kth":
        k = tail_count(n, confidence)
        return -np.partition(pnl, k - 1, axis=-1)[..., k - 1]
    if measure == "es":
        m = tail_count(n, confidence)
        part = np.partition(pnl, m - 1, axis=-1)
        return -part[..., :m].mean(axis=-1)
    raise ConfigurationError(f"unknown risk measure '{measure}'; choose one of {', '.join(MEASURES)}")
