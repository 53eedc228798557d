"""SPAN margin from an exchange's published risk arrays (CME SPAN risk-parameter file), vectorised over accounts.

The pure core of ``tokenclear margin --method span --params FILE.pa2``: the file is parsed by
:mod:`tokenclear.span_pa2` into a :class:`RiskFile`; this module reads no file. Per combined commodity ``c`` of
an account (CME's order of steps):

* scan risk: each scan tier's 16 scenario losses ``sum(position x risk array)``, its largest (never < 0); the
  commodity's scan risk is the sum over its scan tiers (one tier when the file defines none);
* intra-commodity spread charge: net delta per intra tier ``sum(position x composite delta x delta scaling
  factor)``; the tier-to-tier spreads are formed in priority order, each ``min over legs |delta| / ratio`` spreads
  where the legs' signs follow the spread's sides (A legs one sign, B legs the other, either way round), charged
  at the spread's rate per spread, the deltas consumed;
* delivery (spot) charge: per delivery month, the rate per delta consumed by spreads and the rate per delta left
  in outrights (table-driven method);
* inter-commodity spread credit: delta-based spreads in priority order between commodities with the sides'
  signs, ``spreads x ratio x weighted price risk x credit rate`` per leg, where the weighted price risk is
  ``(scan risk - time risk) / |net delta|`` and time risk the average of scenarios 1 and 2;
* short option minimum: the rate times the larger of short calls and short puts (method 1) or their sum;
* risk = ``max(scan + intra + spot - credit, short option minimum)``; the requirement is risk less the net
  option value (premium-style options at settlement x contract value factor, long > 0), never < 0.

Amounts are in the file's performance-bond currency per contract position, as float64; the caller converts to
Decimal once (:mod:`tokenclear.money`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

SCENARIOS = 16


@dataclass(frozen=True)
class Contract:
    """One risk-array contract of the file (a future, or an option series and strike)."""

    exchange: str
    product: str
    kind: str  # FUT, PHY, OOF, OOP, OOC, ...
    put_call: str | None  # "P" / "C" for an option
    month: str  # futures contract month CCYYMM (an option's underlying future's month)
    expiry: str  # the contract's own month: futures month, or the option's contract month
    strike: Decimal | None
    commodity: str  # the combined commodity it is margined in
    arrays: tuple[float, ...]  # 16 losses of one long contract, performance-bond currency (> 0 loss)
    delta: float  # composite delta x delta scaling factor
    value: float  # settlement x contract value factor of a premium-style option (0 otherwise)
    line: int  # the 81 record's line in the file

    @property
    def name(self) -> str:
        text = f"{self.exchange} {self.product} {self.expiry}"
        return text if self.put_call is None else f"{text} {self.put_call} {self.strike}"


@dataclass(frozen=True)
class Tier:
    number: int
    start: str  # CCYYMM
    end: str


@dataclass(frozen=True)
class IntraSpread:
    priority: int
    rate: float  # currency per spread
    legs: tuple[tuple[int, float, str], ...]  # (tier number, delta per spread, side "A"/"B")


@dataclass(frozen=True)
class DeliveryMonth:
    month: str
    rate_spread: float  # currency per delta consumed by spreads
    rate_outright: float  # currency per delta left in outrights


@dataclass(frozen=True)
class Commodity:
    code: str
    exchange: str
    currency: str
    premium_style: bool
    intra_tiers: list[Tier] = field(default_factory=list)
    intra_spreads: list[IntraSpread] = field(default_factory=list)
    scan_tiers: list[Tier] = field(default_factory=list)
    delivery: list[DeliveryMonth] = field(default_factory=list)
    som_rate: float = 0.0
    som_greater: bool = True  # method 1: the greater of short calls and short puts; else their sum


@dataclass(frozen=True)
class InterSpread:
    priority: int
    rate: float  # credit as a fraction of the legs' weighted price risk
    legs: tuple[tuple[str, float, str], ...]  # (combined commodity, delta per spread, side)
    line: int


@dataclass(frozen=True)
class RiskFile:
    """A parsed SPAN risk-parameter file (what the margin needs of it)."""

    exchange_complex: str
    business_date: str  # ISO date
    settlement: bool  # S (end of day) or I (intraday)
    file_format: str
    contracts: list[Contract]
    commodities: dict[str, Commodity]
    inter: list[InterSpread]
    notes: list[str]  # record types present and not read, inter spreads not applied, ...


def _tier_of(months: list[str], tiers: list[Tier]) -> np.ndarray:
    """Index into ``tiers`` of each month (-1: in none)."""
    out = np.full(len(months), -1, dtype=np.int64)
    for t, tier in enumerate(tiers):  # loop over a commodity's tiers (a handful)
        inside = np.array([tier.start <= m <= tier.end for m in months], dtype=bool)
        out[inside & (out < 0)] = t
    return out


@dataclass(frozen=True)
class SpanFileMargin:
    """The per-account components of SPAN from published risk arrays, float64[accounts] each."""

    risk: np.ndarray
    net_option_value: np.ndarray
    components: dict[str, np.ndarray]
    worst: list[str]  # per account: the commodity and scenario of the largest scan loss
    contributors: list[list[tuple[str, float]]]  # per account: largest scenario-loss contracts


def margin(file: RiskFile, held: list[Contract], quantity: np.ndarray) -> SpanFileMargin:
    """SPAN of ``quantity[account, j]`` contracts of ``held[j]``."""
    quantity = np.asarray(quantity, dtype=np.float64)
    n_accounts = quantity.shape[0]
    arrays = np.array([c.arrays for c in held], dtype=np.float64).reshape(len(held), SCENARIOS)
    delta = np.array([c.delta for c in held], dtype=np.float64)
    codes = sorted({c.commodity for c in held})
    scan = np.zeros((n_accounts, len(codes)))
    time = np.zeros((n_accounts, len(codes)))
    intra = np.zeros((n_accounts, len(codes)))
    spot = np.zeros((n_accounts, len(codes)))
    som = np.zeros((n_accounts, len(codes)))
    net_delta = np.zeros((n_accounts, len(codes)))
    worst_loss = np.full(n_accounts, -np.inf)
    worst_commodity = np.zeros(n_accounts, dtype=np.int64)
    worst_scenario = np.zeros(n_accounts, dtype=np.int64)
    for c, code in enumerate(codes):  # loop over the book's combined commodities, vectorised over accounts
        commodity = file.commodities[code]
        members = np.array([j for j, one in enumerate(held) if one.commodity == code])
        q = quantity[:, members]
        months = [held[j].month for j in members]
        scan_tier = _tier_of(months, commodity.scan_tiers) if commodity.scan_tiers else np.zeros(members.size, int)
        scan_tier = np.where(scan_tier < 0, 0, scan_tier)  # months beyond the tiers scan with the first (checked)
        for t in np.unique(scan_tier):
            inside = scan_tier == t
            losses = q[:, inside] @ arrays[members[inside]]  # [accounts, 16]
            top = losses.max(axis=1)
            scan[:, c] += np.maximum(top, 0.0)
            time[:, c] += (losses[:, 0] + losses[:, 1]) / 2.0
            better = top > worst_loss
            worst_commodity = np.where(better, c, worst_commodity)
            worst_scenario = np.where(better, losses.argmax(axis=1), worst_scenario)
            worst_loss = np.where(better, top, worst_loss)
        d = q * delta[members][None, :]
        net_delta[:, c] = d.sum(axis=1)
        intra[:, c], consumed, remaining = _intra(commodity, months, d)
        spot[:, c] = _delivery(commodity, months, d, consumed, remaining)
        options = np.array([held[j].put_call for j in members], dtype=object)
        short = np.maximum(-q, 0.0)
        calls = short[:, options == "C"].sum(axis=1)
        puts = short[:, options == "P"].sum(axis=1)
        som[:, c] = commodity.som_rate * (np.maximum(calls, puts) if commodity.som_greater else calls + puts)
    credit = _inter(file.inter, codes, scan, time, net_delta)
    total = np.maximum(scan + intra + spot - credit, som)
    values = np.array([c.value for c in held], dtype=np.float64)
    nov = quantity @ values
    loss = np.maximum(quantity * arrays.max(axis=1)[None, :], quantity * arrays.min(axis=1)[None, :])
    worst = [f"{codes[c]} scenario {k + 1}" for c, k in zip(worst_commodity.tolist(), worst_scenario.tolist(),
                                                              strict=True)]
    top = np.argsort(-loss, axis=1)[:, :3]  # each account's three largest single-contract losses
    top_loss = np.take_along_axis(loss, top, axis=1)
    contributors = [[(held[j].name, value) for j, value in zip(row, values, strict=True) if value > 0]
                    for row, values in zip(top.tolist(), top_loss.tolist(), strict=True)]
    return SpanFileMargin(total.sum(axis=1), nov, {
        "scan_risk": scan.sum(axis=1), "intra_spread_charge": intra.sum(axis=1),
        "spot_month_charge": spot.sum(axis=1), "inter_spread_credit": credit.sum(axis=1),
        "short_option_minimum": som.sum(axis=1)}, worst, contributors)


def _intra(commodity: Commodity, months: list[str], d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Charge per account, and per intra tier the delta consumed by spreads and the delta left."""
    n_accounts = d.shape[0]
    if not commodity.intra_tiers:
        return np.zeros(n_accounts), np.zeros((n_accounts, 0)), np.zeros((n_accounts, 0))
    tier = _tier_of(months, commodity.intra_tiers)
    by_tier = np.zeros((n_accounts, len(commodity.intra_tiers)))
    np.add.at(by_tier.T, tier, d.T)
    original = np.abs(by_tier)
    index = {t.number: i for i, t in enumerate(commodity.intra_tiers)}
    charge = np.zeros(n_accounts)
    for spread in sorted(commodity.intra_spreads, key=lambda s: s.priority):  # loop over the file's spreads
        legs = [(index[number], ratio, 1.0 if side == "A" else -1.0) for number, ratio, side in spread.legs]
        spreads = np.zeros(n_accounts)
        orientation = np.zeros(n_accounts)
        for way in (1.0, -1.0):
            count = np.full(n_accounts, np.inf)
            for t, ratio, side in legs:
                signed = by_tier[:, t] * way * side  # > 0 where this leg sits on its side
                count = np.minimum(count, np.where(signed > 0, signed / ratio, 0.0))
            take = (count > spreads)
            orientation = np.where(take, way, orientation)
            spreads = np.where(take, count, spreads)
        for t, ratio, side in legs:
            by_tier[:, t] -= orientation * side * spreads * ratio
        charge += spreads * spread.rate
    return charge, original - np.abs(by_tier), np.abs(by_tier)


def _delivery(commodity: Commodity, months: list[str], d: np.ndarray, consumed: np.ndarray,
              remaining: np.ndarray) -> np.ndarray:
    """Delivery-month charge per account; a delivery month is its own intra tier (checked on load)."""
    charge = np.zeros(d.shape[0])
    for month in commodity.delivery:  # one or two delivery months
        tiers = [i for i, t in enumerate(commodity.intra_tiers) if t.start == month.month == t.end]
        if tiers:
            charge += month.rate_spread * consumed[:, tiers[0]] + month.rate_outright * remaining[:, tiers[0]]
        else:  # no intra tiers: no spreads, every delta of the month is an outright
            inside = np.array([m == month.month for m in months], dtype=bool)
            charge += month.rate_outright * np.abs(d[:, inside].sum(axis=1))
    return charge


def _inter(spreads: list[InterSpread], codes: list[str], scan: np.ndarray, time: np.ndarray,
           net_delta: np.ndarray) -> np.ndarray:
    """Inter-commodity credits per [account, commodity], never more than the commodity's price risk."""
    price_risk = np.maximum(scan - time, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = np.where(np.abs(net_delta) > 0, price_risk / np.abs(net_delta), 0.0)
    left = net_delta.copy()
    credit = np.zeros_like(scan)
    index = {code: c for c, code in enumerate(codes)}
    for spread in sorted(spreads, key=lambda s: s.priority):  # loop over the file's spreads, vectorised
        if not all(code in index for code, _, _ in spread.legs):
            continue
        legs = [(index[code], ratio, 1.0 if side == "A" else -1.0) for code, ratio, side in spread.legs]
        count = np.zeros(scan.shape[0])
        orientation = np.zeros(scan.shape[0])
        for way in (1.0, -1.0):
            n = np.full(scan.shape[0], np.inf)
            for c, ratio, side in legs:
                signed = left[:, c] * way * side
                n = np.minimum(n, np.where(signed > 0, signed / ratio, 0.0))
            take = n > count
            orientation = np.where(take, way, orientation)
            count = np.where(take, n, count)
        for c, ratio, side in legs:
            left[:, c] -= orientation * side * count * ratio
            credit[:, c] += count * ratio * weighted[:, c] * spread.rate
    return np.minimum(credit, price_risk)
