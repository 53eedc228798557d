"""Coverage (pure, no chain, no database): what an account's collateral counts for against its
requirement, the call a shortfall raises, the floor posted on chain, and the units that cover a value.

The vault values collateral exactly (post-haircut, micro-USD, rounded down); the book then takes off
what the collateral core keeps from counting: the concentration limits and general wrong-way risk,
measured by each cycle's :class:`RiskState`. Money is ``Decimal`` (USD) here; float64 only inside
the collateral core's arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from tokenclear import money
from tokenclear.collateral.limits import GroupCaps, LimitUse, limit_use, wrong_way
from tokenclear.collateral.valuation import BPS, value_collateral
from tokenclear.ledger.privacy import floor_bucket

CENT = money.CENT
MICRO = Decimal(10**6)  # micro-USD per USD: the vault's value unit
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class RiskState:
    """The collateral side of one cycle's risk run, kept with the cycle so that a restart values
    collateral as the cycle did: each token's market haircut (fraction) and each account's correlation
    of its scenario P&L with each token's return (general wrong-way risk)."""

    symbols: tuple[str, ...] = ()
    market_haircut: tuple[float, ...] = ()
    correlation: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def correlations(self, accounts: Sequence[str], symbols: Sequence[str]) -> np.ndarray:
        """float64[accounts, symbols]; 0 for an account or token the run did not measure."""
        index = {symbol: j for j, symbol in enumerate(self.symbols)}
        out = np.zeros((len(accounts), len(symbols)))
        for i, account in enumerate(accounts):
            row = self.correlation.get(account)
            if row is not None:
                for j, symbol in enumerate(symbols):
                    if symbol in index:
                        out[i, j] = row[index[symbol]]
        return out

    def haircuts(self, symbols: Sequence[str]) -> np.ndarray:
        index = {symbol: j for j, symbol in enumerate(self.symbols)}
        return np.array([self.market_haircut[index[s]] if s in index else 0.0 for s in symbols])

    def to_json(self) -> dict:
        """JSON floats round-trip exactly (shortest repr), so a restored state values to the cent."""
        return {"symbols": list(self.symbols), "market_haircut": list(self.market_haircut),
                "correlation": {account: list(row) for account, row in self.correlation.items()}}

    @classmethod
    def from_json(cls, data: dict) -> RiskState:
        return cls(tuple(data["symbols"]), tuple(float(x) for x in data["market_haircut"]),
                   {account: tuple(float(x) for x in row) for account, row in data["correlation"].items()})


@dataclass(frozen=True)
class Holdings:
    """What some accounts hold in the vault, at the vault's prices and haircuts: ``quantity``
    float64[accounts, tokens] in whole token units, ``price`` USD per whole token, ``haircut`` fraction."""

    accounts: list[str]
    symbols: list[str]
    quantity: np.ndarray
    price: np.ndarray
    haircut: np.ndarray
    eligible: np.ndarray


@dataclass(frozen=True)
class Limits:
    caps: list[GroupCaps]
    wrong_way_threshold: float = 0.5  # correlation with the account's P&L from which the haircut grows
    wrong_way_exclude: float = 0.8  # and from which the collateral counts for nothing


@dataclass(frozen=True)
class Counting:
    """What the collateral core keeps from counting, float64 USD per account: ``plain`` the post-haircut value at
    the vault's haircuts, ``wrong_way`` the part general wrong-way risk takes off, ``uses`` how each limited
    dimension of the concentration limits bound (:class:`tokenclear.collateral.limits.LimitUse`), ``kept`` what
    still counts after both."""

    plain: np.ndarray
    wrong_way: np.ndarray
    uses: list[LimitUse]
    kept: np.ndarray


def counting(holdings: Holdings, requirement: Sequence[Decimal], risk: RiskState, limits: Limits) -> Counting:
    """The concentration limits and general wrong-way risk applied to ``holdings`` (see :class:`Counting`)."""
    correlation = risk.correlations(holdings.accounts, holdings.symbols)
    way = wrong_way(correlation, risk.haircuts(holdings.symbols), threshold=limits.wrong_way_threshold,
                    exclude_above=limits.wrong_way_exclude)
    common = {"price": holdings.price, "fx": np.ones(len(holdings.symbols)), "haircut": holdings.haircut,
              "eligible": holdings.eligible, "requirement": np.array([float(r) for r in requirement])}
    plain = value_collateral(holdings.quantity, **common).post_haircut.sum(axis=1)  # what the vault counts
    after_way = value_collateral(holdings.quantity, **common, wrong_way=way).post_haircut
    kept, uses = limit_use(after_way, common["requirement"], limits.caps)
    return Counting(plain, plain - after_way.sum(axis=1), uses, kept.sum(axis=1))


def counted(vault_usd: Sequence[Decimal], holdings: Holdings, requirement: Sequence[Decimal], risk: RiskState,
            limits: Limits) -> list[Decimal]:
    """Collateral that counts, per account: the vault's exact value (USD, to the cent, down) less what the
    concentration limits and general wrong-way risk keep from counting (rounded up to the cent)."""
    if not limits.caps and not risk.correlations(holdings.accounts, holdings.symbols).any():
        return list(vault_usd)
    count = counting(holdings, requirement, risk, limits)
    return [max(value - money.requirement(float(max(count.plain[i] - count.kept[i], 0.0))), ZERO)
            for i, value in enumerate(vault_usd)]


def call_amount(coverage: Decimal, threshold: Decimal) -> Decimal | None:
    """The call a coverage raises: the shortfall rounded up to the whole USD, or None at or above
    ``-threshold`` (shortfalls below the threshold are not called)."""
    if coverage >= -threshold:
        return None
    return (-coverage).quantize(Decimal(1), rounding=ROUND_CEILING)


def usd(micro: int) -> Decimal:
    """A vault value (micro-USD) in USD, rounded down to the cent (collateral is never overstated)."""
    return (Decimal(micro) / MICRO).quantize(CENT, rounding=ROUND_FLOOR)


def micro(amount: Decimal) -> int:
    """USD (at most 6 decimals: cents and stablecoin units are) in micro-USD, exactly."""
    value = amount * MICRO
    if value != value.to_integral_value():
        raise ValueError(f"{amount} USD is not a whole number of micro-USD")
    return int(value)


def floor_micro(requirement: Decimal, grid_usd: Decimal = ZERO) -> int:
    """The floor posted on chain for a requirement (USD): the requirement itself in micro-USD, or in
    privacy mode rounded down to ``grid_usd`` (see :func:`tokenclear.ledger.privacy.floor_bucket`)."""
    exact = micro(requirement)
    return exact if grid_usd <= 0 else floor_bucket(exact, micro(grid_usd))


def units_for(value_micro: int, *, price_e8: int, haircut_bps: int, decimals: int) -> int:
    """The fewest base units whose post-haircut value (the vault's formula, rounded down) reaches
    ``value_micro``: the inverse of ``vault._value``."""
    scale = 10 ** (decimals + 2) * BPS
    per = price_e8 * (BPS - haircut_bps)
    return -(-value_micro * scale // per)
