"""The sealed-bid auction of a defaulter's house book to the surviving members, one lot per liquidation group
(pure numeric core; a lot is the defaulter's positions on one risk factor).

Bidders are modelled (the CCP does not see real bids in a replay): a survivor bids only for a lot within its
capacity (``|E_lot| <= capacity``, USD of delta-equivalent exposure) and asks to be paid for the risk the lot adds
to its own book, ``bid = (1 - appetite) x risk_lot x added``, where ``risk_lot = z x sigma x sqrt(mpor) x |E_lot|``
(a parametric 99% VaR of the lot over the holding period, USD), ``appetite`` in [0, 1] the bidder's risk
appetite and ``added = (|E_own + E_lot| - |E_own|) / |E_lot|`` in [-1, 1] how much of the lot's exposure adds to
the bidder's own on that factor, at least ``MIN_ADDED`` (a bidder short the factor takes a long lot as a hedge
and asks less, but never nothing: a tenth of the risk premium stands for the spread and the work of taking a
book over; an assumption). First price, sealed: the lowest bid wins (ties: the larger capacity, then the
member id); a lot whose best bid costs more than closing it out in the market (the reserve) is not awarded and is
sold into the market instead. Every bid is kept, the losing ones too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z_99 = 2.326  # the one-sided 99% normal quantile
MPOR_DAYS = 2.0  # the bidder's holding period for the lot
MIN_ADDED = 0.1  # the least share of the lot's risk premium a bidder asks (a hedge included)


@dataclass(frozen=True)
class Bid:
    member: str
    price: float  # USD the CCP pays the bidder to take the lot
    won: bool


@dataclass(frozen=True)
class Lot:
    factor: str
    exposure: float  # USD, delta-equivalent (> 0 long)
    reserve: float  # USD, the market close-out cost of the lot
    bids: list[Bid]
    winner: str | None  # None: not awarded, sold into the market
    price: float  # what closing the lot out costs: the winning bid, or the reserve


def bids(exposure: np.ndarray, sigma: np.ndarray, own: np.ndarray, capacity: np.ndarray,
         appetite: np.ndarray) -> np.ndarray:
    """float64[bidders, lots]: each bidder's price for each lot (nan: no bid). ``exposure[lots]`` the lots' USD
    exposure, ``sigma[lots]`` their factors' daily volatility, ``own[bidders, lots]`` each bidder's exposure to
    the lot's factor, ``capacity[bidders]`` USD, ``appetite[bidders]``."""
    size = np.abs(exposure)
    risk = Z_99 * sigma * np.sqrt(MPOR_DAYS) * size  # [lots]
    with np.errstate(divide="ignore", invalid="ignore"):
        added = np.where(size > 0, (np.abs(own + exposure) - np.abs(own)) / size, 0.0)
    price = (1.0 - appetite)[:, None] * risk[None, :] * np.clip(added, MIN_ADDED, 1.0)
    return np.where(size[None, :] <= capacity[:, None], price, np.nan)


def award(factors: list[str], exposure: np.ndarray, reserve: np.ndarray, prices: np.ndarray, members: list[str],
          capacity: np.ndarray) -> list[Lot]:
    """The lots with their bids and winner (the loop is over a book's few lots)."""
    lots = []
    for j, factor in enumerate(factors):
        if exposure[j] == 0:
            continue
        column = prices[:, j]
        offered = np.flatnonzero(np.isfinite(column))
        best = None
        if offered.size:
            order = sorted(offered, key=lambda b: (column[b], -capacity[b], members[b]))
            best = order[0] if column[order[0]] <= reserve[j] else None
        lot_bids = [Bid(members[b], float(column[b]), bool(b == best)) for b in offered]
        lots.append(Lot(factor, float(exposure[j]), float(reserve[j]), lot_bids,
                        None if best is None else members[best],
                        float(reserve[j]) if best is None else float(column[best])))
    return lots
