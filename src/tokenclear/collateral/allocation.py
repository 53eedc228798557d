"""Collateral allocation (pure): what each member pledges where, at least cost.

Members ``m`` hold an inventory of assets ``a`` (market value in the margin currency) and owe
requirements at clearing houses ``c``. Pledging one unit of market value of ``a`` at ``c`` costs
``yield_forgone[a] + haircut[a, c] x funding_rate`` a year (the income the asset stops earning
while pledged, plus the funding of the part the haircut does not count) and covers
``1 - haircut[a, c]`` of the requirement.

The optimal allocation is a linear program solved by HiGHS (``scipy.optimize.linprog``):

    minimise    sum cost[a, c] x[m, a, c] + penalty x sum shortfall[m, c]
    subject to  sum_c x[m, a, c] <= inventory[m, a]                        (inventory)
                sum_a (1 - h[a, c]) x[m, a, c] + shortfall[m, c] >= R[m, c] (1 + buffer)
                sum_{a in g} (1 - h[a, c]) x[m, a, c] <= share[g] R[m, c]   (concentration, per group)
                x[m, a, c] = 0 unless a is eligible at c and not issued by m's group

The naive allocation is what operations do today: for each clearing house in turn, pledge the
inventory in a fixed order of preference (cash first, registry order) until the requirement plus a
buffer (6% by default: the over-provisioning the industry reports) is covered, within the same
eligibility and concentration limits. Both are vectorised over members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.collateral.limits import GroupCaps
from tokenclear.errors import ConfigurationError

NAIVE_BUFFER = 0.06
SHORTFALL_PENALTY = 1_000.0  # per unit of uncovered requirement: far above any annual cost


@dataclass(frozen=True)
class AllocationProblem:
    inventory: Float64Array2D  # [members, assets], market value, margin currency, >= 0
    requirement: Float64Array2D  # [members, houses], >= 0
    haircut: Float64Array2D  # [assets, houses], fraction
    eligible: np.ndarray  # bool[assets, houses]
    yield_annual: Float64Array1D  # [assets], earned unencumbered
    yield_pledged: Float64Array1D  # [assets], still earned while pledged
    caps: list[GroupCaps]
    excluded: np.ndarray | None = None  # bool[members, assets]: wrong-way (issued by the member's group)
    funding_rate: float = 0.043

    @property
    def shape(self) -> tuple[int, int, int]:
        members, assets = self.inventory.shape
        return members, assets, self.requirement.shape[1]

    def cost(self) -> Float64Array2D:
        """Annual cost per unit of market value pledged, float64[assets, houses]."""
        forgone = np.asarray(self.yield_annual) - np.asarray(self.yield_pledged)
        return forgone[:, None] + self.haircut * self.funding_rate

    def allowed(self) -> np.ndarray:
        """bool[members, assets, houses]: where a pledge may go."""
        members, assets, houses = self.shape
        allowed = np.broadcast_to(self.eligible[None, :, :], (members, assets, houses)).copy()
        allowed &= (self.inventory > 0)[:, :, None]
        allowed &= (self.haircut < 1.0)[None, :, :]
        if self.excluded is not None:
            allowed &= ~self.excluded[:, :, None]
        return allowed


@dataclass(frozen=True)
class Allocation:
    pledge: np.ndarray  # float64[members, assets, houses], market value pledged
    cover: Float64Array2D  # [members, houses], post-haircut value counted
    shortfall: Float64Array2D  # [members, houses]

    def report(self, problem: AllocationProblem) -> dict[str, float]:
        """Totals in the margin currency; ``excess`` = cover above requirement (the over-provisioning),
        summed over (member, house); annual figures per year."""
        required = float(problem.requirement.sum())
        excess = float(np.maximum(self.cover - problem.requirement, 0.0).sum())
        pledged = self.pledge.sum(axis=2)
        free = problem.inventory - pledged
        kept = float((pledged * problem.yield_pledged[None, :] + free * problem.yield_annual[None, :]).sum())
        return {"requirement": required, "cover": float(self.cover.sum()), "excess": excess,
                "excess_share": excess / required if required else 0.0,
                "pledged_market_value": float(pledged.sum()), "shortfall": float(self.shortfall.sum()),
                "cost_annual": float((self.pledge * problem.cost()[None, :, :]).sum()),
                "yield_kept_annual": kept}


def _cover(problem: AllocationProblem, pledge: np.ndarray) -> Float64Array2D:
    return np.einsum("mac,ac->mc", pledge, 1.0 - problem.haircut)


def optimal(problem: AllocationProblem, *, buffer: float = 0.0) -> Allocation:
    """The least-cost allocation (HiGHS). Members that cannot be covered get a shortfall."""
    members, assets, houses = problem.shape
    allowed = problem.allowed()
    m_idx, a_idx, c_idx = np.nonzero(allowed)
    n_x = m_idx.size
    n_s = members * houses
    keep = 1.0 - problem.haircut[a_idx, c_idx]
    target = problem.requirement * (1.0 + buffer)

    rows, cols, vals, rhs = [], [], [], []
    # inventory: one row per (member, asset)
    rows.append(m_idx * assets + a_idx)
    cols.append(np.arange(n_x))
    vals.append(np.ones(n_x))
    rhs.append(problem.inventory.reshape(-1))
    offset = members * assets
    # requirement: -cover - shortfall <= -target, one row per (member, house)
    cover_row = offset + m_idx * houses + c_idx
    rows += [cover_row, offset + np.arange(n_s)]
    cols += [np.arange(n_x), n_x + np.arange(n_s)]
    vals += [-keep, -np.ones(n_s)]
    rhs.append(-target.reshape(-1))
    offset += n_s
    # concentration: one row per (finite-capped group, member, house)
    for one in problem.caps:
        for column in np.flatnonzero(np.isfinite(one.caps)):
            inside = one.membership[a_idx, column] > 0
            rows.append(offset + m_idx[inside] * houses + c_idx[inside])
            cols.append(np.flatnonzero(inside))
            vals.append(keep[inside])
            rhs.append((one.caps[column] * problem.requirement).reshape(-1))
            offset += n_s
    matrix = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(offset, n_x + n_s))
    cost = np.concatenate([problem.cost()[a_idx, c_idx], np.full(n_s, SHORTFALL_PENALTY)])
    result = linprog(cost, A_ub=matrix, b_ub=np.concatenate(rhs), bounds=(0, None), method="highs")
    if result.status != 0:
        raise ConfigurationError(f"allocation LP failed: {result.message}")
    pledge = np.zeros((members, assets, houses))
    pledge[m_idx, a_idx, c_idx] = np.maximum(result.x[:n_x], 0.0)
    shortfall = result.x[n_x:].reshape(members, houses)
    return Allocation(pledge, _cover(problem, pledge), np.maximum(shortfall, 0.0))


def naive(problem: AllocationProblem, *, buffer: float = NAIVE_BUFFER, order: list[int] | None = None) -> Allocation:
    """Greedy in a fixed order of assets (default registry order), house by house, with a buffer."""
    members, assets, houses = problem.shape
    allowed = problem.allowed()
    free = problem.inventory.astype(np.float64).copy()
    pledge = np.zeros((members, assets, houses))
    sequence = range(assets) if order is None else order
    for c in range(houses):  # a loop over houses and assets; every step is vectorised over members
        need = problem.requirement[:, c] * (1.0 + buffer)
        used = [np.zeros((members, one.membership.shape[1])) for one in problem.caps]
        for a in sequence:
            keep = 1.0 - problem.haircut[a, c]
            room = np.where(allowed[:, a, c], np.minimum(need, free[:, a] * keep), 0.0)
            for one, spent in zip(problem.caps, used, strict=True):
                groups = np.flatnonzero(one.membership[a] > 0)
                if groups.size and np.isfinite(one.caps[groups[0]]):
                    limit = one.caps[groups[0]] * problem.requirement[:, c]
                    room = np.minimum(room, np.maximum(limit - spent[:, groups[0]], 0.0))
            room = np.maximum(room, 0.0)
            value = np.divide(room, keep, out=np.zeros(members), where=keep > 0)
            pledge[:, a, c] = value
            free[:, a] -= value
            need = need - room
            for one, spent in zip(problem.caps, used, strict=True):
                groups = np.flatnonzero(one.membership[a] > 0)
                if groups.size:
                    spent[:, groups[0]] += room
    cover = _cover(problem, pledge)
    return Allocation(pledge, cover, np.maximum(problem.requirement - cover, 0.0))
