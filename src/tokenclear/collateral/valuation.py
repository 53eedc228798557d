"""Collateral valuation (pure, vectorised over accounts): market value, haircut, eligibility,
wrong-way risk and concentration limits, then coverage = collateral value - requirement.

Units: quantities in whole asset units (float64[accounts, assets]); prices in the asset's
currency per unit; ``fx`` in margin-currency units per asset-currency unit; values in the margin
currency. Float64 stays inside; :meth:`Valuation.exact` is the one exact boundary (``Decimal``):
collateral rounded down to the cent (never overstated), requirements up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

import numpy as np

from tokenclear import money
from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.collateral.limits import GroupCaps, WrongWay, apply_caps

BPS = 10_000


@dataclass(frozen=True)
class Valuation:
    market_value: Float64Array2D  # [accounts, assets], before haircut
    post_haircut: Float64Array2D  # after haircut (and wrong-way extra), eligible assets only
    counted: Float64Array2D  # after concentration limits
    requirement: Float64Array1D

    @cached_property
    def collateral(self) -> Float64Array1D:
        return self.counted.sum(axis=1)

    @cached_property
    def coverage(self) -> Float64Array1D:
        """Collateral value - requirement: > 0 is excess, < 0 a shortfall to call."""
        return self.collateral - self.requirement

    @property
    def over_limits(self) -> Float64Array1D:
        """Post-haircut value that concentration limits kept from counting, per account."""
        return (self.post_haircut - self.counted).sum(axis=1)

    def exact(self, account: int) -> tuple[Decimal, Decimal, Decimal]:
        """(collateral, requirement, coverage) of one account in ``Decimal`` currency units."""
        collateral = money.collateral(float(self.collateral[account]))
        requirement = money.requirement(float(self.requirement[account]))
        return collateral, requirement, collateral - requirement


def value_collateral(quantity: Float64Array2D, *, price: Float64Array1D, fx: Float64Array1D,
                     haircut: Float64Array1D | Float64Array2D, eligible: np.ndarray,
                     requirement: Float64Array1D, caps: list[GroupCaps] | None = None,
                     wrong_way: WrongWay | None = None) -> Valuation:
    """Value every account's collateral. ``haircut``: fraction per asset (or per account and asset);
    ``eligible``: bool[assets] (or [accounts, assets]). Negative quantities are a programmer error."""
    quantity = np.asarray(quantity, dtype=np.float64)
    assert (quantity >= 0).all(), "collateral quantities are never negative"
    market_value = quantity * (np.asarray(price, dtype=np.float64) * np.asarray(fx, dtype=np.float64))[None, :]
    haircut = np.broadcast_to(np.asarray(haircut, dtype=np.float64), quantity.shape)
    keep = np.broadcast_to(np.asarray(eligible, dtype=bool), quantity.shape)
    if wrong_way is not None:
        haircut = haircut + wrong_way.extra_haircut
        keep = keep & ~wrong_way.excluded
    post = np.where(keep, market_value * np.clip(1.0 - haircut, 0.0, 1.0), 0.0)
    requirement = np.asarray(requirement, dtype=np.float64)
    counted = apply_caps(post, requirement, caps) if caps else post
    return Valuation(market_value, post, counted, requirement)


def post_haircut_micro(amount: int, *, price_e8: int, haircut_bps: int, decimals: int) -> int:
    """Exact post-haircut value of ``amount`` base units in micro-units of the margin currency,
    rounded down: the vault contract's formula, so the book and the chain agree to the unit."""
    if amount < 0 or price_e8 < 0 or not 0 <= haircut_bps < BPS:
        raise ValueError("amount and price must be >= 0 and the haircut in [0, 10000) bps")
    # micro = amount / 10**decimals x price_e8 / 10**8 x (1 - bps / 10**4) x 10**6
    return amount * price_e8 * (BPS - haircut_bps) // (10 ** (decimals + 2) * BPS)
