"""The depeg spiral, round by round (pure numeric core, vectorized over members): a collateral asset falls,
its haircut responds under a policy, members called cure from their buffer of bills or sell the asset, members
who cannot cover are defaulted and their holding sold by the CCP, and the sales move the price by the
square-root law of :mod:`tokenclear.default.closeout`, which raises the haircut again.

Units: prices in USD a unit of the asset, amounts in USD, haircuts and shares as fractions.

Each round is one margin cycle:

1. the price is the scenario's path times the impact of every coin sold since the shock, taken as one
   metaorder: ``1 - sigma x sqrt(q / V)`` with ``q`` the coins sold in the earlier rounds, ``V`` the round's day's
   volume in coins at the calm price and ``sigma`` the daily volatility (Toth et al. 2011: a metaorder's impact
   grows as the square root of its whole size over the daily volume, whatever its duration);
2. the haircut: the spot rule is tokenclear's depeg component, the base haircut plus the discount below the
   calm price weighing fully while fresh, ``h_spot = base + k x max(0, 1 - p / p0)`` (``k`` the policy's
   procyclicality, 1 for tokenclear's rule); the policy's haircut is
   ``h_r = max(h_calm, s x h_{r-1} + (1 - s) x h_spot)`` with ``h_calm = base x buffer`` (the anti-procyclical
   buffer built in calm times, EMIR RTS 153/2013 Art. 28(1)(a): 25%, released in stress) and ``s`` the
   smoothing; ``cap`` limits the asset to that share of what counts (the allocation's diversification limit);
3. each member's shortfall ``R - (other + posted + counted)``; members short by more than the call threshold are
   called; each posts bills from its buffer (bill haircut ``hb``), then sells coins of its own treasury (outside
   the CCP) for the rest and posts the cash as bills; a member whose treasury does not reach is defaulted: the
   CCP sells its pledged coins, and the default fund meets what its collateral no longer covers of its
   requirement (the positions are assumed to lose their whole margin: an upper bound).

With the shock landing at once, a haircut that is lower at every round (less of the discount, or smoothed)
never sells more coins, defaults more members or leaves a lower price (the property test): every step is
monotone in the haircut and the price depends on the coins sold so far only. On a path that keeps falling the
comparison can turn: smoothing holds the haircut below the spot's while the price still falls, and then
releases it on a recovered price.

On the same book each policy starts from calm coverage: a member posts the units that cover its requirement at
the policy's calm haircut (more under a buffer); under a cap the units beyond it were replaced by bills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpiralBook:
    """Per member: ``requirement`` USD, ``other`` post-haircut USD of collateral the shock does not touch,
    ``units`` of the asset posted (covering at the published haircut), ``buffer`` USD of bills it can still post,
    ``treasury`` units of the asset it holds outside the CCP (what it sells to meet a call once its bills are
    gone)."""

    requirement: np.ndarray
    other: np.ndarray
    units: np.ndarray
    buffer: np.ndarray
    treasury: np.ndarray


@dataclass(frozen=True)
class SpiralMarket:
    """``p0`` the calm price, ``path[r]`` the scenario's price in round r before impact, ``volume[r]`` USD traded
    that round's day, ``sigma`` daily volatility (fraction), ``base`` the published haircut, ``bill_haircut``."""

    p0: float
    path: np.ndarray
    volume: np.ndarray
    sigma: float
    base: float
    bill_haircut: float = 0.005


@dataclass(frozen=True)
class Policy:
    name: str
    buffer: float = 1.0  # calm haircut = base x buffer
    smoothing: float = 0.0  # weight of the previous round's haircut
    cap: float = 1.0  # the asset's largest share of what counts (1: no limit)
    procyclicality: float = 1.0  # k: how much of the discount the spot haircut takes


PROCYCLICAL = Policy("a: haircut follows the spot")
ANTI_PROCYCLICAL = Policy("b: 25% buffer + smoothing", buffer=1.25, smoothing=0.75)
DIVERSIFIED = Policy("c: b + 40% limit", buffer=1.25, smoothing=0.75, cap=0.40)


@dataclass(frozen=True)
class Rounds:
    """Per round r: ``price``, ``haircut``, ``calls`` (members called), ``called`` USD, ``sold`` USD and
    ``sold_units`` of the asset sold (members and the CCP), ``defaults`` (new), ``fund`` USD the fund meets."""

    price: np.ndarray
    haircut: np.ndarray
    calls: np.ndarray
    called: np.ndarray
    sold: np.ndarray
    sold_units: np.ndarray
    defaults: np.ndarray
    fund: np.ndarray

    @property
    def forced_sales(self) -> float:
        """USD of the asset sold, at each round's price."""
        return float(self.sold.sum())

    @property
    def forced_units(self) -> float:
        return float(self.sold_units.sum())

    def peak_drop(self, p0: float) -> float:
        return float(1.0 - self.price.min() / p0)


def simulate(book: SpiralBook, market: SpiralMarket, policy: Policy, *, threshold: float = 100.0) -> Rounds:
    """The spiral over ``len(market.path)`` rounds (the loop is over rounds only; members are vectors). A
    shortfall of ``threshold`` USD or less is not called (the workflow's call threshold). It stops early once a
    round calls no one after the path has reached its low."""
    base, hb = market.base, market.bill_haircut
    calm = min(base * policy.buffer, 0.99)
    units = book.units * (1.0 - base) / (1.0 - calm)  # what covers the same at the policy's calm haircut
    other = book.other.astype(float).copy()
    if policy.cap < 1.0:  # the allocation kept the asset within its share of what counts; bills for the rest
        counted = units * market.p0 * (1.0 - calm)
        allowed = np.minimum(counted, policy.cap / (1.0 - policy.cap) * other)
        kept = np.where(counted > 0, allowed / np.where(counted > 0, counted, 1.0), 1.0)
        other += (counted - allowed)
        units = units * kept
    bills = book.buffer.astype(float).copy()
    coins = book.treasury.astype(float).copy()
    posted = np.zeros_like(other)
    alive = np.ones(units.shape, dtype=bool)
    rounds = len(market.path)
    volume_units = market.volume / market.p0  # the day's volume in coins (at the calm price)
    out = {name: np.zeros(rounds) for name in ("price", "haircut", "called", "sold", "units", "fund")}
    calls, defaults = np.zeros(rounds, dtype=int), np.zeros(rounds, dtype=int)
    sold_so_far, haircut, low = 0.0, calm, int(np.argmin(market.path))
    last = rounds
    for r in range(rounds):
        price = market.path[r] * _impact(market.sigma, sold_so_far, volume_units[r])
        spot = min(base + policy.procyclicality * max(0.0, 1.0 - price / market.p0), 1.0)
        haircut = max(calm, policy.smoothing * haircut + (1.0 - policy.smoothing) * spot)
        counts = counted_value(units, price, haircut, other + posted, policy.cap)
        gap = np.where(alive, book.requirement - other - posted - counts, 0.0)
        called = gap > threshold
        pay = np.where(called, np.minimum(gap, bills * (1.0 - hb)), 0.0)  # bills first
        bills -= pay / (1.0 - hb)
        rest = np.where(called, gap - pay, 0.0)
        # then coins of its treasury sold, the cash posted as bills (worthless coins raise nothing)
        need = rest / (price * (1.0 - hb)) if price > 0 else np.where(rest > 0, np.inf, 0.0)
        sell = np.minimum(need, coins)
        coins -= sell
        posted += pay + sell * price * (1.0 - hb)
        failed = (rest > 0) & (need > sell)
        seized = np.where(failed, units, 0.0)  # a defaulter's pledged coins, sold by the CCP
        units = units - seized
        fund = np.where(failed, np.maximum(book.requirement - other - posted - seized * price * (1.0 - hb), 0.0),
                        0.0)
        alive &= ~failed
        sold_units = float((sell + seized).sum())
        out["price"][r], out["haircut"][r], out["called"][r] = price, haircut, gap[called].sum()
        out["sold"][r], out["units"][r], out["fund"][r] = sold_units * price, sold_units, fund.sum()
        calls[r], defaults[r] = int(called.sum()), int(failed.sum())
        sold_so_far += sold_units
        if r >= low and not called.any():
            last = r + 1
            break
    return Rounds(out["price"][:last], out["haircut"][:last], calls[:last], out["called"][:last],
                  out["sold"][:last], out["units"][:last], defaults[:last], out["fund"][:last])


def _impact(sigma: float, sold: float, volume: float) -> float:
    """The price factor of ``sold`` coins since the shock against the day's ``volume`` (square-root law)."""
    return max(1.0 - sigma * np.sqrt(sold / volume), 0.0) if sold > 0 and volume > 0 else 1.0


def counted_value(units: np.ndarray, price: float, haircut: float, rest: np.ndarray, cap: float) -> np.ndarray:
    """USD the asset counts for per member: its post-haircut value, within ``cap`` of what counts in all."""
    value = units * price * (1.0 - haircut)
    if cap >= 1.0:
        return value
    return np.minimum(value, cap / (1.0 - cap) * rest)
