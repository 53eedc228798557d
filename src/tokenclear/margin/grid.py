"""Scenario grids per combined commodity (SPAN's 16 risk-array scenarios, AS-VaR's 14).

A combined commodity is every instrument of one underlying. Each scenario moves that
underlying by ``price_multiple x price_scan`` and its implied vol by
``vol_sign x vol_scan`` (relative); a weight counts only part of extreme losses.
Multiples and weights may differ per product (SPAN's extreme move is a product
parameter), and options decay over each product's look-ahead time.
Each combined commodity's scenario losses are one product of its contracts' positions (every account)
with its contracts' risk arrays (:class:`Segments`): the block-diagonal product, without its zero blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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
class Segments:
    """Columns ``0..n-1`` grouped into ``count`` segments (a commodity's instruments, a contract month's), for
    sums per segment over contiguous slices: the columns are put in segment order once (no copy when they
    already are, as a catalogue lists each underlying's contracts together). A segment may be empty."""

    count: int
    order: np.ndarray | None  # int[n]: the columns in segment order; None when they already are
    starts: np.ndarray  # int[count]: each segment's first position in that order
    sizes: np.ndarray  # int[count]

    @classmethod
    def of(cls, groups: np.ndarray, count: int | None = None) -> Segments:
        """``groups[i]``: the segment of column ``i`` (0..count-1)."""
        groups = np.asarray(groups, dtype=np.int64).ravel()
        count = int(groups.max(initial=-1)) + 1 if count is None else count
        order = np.argsort(groups, kind="stable")
        sizes = np.bincount(groups, minlength=count)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(count, None if np.array_equal(order, np.arange(groups.size)) else order, starts, sizes)

    @property
    def singles(self) -> bool:
        """Every segment holds at most one column."""
        return bool(self.sizes.max(initial=0) <= 1)

    def ordered(self, values: np.ndarray) -> np.ndarray:
        """``values[rows, n]`` with its columns in segment order (a view when they already are)."""
        return values if self.order is None else values[:, self.order]

    def sum(self, values: np.ndarray) -> np.ndarray:
        """float64[rows, count]: the sum of ``values[rows, n]`` over each segment's columns (a product with the
        0/1 membership matrix, which BLAS runs faster than any reduction over slices)."""
        if self.singles and self.order is None and self.count == values.shape[1] and self.sizes.all():
            return values  # each column its own segment, in order
        if self.singles:
            out = np.zeros((values.shape[0], self.count))
            filled = np.flatnonzero(self.sizes)
            out[:, filled] = self.ordered(values)[:, self.starts[filled]]
            return out
        return values @ self.indicator

    @cached_property
    def indicator(self) -> np.ndarray:
        """float64[n, count]: 1 where column ``i`` belongs to the segment (built once, on first use)."""
        n = int(self.sizes.sum())
        order = np.arange(n) if self.order is None else self.order
        out = np.zeros((n, self.count))
        out[order, np.repeat(np.arange(self.count), self.sizes)] = 1.0
        return out

    def product(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """float64[s, count, accounts] (contiguous): ``sum_i values[:, i] * rows[i, :]`` over each segment's
        columns ``i`` (``values[accounts, n]``, ``rows[n, s]``): the block-diagonal product without its zero
        blocks, laid out scenario-major so that a reduction over the scenarios runs over whole planes."""
        values = self.ordered(values)
        rows = rows if self.order is None else rows[self.order]
        out = np.zeros((rows.shape[1], self.count, values.shape[0]))
        filled = np.flatnonzero(self.sizes)
        if self.singles:
            first = self.starts[filled]
            out[:, filled, :] = rows[first].T[:, :, None] * values[:, first].T[None, :, :]
        else:
            for segment in filled.tolist():  # a loop over commodities; each one product over every account
                start = self.starts[segment]
                stop = start + self.sizes[segment]
                out[:, segment, :] = rows[start:stop].T @ values[:, start:stop].T
        return out


@dataclass(frozen=True)
class Grid:
    """Risk arrays ``loss[instruments, scenarios]`` (> 0 = loss to a long contract) per commodity."""

    context: Context
    commodities: np.ndarray  # factor columns that carry instruments
    member: np.ndarray  # int[instruments]: index into commodities
    loss: Float64Array2D
    price_multiple: Float64Array2D  # [scenarios, factors]
    exposure: Float64Array1D  # dV/dm per contract: margin currency per unit factor move
    segments: Segments  # the instruments of each commodity

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
        return cls(context, commodities, member, loss, price_multiple, exposure,
                   Segments.of(member.ravel(), commodities.size))

    def worst(self, quantity: np.ndarray, scale: Float64Array1D | None) -> tuple[np.ndarray, Float64Array2D]:
        """(int[accounts, commodities] each commodity's worst scenario (the first on a tie), float64[accounts,
        commodities] its loss)."""
        loss = self.loss if scale is None else self.loss * scale[:, None]
        losses = self.segments.product(np.asarray(quantity, dtype=np.float64), loss)  # [scenarios, c, accounts]
        worst = losses[0].copy()
        worst_k = np.zeros(worst.shape, dtype=np.int64)
        better = np.empty(worst.shape, dtype=bool)
        for k in range(1, losses.shape[0]):  # the 16 (SPAN) or 14 (AS-VaR) scenarios, each a plane of every account
            np.greater(losses[k], worst, out=better)
            np.maximum(worst, losses[k], out=worst)
            np.copyto(worst_k, k, where=better)
        return worst_k.T, worst.T

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
        n_scenarios = self.loss.shape[1]
        flat = np.ascontiguousarray(worst_k)[:, self.member]
        flat += (np.arange(self.member.size) * n_scenarios)[None, :]
        loss_each = np.take(self.loss.ravel(), flat)  # each instrument in its commodity's worst scenario
        del flat
        loss_each *= quantity
        if scale is not None:
            loss_each *= scale[None, :]
        top, top_loss = top_k(loss_each, 3, overwrite=True)
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
