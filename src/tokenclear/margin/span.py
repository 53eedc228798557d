"""SPAN-style margin (CME): 16 risk-array scenarios per combined commodity, plus
intra-commodity (calendar) spread charge, spot-month charge, inter-commodity spread
credit and short option minimum.

Per combined commodity c (all instruments of one underlying)::

    scan_c   = max(0, max over the 16 scenarios of the commodity's loss)
    intra_c  = intra_multiple_c x scan_range_c x min(long exposure_c, short exposure_c)
    spot_c   = spot_multiple x scan_range_c x |exposure in contracts expiring within spot_month_days|
    credit_c = inter-commodity credit (pairs of commodities with opposite net exposure)
    som_c    = som_multiple x scan_range_c x underlying exposure of each short option
    total_c  = max(scan_c + intra_c + spot_c - credit_c, som_c)

Exposure is ``dV/dm`` (margin currency per unit factor move: notional for a relative
factor, per price unit for an absolute one), so charges are in the margin currency.
Scan ranges are derived from the history at a stated coverage (default 99% of
MPOR-day absolute moves); the extreme scenarios move 3x the range and count 35% of the
loss (CME's defaults). Parameters are published with :meth:`SpanParameters.to_json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tokenclear.arrays import Float64Array1D
from tokenclear.csvfiles import parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.margin.context import Context
from tokenclear.margin.grid import SPAN_PRICE, SPAN_VOL, SPAN_WEIGHT, Grid
from tokenclear.margin.result import MethodResult

INTRA_FLOOR = 0.10  # minimum calendar-spread charge as a multiple of the scan range (basis risk)
SPOT_MULTIPLE = 0.25
SOM_MULTIPLE = 0.10
SPOT_MONTH_DAYS = 30
CREDIT_CAP = 0.90


@dataclass(frozen=True)
class InterPair:
    first: str
    second: str
    ratio_first: float
    ratio_second: float
    credit_rate: float = 0.0


@dataclass(frozen=True)
class SpanParameters:
    """A published SPAN parameter set; arrays are per factor, in ``names`` order."""

    as_of: str
    coverage: float
    mpor_days: int
    names: list[str]
    returns: list[str]
    price_scan: list[float]
    vol_scan: list[float]
    intra_multiple: list[float]
    spot_multiple: float = SPOT_MULTIPLE
    som_multiple: float = SOM_MULTIPLE
    spot_month_days: int = SPOT_MONTH_DAYS
    extreme_multiple: float = float(SPAN_PRICE[-2])
    extreme_fraction: float = float(SPAN_WEIGHT[-1])
    pairs: list[InterPair] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def load_pairs(path: Path) -> list[InterPair]:
    """Inter-commodity pairs: CSV ``first,second,ratio_first,ratio_second`` (exposure ratios)."""
    rows = read_rows(path, ["first", "second", "ratio_first", "ratio_second"])
    pairs = []
    for line, row in rows:
        ratios = [parse_float(row[key], path=path, line=line, field=key) for key in ("ratio_first", "ratio_second")]
        if min(ratios) <= 0:
            raise InputError("ratios must be > 0", path=path, line=line, field="ratio_first")
        pairs.append(InterPair(row["first"], row["second"], *ratios))
    return pairs


def vol_scan_ranges(context: Context, rows: np.ndarray, coverage: float) -> Float64Array1D:
    """Coverage quantile of the relative change of EWMA volatility over the MPOR."""
    horizon = context.config.mpor_days
    vol = context.daily_vol
    change = np.abs(vol[horizon:] / np.maximum(vol[:-horizon], 1e-12) - 1.0)
    ends = context.daily_dates[horizon:]
    start = context.move_dates[rows].min()
    chosen = change[(ends >= start) & (ends <= context.as_of)]
    return np.quantile(chosen, coverage, axis=0) if chosen.size else np.full(vol.shape[1], 0.25)


def calibrate(context: Context, rows: np.ndarray, *, coverage: float = 0.99,
              pairs: list[InterPair] | None = None) -> SpanParameters:
    """Scan ranges, spread multiples and inter-commodity credit rates from the window ``rows``."""
    moves = context.moves[rows]
    price_scan = np.quantile(np.abs(moves), coverage, axis=0)
    vol_scan = vol_scan_ranges(context, rows, coverage)
    resolved = context.resolved
    n_factors = len(context.factors.names)
    beta_high = np.zeros(n_factors)
    beta_low = np.ones(n_factors)
    np.maximum.at(beta_high, resolved.underlying_index, resolved.beta)
    np.minimum.at(beta_low, resolved.underlying_index, resolved.beta)
    intra = np.maximum(beta_high - beta_low, INTRA_FLOOR)
    names = context.factors.names
    priced: list[InterPair] = []
    for pair in pairs or []:  # loop over configured pairs (a handful)
        if pair.first in names and pair.second in names:
            a, b = names.index(pair.first), names.index(pair.second)
            spread = np.quantile(np.abs(pair.ratio_first * moves[:, a] - pair.ratio_second * moves[:, b]), coverage)
            outright = pair.ratio_first * price_scan[a] + pair.ratio_second * price_scan[b]
            rate = float(np.clip(1.0 - spread / outright, 0.0, CREDIT_CAP)) if outright > 0 else 0.0
            priced.append(InterPair(pair.first, pair.second, pair.ratio_first, pair.ratio_second, round(rate, 4)))
    return SpanParameters(str(context.as_of), coverage, context.config.mpor_days, list(names),
                          [spec.returns for spec in context.factors.specs], price_scan.tolist(), vol_scan.tolist(),
                          intra.tolist(), pairs=priced)


@dataclass(frozen=True)
class Span:
    context: Context
    parameters: SpanParameters
    grid: Grid

    @classmethod
    def build(cls, context: Context, parameters: SpanParameters) -> Span:
        grid = Grid.build(context, np.array(parameters.price_scan), np.array(parameters.vol_scan),
                          price_multiple=SPAN_PRICE, vol_sign=SPAN_VOL, weight=SPAN_WEIGHT)
        return cls(context, parameters, grid)

    def margin(self, quantity: np.ndarray, scale: Float64Array1D | None = None) -> MethodResult:
        grid, params = self.grid, self.parameters
        quantity = np.asarray(quantity, dtype=np.float64)
        losses = grid.scenario_losses(quantity, scale)  # [accounts, commodities, 16]
        worst_k = np.argmax(losses, axis=2)
        scan = np.maximum(np.take_along_axis(losses, worst_k[:, :, None], axis=2)[:, :, 0], 0.0)
        scan_range = np.array(params.price_scan)[grid.commodities]
        exposure = quantity * grid.exposure[None, :]
        ones = grid.membership(np.ones(grid.member.size))
        long_side = np.maximum(exposure, 0.0) @ ones
        short_side = np.maximum(-exposure, 0.0) @ ones
        intra = np.array(params.intra_multiple)[grid.commodities] * scan_range * np.minimum(long_side, short_side)
        resolved = self.context.resolved
        in_spot = (resolved.years * 365.25 <= params.spot_month_days) & (resolved.years > 0)
        spot = params.spot_multiple * scan_range * (np.abs(exposure * in_spot[None, :]) @ ones)
        credit = self._credits(long_side - short_side, scan)
        underlying_exposure = resolved.beta * np.where(resolved.absolute, 1.0, np.abs(resolved.forward)) * \
            resolved.multiplier * resolved.fx
        short_options = np.maximum(-quantity, 0.0) * resolved.is_option[None, :]
        som = params.som_multiple * scan_range * ((short_options * underlying_exposure[None, :]) @ ones)
        commodity_total = np.maximum(scan + intra + spot - credit, som)
        risk = commodity_total.sum(axis=1)
        main = np.argmax(commodity_total, axis=1)
        labels, top, top_loss = grid.drivers(quantity, worst_k, main, vol_sign=SPAN_VOL, scale=scale)
        components = {"scan_risk": scan.sum(axis=1), "intra_spread_charge": intra.sum(axis=1),
                      "spot_month_charge": spot.sum(axis=1), "inter_spread_credit": credit.sum(axis=1),
                      "short_option_minimum": som.sum(axis=1)}
        return MethodResult(risk, labels, top, top_loss, components)

    def _credits(self, net: np.ndarray, scan: np.ndarray) -> np.ndarray:
        """Inter-commodity credits, pairs applied in file order, consuming net exposure."""
        names = [self.context.factors.names[j] for j in self.grid.commodities]
        credit = np.zeros_like(scan)
        net = net.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            per_unit = np.where(np.abs(net) > 0, scan / np.abs(net), 0.0)  # weighted price risk
        for pair in self.parameters.pairs:  # loop over pairs, vectorised over accounts
            if pair.first not in names or pair.second not in names or pair.credit_rate <= 0:
                continue
            a, b = names.index(pair.first), names.index(pair.second)
            opposite = net[:, a] * net[:, b] < 0
            spreads = np.where(opposite, np.minimum(np.abs(net[:, a]) / pair.ratio_first,
                                                    np.abs(net[:, b]) / pair.ratio_second), 0.0)
            credit[:, a] += pair.credit_rate * spreads * pair.ratio_first * per_unit[:, a]
            credit[:, b] += pair.credit_rate * spreads * pair.ratio_second * per_unit[:, b]
            net[:, a] -= np.sign(net[:, a]) * spreads * pair.ratio_first
            net[:, b] -= np.sign(net[:, b]) * spreads * pair.ratio_second
        return np.minimum(credit, scan)
