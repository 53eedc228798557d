"""Haircuts derived from data (pure), component by component.

For each asset, with liquidation horizon ``H = mpor_days + settlement_lag_hours / 24`` observations
of its own calendar (24/7 for crypto, business days otherwise):

* ``market``: the ``confidence`` loss quantile of the asset's ``H``-day return on the base window
  (the last ``lookback`` observations up to the as-of date) combined with the same quantile on a
  stressed window (the most volatile ``stress_window`` observations of the asset, or of its stress
  proxy such as the S&P 500 through 2008 for SPY) by the anti-procyclicality option:
  ``stressed-weight`` = max(base, 0.75 base + 0.25 stressed) (EMIR RTS 153/2013 Art. 28(1)(b)),
  ``stressed`` = max(base, stressed), ``buffer`` = 1.25 x base, ``none`` = base. The quantile curve is
  made non-decreasing in the horizon. Assets without a series use their stated model: ``duration``
  z x D x sigma_y x sqrt(H); ``volatility`` z x sigma x sqrt(H / 252); ``par`` none.
* ``liquidity``: a position of ``position_usd`` takes ``d = position / (participation x ADV)`` days
  to sell; beyond the first day the horizon extends to ``H + (d - 1)``, and the market component
  grows by square-root of time (``market x (sqrt((H + d - 1) / H) - 1)``) or linearly
  (``market x (d - 1) / H``).
* ``fx``: the same quantile for the collateral currency against the margin currency, over ``H``.
* ``depeg``: stablecoins only, a jump of the largest discount below the 1.00 peg observed up to the
  as-of date, each discount decayed by its age with a half-life of ``depeg_half_life_days``
  (USDC's 0.9715 close of 2023-03-11 counts 2.85% that day, half of it 90 days later), at least
  ``depeg_floor``. The review rule: a depeg weighs fully while it is fresh and fades as the coin
  holds its peg, but the floor stays; a new dip resets it.
* ``credit``: what the floor for the issuer's kind and rating adds on top of the rest.
* ``floor``: what a published CCP schedule's haircut for the asset class
  (``schedule_floors.csv``: CME's 30% for equities and ETFs, 15% for gold, 3% for money-market
  funds, 0.5% to 6% for Treasuries by maturity) adds on top of the rest.

``total`` = max(market + liquidity + fx + depeg, credit floor, schedule floor): the sum is
conservative against the product form 1 - (1 - a)(1 - b). ``published`` rounds the total up to
the grid (0.5%). The default confidence is 99.9%, the level Eurex Clearing states for its
collateral haircuts ("calibrated to guarantee the high (99.9 percent) confidence level").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from tokenclear.arrays import Float64Array1D
from tokenclear.bounds import MAX_HAIRCUT_MPOR_DAYS
from tokenclear.collateral.assets import Asset, Registry
from tokenclear.collateral.limits import CreditFloors, ScheduleFloors
from tokenclear.collateral.returns import at_horizon, fx_cross, loss_quantiles, stressed_window, window
from tokenclear.errors import ConfigurationError, MarketDataError
from tokenclear.margin.addons import ConcentrationRule, average_daily_volume_usd
from tokenclear.margin.procyclicality import BUFFER, STRESS_WEIGHT
from tokenclear.market.history import MarketData, PriceSeries

APC_OPTIONS = ("none", "buffer", "stressed-weight", "stressed")
LIQUIDITY_SCALING = ("sqrt", "linear")
COMPONENTS = ("market", "liquidity", "fx", "depeg", "credit", "floor")
#: Eurex Clearing, Collateral valuation: haircuts calibrated at a 99.9% confidence level.
HAIRCUT_CONFIDENCE = 0.999
BUSINESS_DAYS_PER_YEAR = 252.0
PEG = 1.0


@dataclass(frozen=True)
class HaircutConfig:
    confidence: float = HAIRCUT_CONFIDENCE
    mpor_days: int = 2
    lookback: int = 1250
    stress_window: int = 250
    apc: str = "stressed-weight"
    liquidity_scaling: str = "sqrt"
    position_usd: float = 10_000_000.0  # reference position for the liquidity component
    margin_currency: str = "USD"
    depeg_floor: float = 0.01
    depeg_half_life_days: float = 90.0  # age (calendar days) at which a past depeg counts half
    grid_fraction: float = 0.005  # published haircuts round up to this step (0.5%)
    max_horizon_days: int = MAX_HAIRCUT_MPOR_DAYS
    max_stale_days: int = 7  # calendar days a price may lag the as-of date (a week: holidays and weekends pass)

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1.0:
            raise ConfigurationError(f"confidence {self.confidence} must lie in (0.5, 1)")
        if self.apc not in APC_OPTIONS:
            raise ConfigurationError(f"unknown APC option '{self.apc}'; choose one of {', '.join(APC_OPTIONS)}")
        if self.liquidity_scaling not in LIQUIDITY_SCALING:
            raise ConfigurationError(f"liquidity scaling must be one of {', '.join(LIQUIDITY_SCALING)}")
        if not 1 <= self.mpor_days <= self.max_horizon_days or not math.isfinite(self.position_usd):
            raise ConfigurationError(f"mpor_days in [1, {self.max_horizon_days}], position_usd finite")
        if self.mpor_days < 1 or self.lookback < 20 or self.stress_window < 20 or self.max_horizon_days < 1:
            raise ConfigurationError("mpor_days >= 1, lookback and stress_window >= 20, max_horizon_days >= 1")
        if not 0 < self.grid_fraction < 0.1 or self.position_usd < 0 or not 0 <= self.depeg_floor < 1:
            raise ConfigurationError("grid_fraction in (0, 0.1), position_usd >= 0, depeg_floor in [0, 1)")
        if not self.depeg_half_life_days > 0:
            raise ConfigurationError(f"depeg_half_life_days {self.depeg_half_life_days} must be > 0")


@dataclass(frozen=True)
class HaircutTable:
    """Haircuts as fractions of market value, one entry per asset (registry order)."""

    as_of: np.datetime64
    config: HaircutConfig
    assets: list[str]
    horizon_days: Float64Array1D
    adv_usd: Float64Array1D  # inf = no liquidity limit
    days_to_liquidate: Float64Array1D
    market: Float64Array1D
    liquidity: Float64Array1D
    fx: Float64Array1D
    depeg: Float64Array1D
    credit: Float64Array1D
    floor: Float64Array1D
    total: Float64Array1D
    published: Float64Array1D

    def index(self, asset: str) -> int:
        return self.assets.index(asset)

    def of(self, asset: str) -> float:
        return float(self.published[self.index(asset)])

    def rows(self) -> list[dict[str, object]]:
        out = []
        for i, asset in enumerate(self.assets):
            row: dict[str, object] = {"asset": asset, "horizon_days": round(float(self.horizon_days[i]), 4),
                                      "days_to_liquidate": round(float(self.days_to_liquidate[i]), 4)}
            for name in (*COMPONENTS, "total", "published"):
                row[name] = round(float(getattr(self, name)[i]), 6)
            out.append(row)
        return out


def market_curve(asset: Asset, market: MarketData, as_of: np.datetime64, config: HaircutConfig) -> Float64Array1D:
    """Market loss quantile at horizons 1..max_horizon_days (after the APC option)."""
    size = config.max_horizon_days
    horizons = np.arange(1, size + 1, dtype=np.float64)
    z = float(norm.ppf(config.confidence))
    if asset.price_model == "par":
        return np.zeros(size)
    if asset.price_model == "duration":
        return z * asset.duration_years * asset.rate_vol_bp * 1e-4 * np.sqrt(horizons)
    if asset.price_model == "volatility":
        return z * asset.annual_vol * np.sqrt(horizons / BUSINESS_DAYS_PER_YEAR)
    own = market.get(asset.price_series)
    base = loss_quantiles(window(own, as_of, config.lookback, config.max_stale_days), max_horizon=size,
                          confidence=config.confidence)
    return _apc(base, stressed_curve(market.get(asset.stress_series or asset.price_series), as_of, config), config)


def stressed_curve(series: PriceSeries, as_of: np.datetime64, config: HaircutConfig) -> Float64Array1D:
    return loss_quantiles(stressed_window(series, as_of, config.stress_window), max_horizon=config.max_horizon_days,
                          confidence=config.confidence)


def _apc(base: Float64Array1D, stressed: Float64Array1D, config: HaircutConfig) -> Float64Array1D:
    if config.apc == "buffer":
        return (1.0 + BUFFER) * base
    if config.apc == "stressed-weight":
        return np.maximum(base, (1.0 - STRESS_WEIGHT) * base + STRESS_WEIGHT * stressed)
    if config.apc == "stressed":
        return np.maximum(base, stressed)
    return base


def fx_curve(asset: Asset, market: MarketData, as_of: np.datetime64, config: HaircutConfig) -> Float64Array1D:
    cross = fx_cross(asset.currency, config.margin_currency, market)
    if cross is None:
        return np.zeros(config.max_horizon_days)
    base = loss_quantiles(window(cross, as_of, config.lookback, config.max_stale_days),
                          max_horizon=config.max_horizon_days,
                          confidence=config.confidence)
    return _apc(base, stressed_curve(cross, as_of, config), config)


def adv_usd(asset: Asset, *, market: MarketData, volumes: MarketData, as_of: np.datetime64) -> float:
    """Average daily volume in USD (inf = none needed: cash)."""
    if asset.volume_series is None and asset.adv_usd is None:
        return math.inf
    rule = ConcentrationRule(asset.volume_series or asset.asset, asset.adv_usd, asset.volume_unit,
                             asset.participation)
    value = average_daily_volume_usd(rule, volumes=volumes, prices=market, as_of=as_of)
    if not np.isfinite(value) or value <= 0:
        raise MarketDataError(f"no volume for {asset.asset} ('{asset.volume_series}') on or before {as_of}")
    return value


def liquidity_addon(market_at_horizon: Float64Array1D, horizon_days: Float64Array1D, days_to_liquidate: Float64Array1D,
                    *, scaling: str) -> Float64Array1D:
    """Extra haircut for positions that take more than a day to sell (vectorised over assets)."""
    extra = np.maximum(days_to_liquidate - 1.0, 0.0)
    if scaling == "sqrt":
        return market_at_horizon * (np.sqrt((horizon_days + extra) / horizon_days) - 1.0)
    return market_at_horizon * extra / horizon_days


def worst_depeg(asset: Asset, market: MarketData, as_of: np.datetime64, *, half_life_days: float) -> float:
    """Largest discount to the 1.00 peg up to ``as_of``, each decayed by ``0.5 ** (age / half_life_days)``."""
    series = market.get(asset.price_series)
    keep = series.dates <= as_of
    if not keep.any():
        return 0.0
    age = (as_of - series.dates[keep]).astype(np.int64)
    discount = np.maximum(PEG - series.closes[keep], 0.0) * 0.5 ** (age / half_life_days)
    return float(discount.max())


def round_up(values: Float64Array1D, grid: float) -> Float64Array1D:
    """Up to the next multiple of ``grid`` (exact multiples stay; tiny float noise is ignored)."""
    steps = np.ceil(np.round(np.asarray(values) / grid, 9))
    return np.minimum(steps * grid, 1.0)


def calibrate(registry: Registry, *, market: MarketData, volumes: MarketData, floors: CreditFloors,
              as_of: np.datetime64, config: HaircutConfig = HaircutConfig(),
              position_usd: Float64Array1D | None = None, schedule: ScheduleFloors | None = None) -> HaircutTable:
    """Every registry asset's haircut with its components, as of ``as_of``.

    ``position_usd``: float64[assets] sizes for the liquidity component (default: the config's
    reference position for every asset).
    """
    as_of = np.datetime64(as_of, "D")
    count = len(registry)
    horizon = np.array([config.mpor_days + asset.settlement_lag_hours / 24.0 for asset in registry.assets])
    market_h = np.empty(count)
    fx_h = np.empty(count)
    depeg = np.zeros(count)
    adv = np.empty(count)
    participation = registry.column("participation")
    for i, asset in enumerate(registry.assets):  # a loop over ~20 assets; each step is vectorised over time
        market_h[i] = at_horizon(market_curve(asset, market, as_of, config), horizon[i])
        fx_h[i] = at_horizon(fx_curve(asset, market, as_of, config), horizon[i])
        if asset.kind == "stablecoin":
            depeg[i] = max(worst_depeg(asset, market, as_of, half_life_days=config.depeg_half_life_days),
                           config.depeg_floor)
        adv[i] = adv_usd(asset, market=market, volumes=volumes, as_of=as_of)
    size = np.full(count, config.position_usd) if position_usd is None else np.asarray(position_usd, np.float64)
    days = np.where(np.isfinite(adv), size / (participation * adv), 0.0)
    liquidity = liquidity_addon(market_h, horizon, days, scaling=config.liquidity_scaling)
    floor = floors.floors(registry)
    raw = market_h + liquidity + fx_h + depeg
    credit = np.maximum(floor - raw, 0.0)
    published_floor = np.zeros(count) if schedule is None else schedule.floors(registry)
    top_up = np.maximum(published_floor - (raw + credit), 0.0)
    total = np.minimum(raw + credit + top_up, 1.0)
    return HaircutTable(as_of, config, registry.names, horizon, adv, days, market_h, liquidity, fx_h, depeg, credit,
                        top_up, total, round_up(total, config.grid_fraction))

