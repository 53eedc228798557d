"""Everything a margin run reads, resolved once: factors, instruments, scenario moves.

Pure: built from loaded market data, reference data and the book. The scenario windows
(base lookback, 10-year APC floor, stressed period) are row selections of one matrix of
overlapping MPOR-day moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np

from tokenclear.arrays import DateArray1D, Float64Array1D, Float64Array2D
from tokenclear.book.positions import Book
from tokenclear.bounds import MAX_MPOR_DAYS, MIN_CONFIDENCE
from tokenclear.errors import InputError, MarketDataError
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.instruments.underlyings import Underlying, underlying_spec
from tokenclear.margin.factors import (
    RiskFactors,
    build_factors,
    daily_volatility,
    horizon_returns,
    stress_moves,
    window_rows,
)
from tokenclear.margin.valuation import Resolved, fx_series_name, resolve
from tokenclear.market.calendars import periods_per_year, sessions
from tokenclear.market.history import MarketData

APC_LOOKBACK_10Y = 2520  # observations in ten years of business days


@dataclass(frozen=True)
class RunConfig:
    """Parameters of one margin run (units in the names; fractions in (0, 1))."""

    confidence: float = 0.99
    mpor_days: int = 2
    lookback: int = 1250
    measure: str = "quantile"
    es_confidence: float = 0.975
    ewma_lambda: float = 0.94
    stress_period: tuple[np.datetime64, np.datetime64] | None = None
    stress_window: int = 250
    min_scenarios: int = 60  # below this a run is refused
    required_history: int = 250  # EMIR RTS 153/2013 Art. 25(1): at least 12 months; below, an add-on (Art. 25(3))
    max_stale_days: int = 5
    margin_currency: str = "USD"
    risk_calendar: str = "XNYS"
    cash_calendar: str = "XNYS"

    def __post_init__(self) -> None:
        """Refuse a value no margin can be computed from, naming the field."""
        checks = (("confidence", MIN_CONFIDENCE <= self.confidence < 1.0, f"in [{MIN_CONFIDENCE}, 1)"),
                  ("es_confidence", MIN_CONFIDENCE <= self.es_confidence < 1.0, f"in [{MIN_CONFIDENCE}, 1)"),
                  ("mpor_days", 1 <= self.mpor_days <= MAX_MPOR_DAYS, f"in [1, {MAX_MPOR_DAYS}] business days"),
                  ("ewma_lambda", 0.0 < self.ewma_lambda < 1.0, "in (0, 1)"),
                  ("min_scenarios", self.min_scenarios >= 1, ">= 1"),
                  ("lookback", self.lookback >= self.min_scenarios, f">= min_scenarios ({self.min_scenarios})"),
                  ("stress_window", self.stress_window >= 1, ">= 1"),
                  ("required_history", self.required_history >= 1, ">= 1"),
                  ("max_stale_days", self.max_stale_days >= 0, ">= 0"))
        for name, ok, rule in checks:
            if not ok:
                raise InputError(f"must be {rule}, not {getattr(self, name)}", field=name)
        tail = tail_scenarios(self.confidence)
        if self.lookback < tail:
            raise InputError(f"{self.lookback} scenarios leave no loss beyond the {self.confidence:.2%} quantile: "
                             f"at least {tail} are needed", field="lookback")


@dataclass(frozen=True)
class Context:
    """A run's resolved inputs. ``moves[rows, factors]`` are MPOR-day moves ending on ``move_dates``."""

    config: RunConfig
    book: Book
    factors: RiskFactors
    resolved: Resolved
    move_dates: DateArray1D
    moves: Float64Array2D
    daily_vol: Float64Array2D  # EWMA vol of each factor's own-calendar daily moves on ``daily_dates``
    daily_dates: DateArray1D
    warnings: list[str] = field(default_factory=list)

    @property
    def as_of(self) -> np.datetime64:
        return self.factors.as_of

    def shipped(self) -> Context:
        """This context without its history (the factors' closes but the last, the moves, the volatilities): what
        a prepared method still reads once its scenario P&L is built (the config, the contracts, the factors'
        names and spot), for sending to other processes."""
        factors = replace(self.factors, grid=self.factors.grid[-1:], prices=self.factors.prices[-1:], own=())
        return replace(self, factors=factors, move_dates=self.move_dates[:0], moves=self.moves[:0],
                       daily_vol=self.daily_vol[:0], daily_dates=self.daily_dates[:0])

    @property
    def history_scenarios(self) -> int:
        """Scenarios from the book's common history (stress-period rows from before it not counted)."""
        dates = self.move_dates
        return int(((dates >= self.factors.grid[0]) & (dates <= self.as_of)).sum())

    def window(self, lookback: int | None = None, *, include_stress: bool = True) -> np.ndarray:
        """Rows of ``moves`` in the scenario window (plus the stressed period when configured)."""
        return window_rows(self.move_dates, as_of=self.as_of, lookback=lookback or self.config.lookback,
                           stress_period=self.config.stress_period if include_stress else None)

    def stressed_rows(self) -> np.ndarray:
        """Rows of the stressed period: configured, or the most volatile ``stress_window`` rows."""
        if self.config.stress_period is not None:
            start, end = self.config.stress_period
            rows = np.flatnonzero((self.move_dates >= start) & (self.move_dates <= end))
            if rows.size == 0:
                raise MarketDataError(f"stressed period {start}..{end} has no data")
            return rows
        return most_stressed_rows(self.moves[self.move_dates <= self.as_of], self.config.stress_window)

    def vol_ratio(self) -> Float64Array2D:
        """Filtered-HS scale ``sigma(as-of) / sigma(t)`` per move row and factor (1 on stressed rows
        from before the factors' common history, which have no EWMA volatility of their own)."""
        index = np.searchsorted(self.daily_dates, self.move_dates)
        sigma_t = self.daily_vol[np.minimum(index, self.daily_vol.shape[0] - 1)]
        sigma_now = self.daily_vol[-1]
        ratio = sigma_now / np.maximum(sigma_t, 1e-12)
        return np.where((self.move_dates < self.daily_dates[0])[:, None], 1.0, ratio)


def tail_scenarios(confidence: float) -> int:
    """The fewest scenarios with at least one loss beyond the ``confidence`` quantile: ceil(1 / (1 - c))."""
    return int(np.ceil(np.round(1.0 / (1.0 - confidence), 9)))


def most_stressed_rows(moves: Float64Array2D, window: int) -> np.ndarray:
    """The ``window`` consecutive rows with the largest mean standardised absolute move."""
    window = min(window, moves.shape[0])
    scale = moves.std(axis=0)
    intensity = (np.abs(moves) / np.where(scale > 0, scale, 1.0)).mean(axis=1)
    sums = np.convolve(intensity, np.ones(window), mode="valid")
    start = int(np.argmax(sums))
    return np.arange(start, start + window)


def factor_specs(book: Book, catalogue: Catalogue, specs: dict[str, Underlying], config: RunConfig) -> list[Underlying]:
    """The book's underlyings, then the FX series of its non-margin-currency instruments."""
    names: list[str] = []
    for one in catalogue.select(book.instruments):
        if one.underlying not in names:
            names.append(one.underlying)
    for one in catalogue.select(book.instruments):
        if one.currency != config.margin_currency:
            fx = fx_series_name(one.currency, config.margin_currency)
            if fx not in names:
                names.append(fx)
    return [underlying_spec(specs, name, config.risk_calendar) for name in names]


def series_names(factor_list: list[Underlying], available: set[str] | None = None) -> list[str]:
    """Price series a run reads: its factors, then their stress proxies (those in ``available``, if given)."""
    names = [spec.name for spec in factor_list]
    proxies = {spec.stress_proxy for spec in factor_list if spec.stress_proxy} - set(names)
    return names + sorted(name for name in proxies if available is None or name in available)


def build_context(*, book: Book, catalogue: Catalogue, market: MarketData, specs: dict[str, Underlying],
                  config: RunConfig, as_of: np.datetime64 | None = None,
                  settlements: dict[tuple[np.datetime64, str], Decimal] | None = None) -> Context:
    """The run's scenario context. ``settlements``: exchange settlement prices by (date, instrument); where
    one is published for a future or perpetual on the as-of date, it is that contract month's price today
    (and the forward of the options on it) instead of the term-structure price on the index close."""
    if not book.instruments:
        raise MarketDataError("the book holds no positions")
    factor_list = factor_specs(book, catalogue, specs, config)
    factors = build_factors(market, factor_list, sessions(config.risk_calendar), calendar=config.risk_calendar,
                            as_of=as_of, max_stale_days=config.max_stale_days)
    move_dates, moves = horizon_returns(factors, config.mpor_days)
    daily_dates, daily_vol = daily_volatility(factors, decay=config.ewma_lambda)
    annual = np.sqrt([periods_per_year(spec.calendar) for spec in factors.specs])
    published, notes = published_prices(catalogue, book, settlements, factors.as_of)
    resolved = resolve(catalogue.select(book.instruments), factors, margin_currency=config.margin_currency,
                       default_volatility=daily_vol[-1] * annual, published=published)
    if config.stress_period is not None and config.stress_period[0] > factors.as_of:
        notes.append(f"stress period {config.stress_period[0]}..{config.stress_period[1]} begins after as-of "
                     f"{factors.as_of}: not used (no look-ahead)")
        config = replace(config, stress_period=None)
    elif config.stress_period is not None:
        if config.stress_period[1] > factors.as_of:
            config = replace(config, stress_period=(config.stress_period[0], factors.as_of))
        move_dates, moves, stress_notes = with_stress_period(factors, market, specs, move_dates, moves, config)
        notes += stress_notes
    context = Context(config, book, factors, resolved, move_dates, moves, daily_vol, daily_dates, notes)
    available = context.history_scenarios
    if available < config.min_scenarios:
        raise MarketDataError(f"only {available} {config.mpor_days}-day scenarios up to {factors.as_of}; at least "
                              f"{config.min_scenarios} are required (min_scenarios)")
    if available < config.lookback:
        context.warnings.append(f"history gives {available} scenarios, fewer than the {config.lookback}-"
                                "observation lookback; all are used")
    return context


def published_prices(catalogue: Catalogue, book: Book, settlements: dict | None,
                     as_of: np.datetime64) -> tuple[dict[tuple[str, np.datetime64 | None], float], list[str]]:
    """(underlying, expiry) -> the exchange's settlement price on ``as_of`` of the futures and perpetuals
    ``settlements`` has, and a note naming the book's contracts it has none for."""
    if settlements is None:
        return {}, []
    published = {}
    for (day, name), price in settlements.items():
        if day == as_of and name in catalogue and catalogue[name].kind in ("future", "perpetual"):
            one = catalogue[name]
            published[(one.underlying, one.expiry)] = float(price)
    missing = [one.instrument for one in catalogue.select(book.instruments)
               if (one.underlying, one.expiry) not in published]
    notes = [f"no settlement price on {as_of} for {', '.join(missing)}: valued on the index close "
             "(term-structure rule)"] if missing else []
    return published, notes


def with_stress_period(factors: RiskFactors, market: MarketData, specs: dict[str, Underlying],
                       move_dates: DateArray1D, moves: Float64Array2D,
                       config: RunConfig) -> tuple[DateArray1D, Float64Array2D, list[str]]:
    """Prepend the stressed period's scenarios that fall before the common history.

    Their moves come from each factor's own history where it reaches back that far, else from
    its stress proxy (:func:`~tokenclear.margin.factors.stress_moves`), so a stress window
    always exists. Dates inside the common history are already rows of ``moves``.
    """
    start, end = config.stress_period  # type: ignore[misc]
    grid = sessions(config.risk_calendar)
    earliest = move_dates[0] if move_dates.size else end + 1
    dates = grid[(grid >= start) & (grid <= end) & (grid < earliest)]
    if dates.size == 0:
        return move_dates, moves, []
    proxies = {spec.stress_proxy: underlying_spec(specs, spec.stress_proxy, config.risk_calendar)
               for spec in factors.specs if spec.stress_proxy}
    stressed, notes = stress_moves(factors, market, proxies, dates, config.mpor_days)
    return np.concatenate([dates, move_dates]), np.vstack([stressed, moves]), notes


def unit_positions(size: int) -> tuple[np.ndarray, np.ndarray]:
    """One long and one short contract of each instrument, as two identity books."""
    eye = np.eye(size)
    return eye, -eye


def scale_rows(matrix: Float64Array2D, scale: Float64Array1D | None) -> Float64Array2D:
    return matrix if scale is None else matrix * scale[:, None]
