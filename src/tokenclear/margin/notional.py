"""Percentage of notional (CME moved precious metals to it on 2025-12-12).

``margin = sum_i |quantity_i x exposure_i| x rate_u``: exposure is notional for a
future (delta-adjusted for an option) and ``rate_u`` is the underlying's published rate
(``notional_rate`` in underlyings.csv) or, when blank, the coverage quantile of
absolute MPOR-day moves rounded up to the 0.5% grid. For an underlying with absolute
moves the rate is in price units per unit exposure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D
from tokenclear.margin.context import Context
from tokenclear.margin.grid import exposures
from tokenclear.margin.hsvar import top_k
from tokenclear.margin.result import MethodResult

RATE_GRID = 0.005


def rates(context: Context, rows: np.ndarray, *, coverage: float = 0.99) -> Float64Array1D:
    derived = np.quantile(np.abs(context.moves[rows]), coverage, axis=0)
    grid_step = np.where(context.factors.is_absolute, 1.0, RATE_GRID)
    derived = np.ceil(derived / grid_step - 1e-9) * grid_step
    published = np.array([np.nan if spec.notional_rate is None else spec.notional_rate
                          for spec in context.factors.specs])
    return np.where(np.isnan(published), derived, published)


@dataclass(frozen=True)
class Notional:
    context: Context
    rate: Float64Array1D  # per factor
    exposure: Float64Array1D  # per instrument

    @classmethod
    def build(cls, context: Context, rows: np.ndarray) -> Notional:
        return cls(context, rates(context, rows), exposures(context))

    def margin(self, quantity: np.ndarray, scale: Float64Array1D | None = None) -> MethodResult:
        per_contract = np.abs(self.exposure) * self.rate[self.context.resolved.underlying_index]
        if scale is not None:
            per_contract = per_contract * scale
        charges = np.abs(np.asarray(quantity, dtype=np.float64)) * per_contract[None, :]
        top, top_loss = top_k(charges, 3)
        labels = np.full(charges.shape[0], "notional")
        return MethodResult(charges.sum(axis=1), labels, top, top_loss)
