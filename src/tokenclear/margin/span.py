"""SPAN-style margin (CME): 16 risk-array scenarios per combined commodity, plus
intra-commodity (calendar) spread charge, spot-month charge, inter-commodity spread
credit and short option minimum.

Per combined commodity c (all instruments of one underlying)::

    scan_c   = max(0, max over the 16 scenarios of the commodity's loss)
    intra_c  = intra_multiple_c x scan_range_c x min(long months_c, short months_c)
    spot_c   = spot_multiple x scan_range_c x |exposure in contracts expiring within spot_month_days|
    credit_c = inter-commodity credit (pairs of commodities with opposite net exposure)
    som_c    = som_multiple x scan_range_c x max(short calls_c, short puts_c)
    total_c  = max(scan_c + intra_c + spot_c - credit_c, som_c)

Exposure is ``dV/dm`` (margin currency per unit factor move: notional for a relative
factor, per price unit for an absolute one), so charges are in the margin currency.
Intra-commodity spreads are formed between *different* contract months only, as CME's
tiers do: each month's exposures (futures and the options on it) net first, then
``long months_c`` is the sum of the months with net long exposure and ``short months_c``
of those net short; a covered call or a strangle in one month is no spread. The short
option minimum counts the larger of the short calls and the short puts (CME since
1999), each by the underlying exposure of one contract.
Scan ranges are derived from the history at a stated coverage (default 99% of
MPOR-day absolute moves). The extreme scenarios (15, 16), the share of their loss
counted and the look-ahead time are product parameters (``data/underlyings.csv``;
default 2x the range at 35% and one session, as in CME's S&P 500 risk array).
Parameters are published one row per product (``tokenclear params span``) and read back with
``tokenclear margin --method span --params FILE`` (:func:`tokenclear.margin_files.load_span_parameters`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.errors import ConfigurationError
from tokenclear.margin.context import Context
from tokenclear.margin.grid import SCAN_THIRDS, SPAN_VOL, Grid, Segments
from tokenclear.margin.historical import session_calendar_days
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
    extreme_multiple: list[float]  # scenarios 15/16 move this multiple of the price scan range
    extreme_fraction: list[float]  # and count this share of their loss
    lookahead_days: list[int]  # option decay in the risk arrays, in the product's own sessions
    spot_multiple: float = SPOT_MULTIPLE
    som_multiple: float = SOM_MULTIPLE
    spot_month_days: int = SPOT_MONTH_DAYS
    pairs: list[InterPair] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def rows(self) -> list[dict[str, object]]:
        """One row per product (the published form: ``product`` and its parameters)."""
        return [{"product": name, "returns": self.returns[j], "price_scan": self.price_scan[j],
                 "vol_scan": self.vol_scan[j], "intra_multiple": self.intra_multiple[j],
                 "extreme_multiple": self.extreme_multiple[j], "extreme_fraction": self.extreme_fraction[j],
                 "lookahead_days": self.lookahead_days[j]} for j, name in enumerate(self.names)]

    def header(self) -> dict[str, object]:
        """The parameters common to every product, and the inter-commodity pairs."""
        return {"as_of": self.as_of, "coverage": self.coverage, "mpor_days": self.mpor_days,
                "spot_multiple": self.spot_multiple, "som_multiple": self.som_multiple,
                "spot_month_days": self.spot_month_days, "pairs": [asdict(pair) for pair in self.pairs]}

    def for_factors(self, names: list[str]) -> SpanParameters:
        """The parameters of ``names`` in that order (a published file lists more products than a book
        holds); a product the file does not list is a :class:`ConfigurationError` naming it."""
        index = {name: j for j, name in enumerate(self.names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise ConfigurationError(f"the SPAN parameters have no product {', '.join(missing)}")
        pick = [index[name] for name in names]
        return replace(self, names=list(names), returns=[self.returns[j] for j in pick],
                       price_scan=[self.price_scan[j] for j in pick], vol_scan=[self.vol_scan[j] for j in pick],
                       intra_multiple=[self.intra_multiple[j] for j in pick],
                       extreme_multiple=[self.extreme_multiple[j] for j in pick],
                       extreme_fraction=[self.extreme_fraction[j] for j in pick],
                       lookahead_days=[self.lookahead_days[j] for j in pick])


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
    specs = context.factors.specs
    return SpanParameters(str(context.as_of), coverage, context.config.mpor_days, list(names),
                          [spec.returns for spec in specs], price_scan.tolist(), vol_scan.tolist(), intra.tolist(),
                          [spec.span_extreme_multiple for spec in specs],
                          [spec.span_extreme_fraction for spec in specs],
                          [spec.span_lookahead_days for spec in specs], pairs=priced)


@dataclass(frozen=True)
class Span:
    context: Context
    parameters: SpanParameters
    grid: Grid

    months: np.ndarray  # int[instruments]: the instrument's (commodity, contract month) tier
    calls: np.ndarray  # bool[instruments]
    puts: np.ndarray
    tiers: Segments  # the instruments of each tier
    tier_commodity: Segments  # the tiers of each commodity
    spot_columns: np.ndarray  # int[]: the instruments in their spot month
    spot: Segments  # those instruments by commodity
    option_columns: np.ndarray  # int[]: the options
    options: Segments  # those by commodity
    net_weights: Float64Array2D  # [instruments, commodities]: each contract's delta exposure in its commodity

    @classmethod
    def build(cls, context: Context, parameters: SpanParameters) -> Span:
        multiple = np.array(parameters.extreme_multiple)
        fraction = np.array(parameters.extreme_fraction)
        thirds = np.broadcast_to(np.array(SCAN_THIRDS)[:, None], (len(SCAN_THIRDS), multiple.size))
        price_multiple = np.vstack([thirds, multiple[None, :], -multiple[None, :]])
        weight = np.vstack([np.ones_like(thirds), fraction[None, :], fraction[None, :]])
        resolved = context.resolved
        lookahead = session_calendar_days(context, np.array(parameters.lookahead_days)[resolved.underlying_index])
        grid = Grid.build(context, np.array(parameters.price_scan), np.array(parameters.vol_scan),
                          price_multiple=price_multiple, vol_sign=SPAN_VOL, weight=weight, horizon_days=lookahead)
        expiry = np.round(resolved.years * 365.25).astype(np.int64)  # perpetuals (0 years) form a tier of their own
        keys, months = np.unique(np.column_stack([grid.member, expiry]), axis=0, return_inverse=True)
        months = months.ravel()
        in_spot = (resolved.years * 365.25 <= parameters.spot_month_days) & (resolved.years > 0)
        spot_columns = np.flatnonzero(in_spot)
        option_columns = np.flatnonzero(resolved.is_option)
        return cls(context, parameters, grid, months, resolved.is_option & resolved.is_call,
                   resolved.is_option & ~resolved.is_call, Segments.of(months, keys.shape[0]),
                   Segments.of(keys[:, 0], grid.commodities.size), spot_columns,
                   Segments.of(grid.member[spot_columns], grid.commodities.size), option_columns,
                   Segments.of(grid.member[option_columns], grid.commodities.size),
                   grid.segments.indicator * grid.exposure[:, None])

    def margin(self, quantity: np.ndarray, scale: Float64Array1D | None = None) -> MethodResult:
        grid, params = self.grid, self.parameters
        quantity = np.asarray(quantity, dtype=np.float64)
        worst_k, worst_loss = grid.worst(quantity, scale)  # [accounts, commodities]: of the 16 scenarios
        scan = np.maximum(worst_loss, 0.0)
        scan_range = np.array(params.price_scan)[grid.commodities]
        net = quantity @ self.net_weights  # [accounts, commodities]: net delta exposure
        by_month = self.tiers.sum(quantity * grid.exposure[None, :])  # [accounts, tiers]: each month's net exposure
        long_side = self.tier_commodity.sum(np.maximum(by_month, 0.0, out=by_month))
        short_side = long_side - net  # a commodity's short months: its long months less its net
        intra = np.array(params.intra_multiple)[grid.commodities] * scan_range * np.minimum(long_side, short_side)
        spot = params.spot_multiple * scan_range * self.spot.sum(
            np.abs(quantity[:, self.spot_columns] * grid.exposure[self.spot_columns][None, :]))
        credit = self._credits(net, scan)
        resolved = self.context.resolved
        som = np.zeros_like(scan)
        if self.option_columns.size:
            columns = self.option_columns
            underlying_exposure = (resolved.beta * np.where(resolved.absolute, 1.0, np.abs(resolved.forward))
                                   * resolved.multiplier * resolved.fx)[columns]
            short = np.maximum(-quantity[:, columns], 0.0) * underlying_exposure[None, :]
            short_calls = self.options.sum(short * self.calls[columns][None, :])
            short_puts = self.options.sum(short * self.puts[columns][None, :])
            som = params.som_multiple * scan_range * np.maximum(short_calls, short_puts)
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
