"""The depeg spiral on the shipped data (the adapter around :mod:`tokenclear.default.spiral`): the book's
requirements (HS-VaR, as ``tokenclear margin``), its collateral after today's haircuts, the asset's real closes
and volumes over the scenario's window, and the three policies compared on the same book and shock.

The path: a historical scenario's daily closes of the asset over its window (each day's close held for that
day's rounds); a scenario that sets the asset's price (``collateral_price``, e.g. ``usdc_low``) stretches the
path it builds on so its low is that price. The day's volume is the shipped volume of that date; ``sigma`` the
standard deviation of the asset's daily log moves over the window and the day before it (the stressed
volatility, not the calm one). Outside the CCP each account keeps bills worth ``buffer_share`` of its requirement
and ``treasury_share`` times its pledged coins (assumptions, stated with the result).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenclear import runner
from tokenclear.collateral import files as collateral_files
from tokenclear.default.spiral import (
    ANTI_PROCYCLICAL,
    DIVERSIFIED,
    PROCYCLICAL,
    Policy,
    Rounds,
    SpiralBook,
    SpiralMarket,
    simulate,
)
from tokenclear.errors import InputError
from tokenclear.settings import Settings
from tokenclear.stress.run import collateral_terms, read_collateral
from tokenclear.stress.scenarios import load_library

POLICIES = (PROCYCLICAL, ANTI_PROCYCLICAL, DIVERSIFIED)
CUSHION = 1.05  # collateral over requirement an account holds on the calm day (data/demo/collateral.csv's rule)


@dataclass(frozen=True)
class SpiralRun:
    scenario: str
    asset: str
    start: str
    end: str
    p0: float
    sigma: float
    base_haircut: float
    members: int
    round_hours: int
    days: list[str]  # the day of each round
    policies: list[Policy]
    results: list[Rounds]
    notes: list[str]


def run(settings: Settings, *, scenario: str = "svb", asset: str = "USDC", round_hours: int = 4,
        rounds: int = 20, buffer_share: float = 0.05, treasury_share: float = 1.0, scale: float = 1.0,
        positions: Path | None = None,
        collateral: Path | None = None) -> SpiralRun:
    """``scale`` multiplies the book (requirements and collateral) to the size of a CCP whose sales can move the
    asset's market; the volumes stay the real ones."""
    library = load_library(settings.data_dir / "stress")
    if scenario not in library:
        raise InputError(f"unknown scenario '{scenario}'; choose one of {', '.join(library)}", field="--scenario")
    chosen = library[scenario]
    historical = chosen if chosen.type == "historical" else library.get(chosen.builds_on or "")
    if historical is None or historical.type != "historical":
        raise InputError(f"'{scenario}' is not historical and builds on no historical window: the spiral needs a "
                         "path of real closes and volumes", field="--scenario")
    reference = collateral_files.load_reference(settings.collateral_dir)
    if asset not in reference.registry.names:
        raise InputError(f"unknown collateral asset '{asset}'", field="--asset")
    spec = reference.registry.get(asset)
    if not spec.price_series or not spec.volume_series:
        raise InputError(f"{asset} has no price or volume series to drive the spiral", field="--asset")
    prices, volumes = collateral_files.load_market(settings.prices_dir, settings.volumes_dir,
                                                   reference.registry.subset([asset]), settings.margin_currency)
    closes, volume = prices.get(spec.price_series), volumes.get(spec.volume_series)
    start, end = np.datetime64(historical.start), np.datetime64(historical.end)
    inside = (closes.dates >= start) & (closes.dates <= end)
    before = np.flatnonzero(closes.dates < start)
    if not inside.any() or before.size == 0:
        raise InputError(f"{spec.price_series} has no closes over {start}..{end}", field="--scenario")
    p0 = float(closes.closes[before[-1]])
    window = np.concatenate([[p0], closes.closes[inside]])
    sigma = float(np.std(np.diff(np.log(window))))
    day_path, days = closes.closes[inside], closes.dates[inside]
    target = next((shock.value for shock in chosen.of("collateral_price") if shock.target in (asset, "*")), None)
    notes = []
    if target is not None and chosen is not historical:
        low = float(day_path.min())
        day_path = p0 - (p0 - day_path) * (p0 - target) / max(p0 - low, 1e-12)
        notes.append(f"{scenario}: the {historical.name} path stretched to a low of {target}")
    day_volume = np.array([_volume_on(volume, day) for day in days])
    per_day = max(24 // round_hours, 1)
    path = np.repeat(day_path, per_day)[:rounds]
    vol = np.repeat(day_volume, per_day)[:rounds]
    round_days = [str(day) for day in np.repeat(days, per_day)[:rounds]]
    book, base, topped = _book(settings, asset, positions, collateral, np.datetime64(days[0]) - 1, buffer_share,
                               treasury_share)
    if topped:
        notes.append(f"{topped} account(s) held less than {CUSHION} x their requirement on "
                     f"{np.datetime64(days[0]) - 1}: the difference is counted as bills posted before the shock")
    if scale != 1.0:
        book = SpiralBook(*(np.asarray(part) * scale for part in (book.requirement, book.other, book.units,
                                                                    book.buffer, book.treasury)))
        notes.append(f"the book scaled x{scale:g} (requirements and collateral; the volumes are the real ones)")
    market = SpiralMarket(p0, path, vol, sigma, base)
    notes.append(f"each account keeps bills worth {buffer_share:.0%} of its requirement and {treasury_share:g} x "
                 f"its pledged {asset} outside the CCP to answer calls (an assumption)")
    return SpiralRun(scenario, asset, str(start), str(end), p0, sigma, base, book.requirement.size, round_hours,
                     round_days, list(POLICIES), [simulate(book, market, policy) for policy in POLICIES], notes)


def _volume_on(series, day: np.datetime64) -> float:
    at = np.flatnonzero(series.dates == day)
    if at.size == 0:
        raise InputError(f"no volume on {day} in {series.name}", field="--scenario")
    return float(series.closes[at[0]])


def _book(settings: Settings, asset: str, positions: Path | None, collateral: Path | None, day: np.datetime64,
          buffer_share: float, treasury_share: float) -> tuple[SpiralBook, float, int]:
    """Requirement per account (HS-VaR on the day before the window), the shocked asset's units, the rest of
    its collateral after haircuts, and its buffer."""
    setup = runner.risk_setup(settings)
    inputs = runner.load_inputs(settings, positions=positions, instruments=None, prices=None)
    margin = runner.run_book_margin(settings, inputs, setup, as_of=str(day), method="hsvar")
    requirement = {row.account: float(row.margin) for row in margin.accounts}
    registry = collateral_files.load_reference(settings.collateral_dir).registry
    held = read_collateral(collateral or settings.data_dir / "demo" / "collateral.csv", registry.names)
    if asset not in held.assets:
        raise InputError(f"no account holds {asset}", field="--asset")
    terms = collateral_terms(settings, held.assets, day)
    j = held.assets.index(asset)
    value = held.quantity * terms.price * (1.0 - terms.haircut)
    accounts = [a for a in held.accounts if a in requirement]
    rows = [held.accounts.index(a) for a in accounts]
    required = np.array([requirement[a] for a in accounts])
    other = value[rows].sum(axis=1) - value[rows, j]
    # each account starts covered with the cushion the demo collateral was written with: what it lacks on the
    # calm day it has met in bills before the shock
    short = np.maximum(required * CUSHION - value[rows].sum(axis=1), 0.0)
    other = other + short
    pledged = held.quantity[rows, j]
    book = SpiralBook(required, other, pledged, required * buffer_share, pledged * treasury_share)
    return book, float(terms.haircut[j]), int((short > 0).sum())
