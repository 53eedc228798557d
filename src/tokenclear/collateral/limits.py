"""Concentration limits and wrong-way risk (pure, vectorised over accounts).

Concentration: for each dimension (issuer, kind, chain) the post-haircut value of a group counts
up to ``max_share`` x the account's requirement; the excess counts for nothing. Dimensions are
applied in turn, each scaling the group's assets down pro rata; every later step only lowers
values, so the result respects every limit (it is feasible, though not always the largest
feasible count; the allocation LP finds that one).

Wrong-way risk:

* specific: collateral issued by the member or its group is excluded;
* general: the correlation ``rho`` between the collateral's return and the account's portfolio
  P&L over the same scenarios. ``rho >= exclude_above`` excludes the asset; ``threshold <= rho``
  adds ``rho x market haircut`` to its haircut (the collateral tends to fall when the account
  loses). Negative correlation (right-way) earns no credit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.collateral.assets import Asset, Registry

DIMENSIONS = ("issuer", "kind", "chain")
ANY = "*"


@dataclass(frozen=True)
class Limit:
    dimension: str
    group: str  # "*" = every group without its own limit
    max_share: float  # of the account's requirement; may exceed 1 (no binding limit)


@dataclass(frozen=True)
class CreditFloors:
    """Minimum haircut by (kind, rating); ``None`` in a key = any."""

    entries: dict[tuple[str | None, str | None], float]

    def floor(self, asset: Asset) -> float | None:
        for key in ((asset.kind, asset.rating), (asset.kind, None), (None, asset.rating), (None, None)):
            if key in self.entries:
                return self.entries[key]
        return None

    def floors(self, registry: Registry) -> Float64Array1D:
        values = [self.floor(asset) for asset in registry.assets]
        if any(value is None for value in values):
            missing = [a.asset for a, v in zip(registry.assets, values, strict=True) if v is None]
            raise ValueError(f"no credit floor for {', '.join(missing)}")
        return np.array(values, dtype=np.float64)


@dataclass(frozen=True)
class ScheduleFloor:
    floor: float
    schedule: str  # the CCP whose published schedule it comes from
    source: str


@dataclass(frozen=True)
class ScheduleFloors:
    """Minimum haircut from published CCP schedules, by asset or else by kind (none = no floor)."""

    by_asset: dict[str, ScheduleFloor]
    by_kind: dict[str, ScheduleFloor]

    def floor(self, asset: Asset) -> ScheduleFloor | None:
        return self.by_asset.get(asset.asset) or self.by_kind.get(asset.kind)

    def floors(self, registry: Registry) -> Float64Array1D:
        return np.array([getattr(self.floor(asset), "floor", 0.0) for asset in registry.assets], dtype=np.float64)


def group_key(asset: Asset, dimension: str) -> str:
    """The asset's group in ``dimension`` ("" = none: no issuer)."""
    if dimension == "issuer":
        return asset.issuer
    if dimension == "kind":
        return asset.kind
    return asset.chain


@dataclass(frozen=True)
class GroupCaps:
    """One dimension resolved on a registry: ``membership[assets, groups]`` (0/1), ``caps[groups]``."""

    dimension: str
    groups: list[str]
    membership: Float64Array2D
    caps: Float64Array1D  # share of requirement; inf = no limit


def resolve_limits(limits: list[Limit], registry: Registry) -> list[GroupCaps]:
    out = []
    for dimension in DIMENSIONS:
        explicit = {one.group: one.max_share for one in limits if one.dimension == dimension}
        default = explicit.get(ANY, np.inf)
        keys = [group_key(asset, dimension) for asset in registry.assets]
        groups = sorted({key for key in keys if key})
        membership = np.zeros((len(registry), len(groups)))
        for column, group in enumerate(groups):
            membership[[key == group for key in keys], column] = 1.0
        caps = np.array([explicit.get(group, default) for group in groups], dtype=np.float64)
        out.append(GroupCaps(dimension, groups, membership, caps))
    return out


@dataclass(frozen=True)
class LimitUse:
    """How one dimension's limits bind on each account, as :func:`limit_use` applies them in turn: for each of
    its limited ``groups``, ``held[accounts, groups]`` the post-haircut value of the group's assets (after the
    earlier dimensions' cuts), ``allowed`` = ``caps`` x the requirement, ``kept_out`` = max(held - allowed, 0);
    margin currency."""

    dimension: str
    groups: list[str]
    caps: Float64Array1D  # share of requirement
    held: Float64Array2D
    allowed: Float64Array2D
    kept_out: Float64Array2D


def limit_use(value: Float64Array2D, requirement: Float64Array1D,
              caps: list[GroupCaps]) -> tuple[Float64Array2D, list[LimitUse]]:
    """Post-haircut value that counts, float64[accounts, assets] in the margin currency, and how each limited
    dimension bound (see :class:`LimitUse`; dimensions without a finite limit are left out).

    ``value``: post-haircut value per account and asset (>= 0); ``requirement``: float64[accounts].
    """
    counted = np.asarray(value, dtype=np.float64)
    allowed_base = np.maximum(np.asarray(requirement, dtype=np.float64), 0.0)[:, None]
    uses = []
    for one in caps:
        finite = np.isfinite(one.caps)
        if not finite.any():
            continue
        membership = one.membership[:, finite]  # groups without a limit never scale anything
        sums = counted @ membership  # [accounts, groups]
        allowed = one.caps[finite][None, :] * allowed_base
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            factor = np.where(sums > allowed, allowed / sums, 1.0)
        outside = 1.0 - membership.sum(axis=1)
        counted = counted * (factor @ membership.T + outside[None, :])
        uses.append(LimitUse(one.dimension, [g for g, keep in zip(one.groups, finite, strict=True) if keep],
                             one.caps[finite], sums, np.broadcast_to(allowed, sums.shape),
                             np.maximum(sums - allowed, 0.0)))
    return counted, uses


def apply_caps(value: Float64Array2D, requirement: Float64Array1D, caps: list[GroupCaps]) -> Float64Array2D:
    """Post-haircut value that counts: float64[accounts, assets] in the margin currency (see :func:`limit_use`)."""
    return limit_use(value, requirement, caps)[0]


def portfolio_correlation(pnl: Float64Array2D, returns: Float64Array2D) -> Float64Array2D:
    """Pearson correlation float64[accounts, assets] of each account's scenario P&L
    (float64[accounts, scenarios]) with each asset's return on the same scenarios
    (float64[scenarios, assets]). Zero variance on either side gives 0."""
    pnl = np.asarray(pnl, dtype=np.float64)
    returns = np.asarray(returns, dtype=np.float64)
    a = pnl - pnl.mean(axis=1, keepdims=True)
    b = returns - returns.mean(axis=0, keepdims=True)
    norm_a = np.sqrt((a * a).sum(axis=1))
    norm_b = np.sqrt((b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (a @ b) / np.outer(norm_a, norm_b)
    return np.where(np.isfinite(corr), np.clip(corr, -1.0, 1.0), 0.0)


@dataclass(frozen=True)
class WrongWay:
    """Per account and asset: ``extra_haircut`` (fraction) and ``excluded`` (bool), with the
    correlation that decided."""

    correlation: Float64Array2D
    extra_haircut: Float64Array2D
    excluded: np.ndarray


def wrong_way(correlation: Float64Array2D, market_haircut: Float64Array1D, *, own_issuer: np.ndarray | None = None,
              threshold: float = 0.5, exclude_above: float = 0.8) -> WrongWay:
    """Apply the general and specific wrong-way rules (see the module docstring)."""
    if not 0.0 <= threshold <= exclude_above <= 1.0:
        raise ValueError("need 0 <= threshold <= exclude_above <= 1")
    correlation = np.asarray(correlation, dtype=np.float64)
    excluded = correlation >= exclude_above
    if own_issuer is not None:
        excluded = excluded | own_issuer
    extra = np.where((correlation >= threshold) & ~excluded, correlation * market_haircut[None, :], 0.0)
    return WrongWay(correlation, extra, excluded)


def own_issuer(member_groups: list[str], registry: Registry) -> np.ndarray:
    """bool[accounts, assets]: the asset is issued by the account's member or its group."""
    issuer_groups = np.array([asset.issuer_group for asset in registry.assets], dtype=object)
    members = np.array(member_groups, dtype=object)
    return (members[:, None] == issuer_groups[None, :]) & (issuer_groups[None, :] != "")
