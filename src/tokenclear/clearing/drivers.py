"""Why an account was called (pure): its shortfall split by what moved since the previous cycle.

With ``R`` the requirement, ``H`` its holiday/weekend add-on, and for each token ``u`` the units held now,
``p`` the price (USD per token) and ``h`` the haircut, from one cycle (0) to the next (1):

* ``positions``: ``R1 - R*``, where ``R*`` is what the account's previous positions would require now (same
  closes, scenarios and add-ons); 0 for an account whose positions did not change;
* ``weekend add-on``: ``H* - H0`` (collected ahead of weekends and holidays; ``H*`` the add-on of ``R*``,
  which is ``H1`` when the positions did not change);
* ``market moves``: ``(R* - H*) - (R0 - H0)``, the rest of the requirement's change (prices of the
  positions, the scenario window, APC, VM a member could not pay);
* ``stablecoin depeg``: ``-u (1 - h0) (p1 - p0)`` over the stablecoins;
* ``collateral prices``: the same over the other tokens;
* ``haircuts``: ``u p1 (h1 - h0)``, the recalibrated haircuts.

Every term is USD and > 0 raises the shortfall. The terms are measured on the units held now, so they add
up to the shortfall's change had the member neither posted nor withdrawn since the previous cycle (what a
member posts answers a call; it does not cause one). Concentration and wrong-way cuts move with the
prices too; they are left in the collateral that counts, not split out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tokenclear.money import amount

DRIVERS = ("weekend add-on", "market moves", "positions", "stablecoin depeg", "collateral prices", "haircuts")


@dataclass(frozen=True)
class Valuation:
    """What a cycle required of one account: the requirement and its holiday add-on (USD)."""

    requirement: Decimal
    holiday_addon: Decimal


@dataclass(frozen=True)
class TokenTerms:
    """A token's price (USD per whole token) and haircut (fraction) at one cycle."""

    price: float
    haircut: float


def attribute(before: Valuation, after: Valuation, units: dict[str, float], terms_0: dict[str, TokenTerms],
              terms_1: dict[str, TokenTerms], stablecoins: set[str],
              previous_positions: Valuation | None = None) -> dict[str, Decimal]:
    """The shortfall's change split by driver (USD, to the cent; > 0 raises it). ``units``: whole tokens
    held now, by symbol; ``previous_positions``: what the account's previous positions would require now, when
    they changed (None: they did not)."""
    same = after if previous_positions is None else previous_positions
    positions = after.requirement - same.requirement
    weekend = same.holiday_addon - before.holiday_addon
    market = (same.requirement - same.holiday_addon) - (before.requirement - before.holiday_addon)
    depeg = prices = haircuts = 0.0
    for symbol, held in units.items():
        if symbol not in terms_0 or symbol not in terms_1 or not held:
            continue
        t0, t1 = terms_0[symbol], terms_1[symbol]
        price_term = -held * (1.0 - t0.haircut) * (t1.price - t0.price)
        if symbol in stablecoins:
            depeg += price_term
        else:
            prices += price_term
        haircuts += held * t1.price * (t1.haircut - t0.haircut)
    return {"weekend add-on": weekend, "market moves": market, "positions": positions,
            "stablecoin depeg": amount(depeg),
            "collateral prices": amount(prices), "haircuts": amount(haircuts)}


def main_driver(contributions: dict[str, Decimal]) -> str:
    """The driver that raised the shortfall most (``none`` when nothing raised it: a member who withdrew)."""
    name, value = max(((name, contributions[name]) for name in DRIVERS), key=lambda item: item[1])
    return name if value > 0 else "none"
