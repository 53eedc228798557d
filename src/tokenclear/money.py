"""The one boundary between the float64 risk core and exact money (``Decimal``).

Requirements are rounded up to the cent (a member never owes less than computed), collateral
values down (collateral is never overstated); other amounts (P&L, contributions) to the nearest cent, half to even.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import numpy as np

CENT = Decimal("0.01")


def requirement(value: float) -> Decimal:
    """A margin requirement in currency units, rounded up to the cent; never negative."""
    if not np.isfinite(value):
        raise ValueError(f"requirement is not finite: {value}")
    return max(Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_CEILING), Decimal("0.00"))


def amount(value: float) -> Decimal:
    """A signed amount in currency units, to the nearest cent (half to even)."""
    if not np.isfinite(value):
        raise ValueError(f"amount is not finite: {value}")
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_EVEN)


def requirements(values: np.ndarray) -> list[Decimal]:
    """:func:`requirement` of each of ``values`` (float64, any shape, flattened), its finiteness checked once."""
    flat = _finite(values, "requirement")
    return [_ZERO if value <= 0 else Decimal(repr(value)).quantize(CENT, rounding=ROUND_CEILING) for value in flat]


def amounts(values: np.ndarray) -> list[Decimal]:
    """:func:`amount` of each of ``values`` (float64, any shape, flattened)."""
    flat = _finite(values, "amount")
    return [_ZERO if value == 0 else Decimal(repr(value)).quantize(CENT, rounding=ROUND_HALF_EVEN) for value in flat]


_ZERO = Decimal("0.00")


def _finite(values: np.ndarray, what: str) -> list[float]:
    array = np.asarray(values, dtype=np.float64).ravel()
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{what} is not finite: {array[bad[0]]}")
    return array.tolist()


def collateral(value: float) -> Decimal:
    """A post-haircut collateral value in currency units, rounded down to the cent; never negative."""
    if not np.isfinite(value):
        raise ValueError(f"collateral value is not finite: {value}")
    return max(Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_FLOOR), Decimal("0.00"))
