"""The collateral asset registry (pure): what an asset is, how it is priced, where it lives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.errors import ConfigurationError

#: Kinds of the registry plus those of the clearing houses' non-cash table (rules may name either).
REGISTRY_KINDS = ("cash", "stablecoin", "mutual_fund", "sovereign_bond", "equity", "etf", "gold", "crypto")
TABLE_KINDS = ("agency_bond", "state_municipal_bond", "supranational_bond", "corporate_bond", "covered_bond",
               "mortgage_backed_security", "carbon_emission_allowance")
KINDS = REGISTRY_KINDS + TABLE_KINDS
PRICE_MODELS = ("series", "duration", "volatility", "par")
YIELD_MODELS = ("none", "accruing", "rebasing", "accreting")
OFF_CHAIN = "off-chain"


@dataclass(frozen=True)
class Asset:
    """One collateral asset. Fractions in [0, 1]; yields annual, simple; lag in hours."""

    asset: str
    name: str
    kind: str
    tokenized: bool
    currency: str
    issuer: str  # "" = no issuer (BTC, ETH, gold)
    issuer_group: str
    issuer_country: str
    rating: str
    price_model: str
    price_series: str | None
    stress_series: str | None  # proxy whose history holds the stressed period (default: price_series)
    duration_years: float | None
    rate_vol_bp: float | None  # std. dev. of the daily yield change, basis points
    annual_vol: float | None
    settlement_lag_hours: float
    volume_series: str | None
    volume_unit: str | None  # "usd" or "shares"
    adv_usd: float | None  # stated daily capacity when there is no volume series
    participation: float  # share of a day's volume one can sell without moving the market
    yield_annual: float  # earned unencumbered
    yield_pledged: float  # still earned while pledged
    yield_model: str
    chains: tuple[str, ...]

    @property
    def chain(self) -> str:
        """The chain the clearing house holds it on (the first listed) or ``off-chain``."""
        return self.chains[0]

    @property
    def yield_forgone(self) -> float:
        return self.yield_annual - self.yield_pledged


@dataclass(frozen=True)
class Registry:
    """Assets in file order; ``index`` maps a name to its column in every per-asset array."""

    assets: tuple[Asset, ...]

    def __post_init__(self) -> None:
        names = [one.asset for one in self.assets]
        if len(set(names)) != len(names):
            raise ConfigurationError("registry lists an asset twice")

    def __len__(self) -> int:
        return len(self.assets)

    def __contains__(self, name: object) -> bool:
        return any(one.asset == name for one in self.assets)

    @property
    def names(self) -> list[str]:
        return [one.asset for one in self.assets]

    def index(self, name: str) -> int:
        for position, one in enumerate(self.assets):
            if one.asset == name:
                return position
        known = ", ".join(self.names)
        raise ConfigurationError(f"unknown asset '{name}' (registry: {known})")

    def get(self, name: str) -> Asset:
        return self.assets[self.index(name)]

    def subset(self, names: list[str]) -> Registry:
        return Registry(tuple(self.get(name) for name in names))

    def column(self, attribute: str) -> np.ndarray:
        """One attribute of every asset as an array (float64 for numbers, object for strings)."""
        values = [getattr(one, attribute) for one in self.assets]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            return np.array(values, dtype=np.float64)
        return np.array(values, dtype=object)
