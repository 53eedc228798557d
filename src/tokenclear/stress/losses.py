"""Stress losses, Cover 2 and the reverse stress test: the pure numeric core (float64 arrays, no I/O).

A member's stress loss is what its positions lose under the scenario minus what its collateral is worth after
the scenario (stressed price, stressed haircut, nothing for a frozen token), account by account: a customer
account's collateral covers only that account (segregation), so a member's uncovered loss is the sum over its
accounts of max(loss - collateral, 0); a member group (affiliates) adds its members'.

Cover 2 (PFMI Principle 4, key consideration 4): the default fund covers, in the worst scenario, the default of
the two member groups with the largest uncovered losses. Contributions are pro rata to each group's stress
exposure: its largest uncovered loss over the scenarios. The CCP's own capital (skin in the game) is a layer
used before the survivors' contributions; it does not reduce the fund's size here.

The reverse stress test scales a scenario's shocks by k (moves x k; collateral prices and haircuts moved k times
as far from today's; a frozen token stays frozen) and finds, by bisection, the smallest k at which the two
largest uncovered losses exhaust the prefunded resources beyond margin (default fund and skin in the game).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.margin.valuation import Resolved, revalue


@dataclass(frozen=True)
class StressBook:
    """A book and its collateral. ``quantity[account, instrument]`` contracts; ``collateral[account, asset]``
    units; ``price[asset]`` USD a unit today; ``haircut[asset]`` today's fraction; ``group[account]`` the index of
    the account's member group in ``groups``; ``horizon_days`` the calendar days options age in the scenario."""

    accounts: list[str]
    groups: list[str]
    group: np.ndarray
    resolved: Resolved
    quantity: np.ndarray
    collateral: np.ndarray
    price: np.ndarray
    haircut: np.ndarray
    horizon_days: float


@dataclass(frozen=True)
class Shocks:
    """One scenario in numbers: ``moves[factor]`` (relative or absolute per factor); ``price_ratio[asset]`` the
    stressed over today's price; ``haircut[asset]`` the stressed haircut; ``frozen[asset]``."""

    moves: np.ndarray
    price_ratio: np.ndarray
    haircut: np.ndarray
    frozen: np.ndarray

    def scaled(self, k: float, today_haircut: np.ndarray) -> Shocks:
        return Shocks(k * self.moves, np.maximum(1.0 + k * (self.price_ratio - 1.0), 0.0),
                      np.clip(today_haircut + k * (self.haircut - today_haircut), 0.0, 1.0), self.frozen)


@dataclass(frozen=True)
class Losses:
    """float64[scenarios, accounts] (USD): ``loss`` of the positions (> 0 a loss), ``collateral`` after stress,
    ``uncovered`` = max(loss - collateral, 0); ``by_group[scenarios, groups]`` the uncovered sum."""

    loss: np.ndarray
    collateral: np.ndarray
    uncovered: np.ndarray
    by_group: np.ndarray


def losses(book: StressBook, shocks: list[Shocks]) -> Losses:
    """Every account's stress loss under every scenario, vectorised over scenarios and accounts."""
    moves = np.stack([s.moves for s in shocks])  # [scenarios, factors]
    pnl = book.quantity @ revalue(book.resolved, moves, horizon_days=book.horizon_days)  # [accounts, scenarios]
    keep = np.stack([s.price_ratio * (1.0 - s.haircut) * ~s.frozen for s in shocks])  # [scenarios, assets]
    collateral = (book.collateral * book.price) @ keep.T  # [accounts, scenarios]
    loss = -pnl.T
    uncovered = np.maximum(loss - collateral.T, 0.0)
    return Losses(loss, collateral.T, uncovered, group_sums(uncovered, book.group, len(book.groups)))


def group_sums(values: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """float64[scenarios, groups]: ``values[scenarios, accounts]`` summed over each group's accounts."""
    out = np.zeros((values.shape[0], groups))
    np.add.at(out.T, group, values.T)
    return out


@dataclass(frozen=True)
class Cover2:
    """``fund`` (USD): the largest over scenarios of the two largest groups' uncovered losses; ``scenario`` the
    index that sets it and ``groups`` its two groups; ``per_scenario[s]`` each scenario's Cover 2 amount and
    ``top[s]`` its two groups (indices)."""

    fund: float
    scenario: int
    groups: tuple[int, int]
    per_scenario: np.ndarray
    top: np.ndarray


def cover2(by_group: np.ndarray) -> Cover2:
    """Cover 2 over ``by_group[scenarios, groups]`` (one group alone is Cover 1 of it)."""
    order = np.argsort(-by_group, axis=1, kind="stable")[:, :2]
    if order.shape[1] == 1:
        order = np.concatenate([order, order], axis=1)
    top_two = np.take_along_axis(by_group, order, axis=1)
    per_scenario = top_two[:, 0] + (top_two[:, 1] if by_group.shape[1] > 1 else 0.0)
    worst = int(np.argmax(per_scenario))
    return Cover2(float(per_scenario[worst]), worst, (int(order[worst, 0]), int(order[worst, 1])), per_scenario,
                  order)


def contributions(fund: float, by_group: np.ndarray) -> np.ndarray:
    """float64[groups] (USD): ``fund`` shared pro rata to each group's largest uncovered loss over the
    scenarios (zero for a group that no scenario leaves uncovered)."""
    exposure = by_group.max(axis=0)
    total = exposure.sum()
    return np.zeros_like(exposure) if total <= 0 else fund * exposure / total


def reverse_multiple(book: StressBook, shock: Shocks, resources: float, *, k_max: float = 100.0,
                     tolerance: float = 1e-4) -> float:
    """The smallest k in (0, k_max] at which the two largest uncovered group losses under k x ``shock`` reach
    ``resources`` (USD), to ``tolerance``; inf when even k_max does not (bisection: the first crossing found
    from below, the loss need not be monotone in k for option books)."""
    def short(k: float) -> bool:
        return cover2(losses(book, [shock.scaled(k, book.haircut)]).by_group).fund >= resources

    if resources <= 0:
        return 0.0
    if not short(k_max):
        return float("inf")
    low, high = 0.0, k_max
    while high - low > tolerance * max(high, 1.0):
        middle = 0.5 * (low + high)
        low, high = (low, middle) if short(middle) else (middle, high)
    return high
