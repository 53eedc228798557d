"""What a margin method returns for every account (arrays, before money rounding)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D


@dataclass(frozen=True)
class MethodResult:
    """Per-account base requirement and its drivers, float64, margin currency.

    ``risk`` > 0 is owed by the member (may be < 0 where every scenario gains; the engine
    floors the requirement at 0). ``worst`` labels each account's worst scenario (a date or
    a scenario name); ``contributors`` / ``contributor_loss`` the instruments losing most
    in it (> 0 = loss); ``components`` any method-specific parts (SPAN's scan risk,
    spread charges, ...), each float64[accounts].
    """

    risk: Float64Array1D
    worst: np.ndarray
    contributors: np.ndarray
    contributor_loss: Float64Array2D
    components: dict[str, Float64Array1D] = field(default_factory=dict)
