"""AS-VaR (JSCC's "alternative simulation" for commodities): scenarios from parameters
set in advance, published weekly and applied the following week.

Parameters per underlying, computed from data up to the publication date (the last
risk-calendar session on or before the Friday of the week before the as-of date, so a
set published on Friday is effective Monday to Friday of the next week):

* ``price_move``: the average of the worst 2.5% of absolute MPOR-day moves after
  EWMA volatility filtering (JSCC's BPL method since August 2024: expected shortfall at
  97.5% of EWMA-adjusted price fluctuation rates);
* ``vol_move``: the coverage quantile of the relative change of volatility over the MPOR;
* ``correlation`` of MPOR-day moves between underlyings.

Each underlying is scanned over 14 scenarios (price 0, +-1/3, +-2/3, +-1 of price_move,
vol up and down); its worst loss ``L_c`` keeps the sign ``d_c`` of the move that caused
it and the account's margin is ``sqrt(max(0, (L d)' R (L d)))`` with ``R`` the
correlation matrix: offsetting commodities diversify, same-direction ones add up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from tokenclear.arrays import Float64Array1D
from tokenclear.margin.context import Context
from tokenclear.margin.grid import ASVAR_PRICE, ASVAR_VOL, ASVAR_WEIGHT, Grid
from tokenclear.margin.historical import horizon_calendar_days
from tokenclear.margin.measures import tail_count
from tokenclear.margin.result import MethodResult
from tokenclear.margin.span import vol_scan_ranges
from tokenclear.market.calendars import sessions

ES_LEVEL = 0.975


def publication_date(as_of: np.datetime64, calendar: str) -> np.datetime64:
    """The last session of ``calendar`` on or before the Friday of the week before ``as_of``."""
    as_of = np.datetime64(as_of, "D")
    weekday = (as_of.astype(np.int64) - 4) % 7  # 0 = Monday (1970-01-05 was a Monday)
    previous_friday = as_of - np.timedelta64(int(weekday) + 3, "D")
    days = sessions(calendar)
    index = np.searchsorted(days, previous_friday, side="right") - 1
    return days[index]


@dataclass(frozen=True)
class AsvarParameters:
    published: str
    effective_from: str
    effective_to: str
    names: list[str]
    returns: list[str]
    price_move: list[float]
    vol_move: list[float]
    correlation: list[list[float]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def calibrate(context: Context, *, coverage: float = 0.99) -> AsvarParameters:
    published = publication_date(context.as_of, context.config.risk_calendar)
    own = (context.move_dates >= context.factors.grid[0]) & (context.move_dates <= published)
    rows = np.flatnonzero(own)[-context.config.lookback:]  # JSCC's AS-VaR: its own history, no stress period
    index = np.searchsorted(context.daily_dates, context.move_dates[rows])
    sigma = context.daily_vol[np.minimum(index, context.daily_vol.shape[0] - 1)]
    sigma_published = context.daily_vol[np.searchsorted(context.daily_dates, published, side="right") - 1]
    filtered = np.abs(context.moves[rows] * (sigma_published / np.maximum(sigma, 1e-12)))
    m = tail_count(rows.size, ES_LEVEL)
    price_move = -np.partition(-filtered, m - 1, axis=0)[:m].mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.atleast_2d(np.nan_to_num(np.corrcoef(context.moves[rows].T), nan=0.0))  # one factor: 1x1
    np.fill_diagonal(correlation, 1.0)
    monday = published + np.timedelta64(int(7 - ((published.astype(np.int64) - 4) % 7)), "D")
    return AsvarParameters(str(published), str(monday), str(monday + np.timedelta64(4, "D")),
                           list(context.factors.names), [spec.returns for spec in context.factors.specs],
                           price_move.tolist(), vol_scan_ranges(context, rows, coverage).tolist(),
                           np.atleast_2d(correlation).tolist())


@dataclass(frozen=True)
class Asvar:
    context: Context
    parameters: AsvarParameters
    grid: Grid

    @classmethod
    def build(cls, context: Context, parameters: AsvarParameters) -> Asvar:
        grid = Grid.build(context, np.array(parameters.price_move), np.array(parameters.vol_move),
                          price_multiple=ASVAR_PRICE, vol_sign=ASVAR_VOL, weight=ASVAR_WEIGHT,
                          horizon_days=horizon_calendar_days(context))
        return cls(context, parameters, grid)

    def margin(self, quantity: np.ndarray, scale: Float64Array1D | None = None) -> MethodResult:
        grid = self.grid
        quantity = np.asarray(quantity, dtype=np.float64)
        worst_k, worst_loss = grid.worst(quantity, scale)
        worst = np.maximum(worst_loss, 0.0)
        direction = np.where(ASVAR_PRICE[worst_k] < 0, -1.0, 1.0)
        signed = worst * direction
        correlation = np.array(self.parameters.correlation)[np.ix_(grid.commodities, grid.commodities)]
        risk = np.sqrt(np.maximum(np.einsum("ac,cd,ad->a", signed, correlation, signed), 0.0))
        main = np.argmax(worst, axis=1)
        labels, top, top_loss = grid.drivers(quantity, worst_k, main, vol_sign=ASVAR_VOL, scale=scale)
        undiversified = worst.sum(axis=1)
        return MethodResult(risk, labels, top, top_loss,
                            {"undiversified": undiversified, "diversification": undiversified - risk})
