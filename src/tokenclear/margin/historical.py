"""HS-VaR (JSCC / Eurex style) and filtered HS-VaR (Prisma style) as margin methods.

HS-VaR: the window's overlapping MPOR-day factor moves (relative; absolute for series
that can go negative) applied to today's prices, full revaluation of every contract,
one matrix product for all accounts, then the risk measure of :mod:`measures`.
Long and short positions get different margins because the P&L distribution is not
symmetric.

Filtered HS: each move is rescaled by ``sigma(as-of) / sigma(t)``, the ratio of the
current to the then-current EWMA volatility of daily moves (lambda = ``ewma_lambda``,
default 0.94, RiskMetrics), so calm history is scaled up in a volatile market and
vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.margin.context import Context, scale_rows
from tokenclear.margin.hsvar import scenario_risk, top_contributors
from tokenclear.margin.result import MethodResult
from tokenclear.margin.valuation import revalue
from tokenclear.market.calendars import periods_per_year


def session_calendar_days(context: Context, sessions: Float64Array1D | int) -> Float64Array1D:
    """``sessions`` of each instrument's own calendar in calendar days, for option time decay."""
    per_year = np.array([periods_per_year(context.factors.specs[j].calendar)
                         for j in context.resolved.underlying_index])
    return np.asarray(sessions, dtype=np.float64) * 365.25 / per_year


def horizon_calendar_days(context: Context) -> Float64Array1D:
    """The MPOR in calendar days per instrument (its own calendar's sessions)."""
    return session_calendar_days(context, context.config.mpor_days)


@dataclass(frozen=True)
class Historical:
    """Scenario P&L per contract ``pnl[instruments, scenarios]`` and its dates."""

    context: Context
    pnl: Float64Array2D
    dates: np.ndarray

    @classmethod
    def build(cls, context: Context, rows: np.ndarray, *, filtered: bool) -> Historical:
        moves = context.moves[rows]
        if filtered:
            moves = moves * context.vol_ratio()[rows]
        pnl = revalue(context.resolved, moves, horizon_days=horizon_calendar_days(context))
        return cls(context, pnl, context.move_dates[rows])

    def margin(self, quantity: np.ndarray, scale: Float64Array1D | None = None) -> MethodResult:
        config = self.context.config
        pnl = scale_rows(self.pnl, scale)
        confidence = config.es_confidence if config.measure == "es" else config.confidence
        risk = scenario_risk(quantity, pnl, measure=config.measure, confidence=confidence)
        top, loss = top_contributors(quantity, pnl, risk.worst)
        return MethodResult(risk.risk, self.dates[risk.worst].astype(str), top, loss)
