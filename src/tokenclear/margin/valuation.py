"""Resolve instruments against the risk factors and revalue them under scenarios.

Strata's split: the catalogue says what a contract is; :func:`resolve` fixes its dates,
prices and sensitivities at the as-of date; :func:`revalue` is a stateless pricer over a
whole scenario matrix at once (no loop over scenarios or instruments).
All values are per contract in the margin currency; P&L > 0 is a gain to a long.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tokenclear.arrays import Float64Array1D, Float64Array2D
from tokenclear.errors import MarketDataError
from tokenclear.instruments.catalogue import Instrument
from tokenclear.instruments.pricing import option_value
from tokenclear.margin.factors import RiskFactors

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Resolved:
    """Instruments fixed at the as-of date: float64/bool arrays of length n_instruments."""

    names: list[str]
    underlying_index: np.ndarray  # int: column of the factor the instrument moves with
    fx_index: np.ndarray  # int: column of its FX factor, -1 when it is in the margin currency
    multiplier: Float64Array1D
    years: Float64Array1D  # to expiry; 0 for perpetuals
    beta: Float64Array1D  # Samuelson sensitivity of the month to the spot move
    forward: Float64Array1D  # futures price of the contract month, local currency
    is_option: np.ndarray
    is_call: np.ndarray
    is_normal: np.ndarray  # Bachelier (True) or Black-76
    strike: Float64Array1D
    volatility: Float64Array1D  # implied vol used for options (0 for futures)
    fx: Float64Array1D  # local currency -> margin currency at as-of (1 when same)
    absolute: np.ndarray  # the factor moves in price units (True) or relatively
    premium_paid: np.ndarray  # options whose premium is paid up front (net option value in IM)

    @property
    def size(self) -> int:
        return len(self.names)

    def value(self, forward: Float64Array2D, years: Float64Array1D, vol_factor: Float64Array2D | float,
              fx: Float64Array2D | Float64Array1D) -> Float64Array2D:
        """Contract value in the margin currency; ``forward`` is [instruments] or [instruments, scenarios]."""
        raw = np.array(forward, dtype=np.float64, copy=True)
        if self.is_option.any():
            rows = self.is_option
            shape = (-1,) + (1,) * (raw.ndim - 1)

            def column(values: np.ndarray) -> np.ndarray:
                return values[rows].reshape(shape)

            vol = column(self.volatility) * (vol_factor[rows] if np.ndim(vol_factor) else vol_factor)
            raw[rows] = option_value(column(self.is_normal), raw[rows], column(self.strike), column(years), vol,
                                     column(self.is_call))
        return raw * self.multiplier.reshape((-1,) + (1,) * (raw.ndim - 1)) * fx

    @property
    def value0(self) -> Float64Array1D:
        """Value per contract today (futures: price x multiplier; options: premium x multiplier)."""
        return self.value(self.forward, self.years, 1.0, self.fx)

    @property
    def option_value(self) -> Float64Array1D:
        """Value per contract of the premium-paid options today (0 for every other contract)."""
        return np.where(self.premium_paid, self.value0, 0.0)

    @property
    def notional(self) -> Float64Array1D:
        """|futures price| x multiplier in the margin currency, per contract."""
        return np.abs(self.forward) * self.multiplier * self.fx


def resolve(instruments: list[Instrument], factors: RiskFactors, *, margin_currency: str,
            default_volatility: Float64Array1D,
            published: dict[tuple[str, np.datetime64 | None], float] | None = None) -> Resolved:
    """Fix each instrument at the factors' as-of date.

    ``default_volatility`` per factor (annualised: a fraction for relative factors,
    price units for absolute ones) serves options with no implied vol in the catalogue.
    ``published``: the exchange's settlement price by (underlying, expiry), which replaces the
    term-structure price of that contract month (and the forward of its options).
    """
    as_of = factors.as_of
    spot = factors.spot
    n = len(instruments)
    underlying_index = np.empty(n, dtype=np.int64)
    fx_index = np.full(n, -1, dtype=np.int64)
    years = np.zeros(n)
    strike = np.zeros(n)
    volatility = np.zeros(n)
    is_option = np.zeros(n, dtype=bool)
    is_call = np.zeros(n, dtype=bool)
    multiplier = np.array([float(one.multiplier) for one in instruments])
    for i, one in enumerate(instruments):  # reference-data resolution, once per instrument
        underlying_index[i] = factors.index(one.underlying)
        if one.currency != margin_currency:
            fx_index[i] = factors.index(fx_series_name(one.currency, margin_currency))
        if one.expiry is not None:
            days = int((one.expiry - as_of).astype(np.int64))
            if days < 0:
                raise MarketDataError(f"instrument '{one.instrument}' expired on {one.expiry}, before as-of {as_of}")
            years[i] = days / DAYS_PER_YEAR
        if one.is_option:
            is_option[i] = True
            is_call[i] = one.option_type == "call"
            strike[i] = float(one.strike)  # type: ignore[arg-type]
            volatility[i] = one.volatility if one.volatility is not None else default_volatility[underlying_index[i]]
    specs = [factors.specs[j] for j in underlying_index]
    carry = np.array([spec.carry_rate for spec in specs])
    decay = np.array([spec.term_decay for spec in specs])
    absolute = np.array([spec.returns == "absolute" for spec in specs])
    is_normal = np.array([spec.option_model == "bachelier" for spec in specs])
    forward = forward_price(spot[underlying_index], carry=carry, years=years, absolute=absolute)
    if published:
        for i, one in enumerate(instruments):  # reference data, once per instrument
            if (one.underlying, one.expiry) in published:
                forward[i] = published[(one.underlying, one.expiry)]
    for bad, what in ((is_option & ~is_normal & (forward <= 0), "forward"),
                      (is_option & ~is_normal & ~(strike > 0), "strike")):
        if bad.any():
            name = instruments[int(np.argmax(bad))].instrument
            raise MarketDataError(f"option '{name}': Black-76 needs a positive {what}; use option_model=bachelier "
                                  "in underlyings.csv for a series that can go negative")
    fx = np.where(fx_index >= 0, spot[np.maximum(fx_index, 0)], 1.0)
    premium_paid = np.array([one.premium_paid for one in instruments], dtype=bool)
    return Resolved([one.instrument for one in instruments], underlying_index, fx_index, multiplier, years,
                    np.exp(-decay * years), forward, is_option, is_call, is_normal, strike, volatility, fx, absolute,
                    premium_paid)


def forward_price(spot: Float64Array1D, *, carry: Float64Array1D, years: Float64Array1D,
                  absolute: np.ndarray) -> Float64Array1D:
    """The term-structure rule of :mod:`tokenclear.instruments.underlyings`: the month's price today."""
    return np.where(absolute, spot + carry * years, spot * np.exp(carry * years))


def reprice(resolved: Resolved, factors: RiskFactors, spot: Float64Array1D) -> Resolved:
    """The same contracts (same time to expiry) priced on another date's factor closes ``spot``."""
    carry = np.array([factors.specs[j].carry_rate for j in resolved.underlying_index])
    forward = forward_price(spot[resolved.underlying_index], carry=carry, years=resolved.years,
                            absolute=resolved.absolute)
    fx = np.where(resolved.fx_index >= 0, spot[np.maximum(resolved.fx_index, 0)], 1.0)
    return replace(resolved, forward=forward, fx=fx)


def fx_series_name(currency: str, margin_currency: str) -> str:
    """Price series giving one unit of ``currency`` in ``margin_currency`` (e.g. ``jpy_usd``)."""
    return f"{currency.lower()}_{margin_currency.lower()}"


def revalue(resolved: Resolved, moves: Float64Array2D, *, horizon_days: float | Float64Array1D,
            vol_factor: Float64Array2D | None = None) -> Float64Array2D:
    """P&L per contract under each scenario: float64[instruments, scenarios], margin currency.

    ``moves[s, f]`` is factor f's move in scenario s (relative or absolute, per factor);
    ``vol_factor[s, f]`` multiplies the options' implied vol (default 1). Time advances by
    ``horizon_days`` calendar days for the options (one figure, or one per instrument).
    """
    own = moves[:, resolved.underlying_index].T  # [instruments, scenarios]
    scaled = resolved.beta[:, None] * own
    forward = np.where(resolved.absolute[:, None], resolved.forward[:, None] + scaled,
                       resolved.forward[:, None] * (1.0 + scaled))
    has_fx = resolved.fx_index >= 0
    fx = np.broadcast_to(resolved.fx[:, None], forward.shape)
    if has_fx.any():
        fx_moves = moves[:, np.maximum(resolved.fx_index, 0)].T
        fx = np.where(has_fx[:, None], resolved.fx[:, None] * (1.0 + fx_moves), fx)
    vol = 1.0 if vol_factor is None else vol_factor[:, resolved.underlying_index].T
    years = np.maximum(resolved.years - horizon_days / DAYS_PER_YEAR, 0.0)
    return resolved.value(forward, years, vol, fx) - resolved.value0[:, None]
