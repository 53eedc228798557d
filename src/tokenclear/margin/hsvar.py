"""Historical-simulation margin over a scenario P&L matrix (HS-VaR and filtered HS).

One matrix product gives every account's P&L in every scenario; a partial sort gives
the risk measure. No Python loop over accounts or scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.margin.measures import loss_measure


@dataclass(frozen=True)
class ScenarioRisk:
    """Per-account risk from scenario P&L.

    ``risk``: the measure as a loss (may be < 0 when every scenario gains);
    ``worst``: index of each account's worst scenario; ``worst_pnl``: its P&L.
    """

    risk: Float64Array1D
    worst: np.ndarray
    worst_pnl: Float64Array1D


def portfolio_pnl(quantity: np.ndarray, pnl_per_contract: Float64Array2D) -> Float64Array2D:
    """float64[accounts, scenarios] = quantity[accounts, instruments] @ pnl[instruments, scenarios]."""
    return np.asarray(quantity, dtype=np.float64) @ pnl_per_contract


def scenario_risk(quantity: np.ndarray, pnl_per_contract: Float64Array2D, *, measure: str,
                  confidence: float) -> ScenarioRisk:
    pnl = portfolio_pnl(quantity, pnl_per_contract)
    worst = np.argmin(pnl, axis=1)
    worst_pnl = pnl[np.arange(pnl.shape[0]), worst]
    return ScenarioRisk(loss_measure(pnl, measure=measure, confidence=confidence), worst, worst_pnl)


def top_contributors(quantity: np.ndarray, pnl_per_contract: Float64Array2D, scenario: np.ndarray,
                     *, count: int = 3) -> tuple[np.ndarray, Float64Array2D]:
    """The ``count`` instruments losing most in each account's ``scenario``.

    Returns (instrument indices int[accounts, count], their losses float64[accounts, count],
    > 0 = loss), largest first.
    """
    losses = -np.asarray(quantity, dtype=np.float64) * pnl_per_contract[:, scenario].T
    return top_k(losses, count)


def top_k(losses: Float64Array2D, count: int, *, overwrite: bool = False) -> tuple[np.ndarray, Float64Array2D]:
    """Column indices and values of the ``count`` largest entries of each row, largest first (the first column
    on a tie); ``overwrite``: ``losses`` is the caller's scratch and may be changed."""
    count = min(count, losses.shape[1])
    if count == 0:
        return np.zeros((losses.shape[0], 0), dtype=np.int64), np.zeros((losses.shape[0], 0))
    if count > 4:
        top = np.argpartition(-losses, count - 1, axis=1)[:, :count]
        top_losses = np.take_along_axis(losses, top, axis=1)
        order = np.argsort(-top_losses, axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_losses, order, axis=1)
    work = np.ascontiguousarray(losses, dtype=np.float64) if overwrite else np.array(losses, dtype=np.float64)
    # a few passes of argmax beat a partition of every row
    rows = np.arange(work.shape[0])
    top = np.empty((work.shape[0], count), dtype=np.int64)
    top_losses = np.empty((work.shape[0], count))
    for rank in range(count):  # a loop over the ranks (three), vectorised over accounts
        top[:, rank] = np.argmax(work, axis=1)
        top_losses[:, rank] = work[rows, top[:, rank]]
        work[rows, top[:, rank]] = -np.inf
    return top, top_losses
