"""Scenario grids per combined commodity (SPAN's 16 risk-array scenarios, AS-VaR's 14).

A combined commodity is every instrument of one underlying. Each scenario moves that
underlying by ``price_multiple x price_scan`` and its implied vol by
``vol_sign x vol_scan`` (relative); a weight counts only part of extreme losses.
Multiples and weights may differ per product (SPAN's extreme move is a product
parameter), and options decay over each product's look-ahead time.
All combined commodities are evaluated with one matrix product against a block matrix
``[instruments, commodities x scenarios]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.margin.context import Context
from tokenclear.margin.hsvar import top_k
from tokenclear.margin.valuation import revalue

SCAN_THIRDS = (0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1)
_VOLS = (1, -1) * 7
SPAN_VOL = np.array(_VOLS + (0, 0), dtype=float)
ASVAR_PRICE = np.array(SCAN_THIRDS)
ASVAR_VOL = np.array(_VOLS, dtype=float)
ASVAR_WEIGHT = np.ones(14)


@dataclass(frozen=True)
class Grid:
    """Risk arrays ``loss[instruments, scenarios]`` (> 0 = loss to a long contract) per commodity."""

    context: Context
    commodities: np.ndarray  # factor columns that carry instruments
    member: np.ndarray  # int[instruments]: index into commodities
    loss: Float64Array2D
    price_multiple: Float64Array2D  # [scenarios, factors]
    exposure: Float64Array1D  # dV/dm per contract: margin currency per unit factor move

    @classmethod
    def build(cls, context: Context, price_scan: Float64Array1D, vol_scan: Float64Array1D, *,
              price_multiple: np.ndarray, vol_sign: np.ndarray, weight: np.ndarray,
              horizon_days: Float64Array1D) -> Grid:
        """``price_scan`` / ``vol_scan`` per factor column (relative or absolute as the factor moves).

        ``price_multiple`` and ``weight`` are [scenarios] or [scenarios, factors];
        ``horizon_days`` is each instrument's option decay in calendar days.
        """
        resolved = context.resolved
        n_factors = price_scan.size
        price_multiple = np.broadcast_to(np.asarray(price_multiple, dtype=float).reshape(len(vol_sign), -1),
                                         (len(vol_sign), n_factors))
        weight = np.broadcast_to(np.asarray(weight, dtype=float).reshape(len(vol_sign), -1),
                                 (len(vol_sign), n_factors))
        commodities, member = np.unique(resolved.underlying_index, return_inverse=True)
        is_commodity = np.isin(np.arange(n_factors), commodities)
        moves = price_multiple * np.where(is_commodity, price_scan, 0.0)[None, :]  # FX factors stay
        vol_factor = np.maximum(1.0 + vol_sign[:, None] * vol_scan[None, :], 0.0)
        loss = -revalue(resolved, moves, horizon_days=horizon_days, vol_factor=vol_factor)
        loss *= weight[:, resolved.underlying_index].T
        exposure = exposures(context)
        return cls(context, commodities, member, loss, price_multiple, exposure)

    def block(self, scale: Float64Array1D | None) -> Float64Array2D:
        """float64[instruments, commodities * scenarios], zero outside an instrument's commodity."""
        n_instruments, n_scenarios = self.loss.shape
        out = np.zeros((n_instruments, self.commodities.size, n_scenarios))
        loss = self.loss if scale is None else self.loss * scale[:, None]
        out[np.arange(n_instruments), self.member, :] = loss
        return out.reshape(n_instruments, -1)

    def membership(self, values: Float64Array1D) -> Float64Array2D:
        """float64[instruments, commodities] with ``values`` in each instrument's commodity column."""
        out = np.zeros((values.size, self.commodities.size))
        out[np.arange(values.size), self.member] = values
        return out

    def scenario_losses(self, quantity: np.ndarray, scale: Float64Array1D | None) -> Float64Array2D:
        """float64[accounts, commodities, scenarios]: each commodity's loss in each scenario."""
        losses = np.asarray(quantity, dtype=np.float64) @ self.block(scale)
        return losses.reshape(quantity.shape[0], self.commodities.size, -1)

    def drivers(self, quantity: np.ndarray, worst_k: np.ndarray, main: np.ndarray, *, vol_sign: np.ndarray,
                scale: Float64Array1D | None) -> tuple[np.ndarray, np.ndarray, Float64Array2D]:
        """Worst-scenario label of each account's ``main`` commodity and its three largest losers.

        ``worst_k[accounts, commodities]`` is each commodity's worst scenario. Returns (labels,
        instrument indices int[accounts, 3], their losses > 0).
        """
        table = np.array([[scenario_label(name, self.price_multiple[s, column], vol_sign[s])
                           for s in range(self.price_multiple.shape[0])]
                          for name, column in zip(self.names(), self.commodities.tolist(), strict=True)])
        labels = table[main, worst_k[np.arange(quantity.shape[0]), main]]
        loss_each = quantity * self.loss[np.arange(self.member.size)[None, :], worst_k[:, self.member]]
        if scale is not None:
            loss_each = loss_each * scale[None, :]
        top, top_loss = top_k(loss_each, 3)
        return labels, top, top_loss

    def names(self) -> list[str]:
        return [self.context.factors.names[j] for j in self.commodities]


def exposures(context: Context) -> Float64Array1D:
    """dV/dm per contract (central difference): margin currency per unit move of the underlying."""
    resolved = context.resolved
    is_commodity = np.isin(np.arange(len(context.factors.names)), resolved.underlying_index)
    spot = np.abs(context.factors.spot)
    bump = 1e-4 * np.where(context.factors.is_absolute, np.maximum(spot, 1.0), 1.0)
    bump_moves = np.where(is_commodity, bump, 0.0)[None, :]
    up = revalue(resolved, bump_moves, horizon_days=0.0)[:, 0]
    down = revalue(resolved, -bump_moves, horizon_days=0.0)[:, 0]
    return (up - down) / (2.0 * bump[resolved.underlying_index])


def scenario_label(commodity: str, price_multiple: float, vol_sign: float) -> str:
    vol = {1.0: " vol up", -1.0: " vol down"}.get(float(vol_sign), "")
    return f"{commodity} {price_multiple:+.2f}x scan{vol}"
