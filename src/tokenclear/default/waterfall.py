"""The default waterfall: which resources a defaulter's loss uses, in order (pure, exact in ``Decimal``).

The order (PFMI Principle 4; EMIR Art. 45): the defaulter's margin, the defaulter's default-fund contribution,
the CCP's own capital (skin in the game), the surviving members' contributions pro rata to their size, then the
recovery tools: assessments on the survivors (capped at ``assessment_multiple`` x their contribution), haircutting
of the variation-margin gains owed to survivors, and what is left is closed by partial tear-up (documented, not
sized). A loss the margin covers uses nothing beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Layer:
    name: str
    available: Decimal
    used: Decimal
    by_member: dict[str, Decimal] = field(default_factory=dict)  # who paid it (survivors' layers)


@dataclass(frozen=True)
class Waterfall:
    loss: Decimal
    layers: list[Layer]
    tear_up: Decimal  # what no layer covered

    @property
    def survivors_paid(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for layer in self.layers:
            for member, amount in layer.by_member.items():
                out[member] = out.get(member, ZERO) + amount
        return out


def pro_rata(amount: Decimal, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    """``amount`` split over ``weights`` to the cent, rounded down, the remainder cents to the largest weights
    first: the parts add up to ``amount`` exactly."""
    total = sum(weights.values(), ZERO)
    if amount <= 0 or total <= 0:
        return {member: ZERO for member in weights}
    parts = {member: (amount * weight / total).quantize(CENT, rounding=ROUND_DOWN) for member, weight in
             weights.items()}
    left = int((amount - sum(parts.values(), ZERO)) / CENT)
    for member in sorted(weights, key=lambda m: (-weights[m], m))[:left]:
        parts[member] += CENT
    return parts


def run(loss: Decimal, *, margin: Decimal, own_contribution: Decimal, skin_in_the_game: Decimal,
        survivors: dict[str, Decimal], assessment_multiple: Decimal = Decimal(1),
        vm_gains: dict[str, Decimal] | None = None) -> Waterfall:
    """The layers ``loss`` (USD, the close-out loss of the defaulter's positions) uses. ``survivors``: each
    surviving member's default-fund contribution; ``vm_gains``: variation margin the CCP owes each survivor
    for the period (haircut last)."""
    left = max(loss, ZERO)
    layers: list[Layer] = []

    def take(name: str, available: Decimal, weights: dict[str, Decimal] | None = None) -> None:
        nonlocal left
        used = min(left, max(available, ZERO))
        left -= used
        layers.append(Layer(name, available, used, pro_rata(used, weights) if weights is not None else {}))

    take("defaulter's margin", margin)
    take("defaulter's default-fund contribution", own_contribution)
    take("CCP skin in the game", skin_in_the_game)
    take("survivors' default-fund contributions", sum(survivors.values(), ZERO), survivors)
    assessments = {member: (amount * assessment_multiple).quantize(CENT, rounding=ROUND_DOWN)
                   for member, amount in survivors.items()}
    take(f"assessments (up to {assessment_multiple} x the contribution)", sum(assessments.values(), ZERO),
         assessments)
    gains = {member: amount for member, amount in (vm_gains or {}).items() if amount > 0}
    take("variation-margin gains haircutting", sum(gains.values(), ZERO), gains)
    return Waterfall(loss, layers, left)
