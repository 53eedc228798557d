"""Stress testing from files: the book, its collateral and the scenario library in, losses, Cover 2, each
member's contribution and the reverse stress multiple out. The adapter around :mod:`tokenclear.stress.losses`:
it reads, resolves and converts (float64 inside, ``Decimal`` cents out)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from tokenclear import runner
from tokenclear.collateral import files as collateral_files
from tokenclear.collateral.haircuts import HaircutConfig, calibrate
from tokenclear.csvfiles import parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.margin.context import Context
from tokenclear.margin.variation import close_on
from tokenclear.market.history import MarketData
from tokenclear.settings import Settings
from tokenclear.stress import history
from tokenclear.stress.losses import (
    Losses,
    Shocks,
    StressBook,
    contributions,
    cover2,
    group_sums,
    losses,
    reverse_multiple,
)
from tokenclear.stress.scenarios import Scenario, load_library, select

CENT = Decimal("0.01")
#: Calendar days a collateral price may lag the as-of date (a week: weekends and holidays pass).
STALE_DAYS = 7
#: Collateral price models valued at one USD a unit (fund shares at NAV 1, bills at face): no price series.
PAR_MODELS = ("par", "duration")


@dataclass(frozen=True)
class Collateral:
    """``quantity[account, asset]`` units of each asset of ``assets`` per account of ``accounts``."""

    accounts: list[str]
    assets: list[str]
    quantity: np.ndarray


@dataclass
class StressReport:
    as_of: str
    scenarios: list[Scenario]
    groups: list[str]
    losses: Losses
    fund: Decimal
    fund_scenario: str
    fund_groups: tuple[str, str]
    per_scenario: list[Decimal]
    top: list[tuple[str, str]]
    contributions: list[Decimal]
    skin_in_the_game: Decimal
    reverse: list[float]
    notes: list[str]
    book: StressBook  # accounts, their groups, positions and collateral units (accounts in report order)
    assets: list[str]  # the collateral assets held
    terms: CollateralTerms  # today's price, haircut, ADV and daily vol per asset
    shocks: list[Shocks]  # each scenario in numbers
    inputs: runner.Inputs  # what was read, and the resolved context: a default replay reuses them
    context: Context

    @property
    def accounts(self) -> list[str]:
        return self.book.accounts

    def by_group(self, values: np.ndarray) -> np.ndarray:
        """``values[scenarios, accounts]`` summed per group."""
        return group_sums(values, self.book.group, len(self.groups))


def usd(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_EVEN)


def read_collateral(path: Path, known_assets: list[str]) -> Collateral:
    """CSV account,asset,quantity (units of the asset; > 0); a duplicate row or an unknown asset is refused."""
    rows = read_rows(path, ["account", "asset", "quantity"])
    accounts, assets, cells = [], [], {}
    for line, row in rows:
        if row["asset"] not in known_assets:
            raise InputError(f"unknown collateral asset '{row['asset']}' (the registry has "
                             f"{', '.join(known_assets)})", path=path, line=line, field="asset")
        quantity = parse_float(row["quantity"], path=path, line=line, field="quantity")
        if quantity < 0:
            raise InputError("a quantity of collateral is >= 0", path=path, line=line, field="quantity")
        key = (row["account"], row["asset"])
        if key in cells:
            raise InputError(f"duplicate row for {key[0]} {key[1]}", path=path, line=line, field="asset")
        cells[key] = quantity
        accounts += [row["account"]] if row["account"] not in accounts else []
        assets += [row["asset"]] if row["asset"] not in assets else []
    quantity = np.zeros((len(accounts), len(assets)))
    for (account, asset), value in cells.items():
        quantity[accounts.index(account), assets.index(asset)] = value
    return Collateral(accounts, assets, quantity)


def read_groups(path: Path | None, members: list[str]) -> dict[str, str]:
    """member -> group (affiliates share a group); default: each member its own."""
    groups = {member: member for member in members}
    if path is None:
        return groups
    for line, row in read_rows(path, ["member", "group"]):
        if not row["group"]:
            raise InputError("blank group", path=path, line=line, field="group")
        groups[row["member"]] = row["group"]
    return groups


def member_of(account: str) -> str:
    """The member an account belongs to: the text before its first '-' (M07-HOUSE, M07-CUST -> M07)."""
    return account.split("-", 1)[0]


def stress(settings: Settings, *, scenarios: str = "all", positions: Path | None = None,
           collateral: Path | None = None, groups: Path | None = None, as_of: str | None = None,
           skin_in_the_game: Decimal = Decimal(0), library: Path | None = None) -> StressReport:
    """The whole stress run from files (see the module and :mod:`tokenclear.stress.losses`)."""
    every = load_library(library or settings.data_dir / "stress")
    chosen = select(every, scenarios)
    config = runner.risk_setup(settings, stress_period="none").config  # no margin window: only the factors
    inputs, context = runner.load_context(settings, config, positions=positions, instruments=None, prices=None,
                                          as_of=as_of)
    notes = list(inputs.warnings)  # the margin context's own notes (window length) do not concern a stress run
    registry = collateral_files.load_reference(settings.collateral_dir).registry
    held = read_collateral(collateral or settings.data_dir / "demo" / "collateral.csv", registry.names)
    day = context.as_of
    terms = collateral_terms(settings, held.assets, day)
    price, haircut, prices = terms.price, terms.haircut, terms.prices
    assets = [registry.get(name) for name in held.assets]

    accounts = list(dict.fromkeys([*context.book.accounts, *held.accounts]))
    quantity = np.zeros((len(accounts), context.book.quantity.shape[1]))
    quantity[[accounts.index(a) for a in context.book.accounts]] = context.book.quantity
    units = np.zeros((len(accounts), len(held.assets)))
    units[[accounts.index(a) for a in held.accounts]] = held.quantity
    members = [member_of(account) for account in accounts]
    group_map = read_groups(groups, list(dict.fromkeys(members)))
    group_names = list(dict.fromkeys(group_map[m] for m in members))
    group_index = np.array([group_names.index(group_map[m]) for m in members])
    book = StressBook(accounts, group_names, group_index, context.resolved, quantity.astype(float), units, price,
                      haircut, float(config.mpor_days))

    specs = list(context.factors.specs)
    factor_names = [spec.name for spec in specs]
    shocks = []
    for scenario in chosen:
        one, said = scenario_shocks(scenario, every, factor_names, specs, inputs.specs, inputs.market, prices,
                                    [a.price_series for a in assets], held.assets, price, haircut)
        shocks.append(one)
        notes += [f"{scenario.name}: {note}" for note in said]
    result = losses(book, shocks)
    cover = cover2(result.by_group)
    share = contributions(cover.fund, result.by_group)
    resources = cover.fund + float(skin_in_the_game)
    reverse = [reverse_multiple(book, shock, resources) for shock in shocks]
    return StressReport(str(day), chosen, group_names, result, usd(cover.fund), chosen[cover.scenario].name,
                        (group_names[cover.groups[0]], group_names[cover.groups[1]]),
                        [usd(v) for v in cover.per_scenario],
                        [(group_names[a], group_names[b]) for a, b in cover.top], [usd(v) for v in share],
                        skin_in_the_game, reverse, list(dict.fromkeys(notes)), book, held.assets, terms, shocks,
                        inputs, context)


@dataclass(frozen=True)
class CollateralTerms:
    """Per asset on a day: ``price`` USD a unit, published ``haircut``, ``adv_usd`` (inf: no volume limit) and
    ``sigma`` the daily volatility of its price series (0 without one); ``prices`` the collateral price data."""

    price: np.ndarray
    haircut: np.ndarray
    adv_usd: np.ndarray
    sigma: np.ndarray
    prices: MarketData


def collateral_terms(settings: Settings, names: list[str], day: np.datetime64) -> CollateralTerms:
    """The :class:`CollateralTerms` of ``names`` on ``day``."""
    reference = collateral_files.load_reference(settings.collateral_dir)
    registry = reference.registry.subset(names)  # only what is held: another asset's stale prices do not matter
    prices, volumes = collateral_files.load_market(settings.prices_dir, settings.volumes_dir, registry,
                                                   settings.margin_currency)
    table = calibrate(registry, market=prices, volumes=volumes, floors=reference.floors, as_of=day,
                      config=HaircutConfig(lookback=settings.lookback, stress_window=settings.stress_window),
                      schedule=reference.schedule_floors)
    price = np.empty(len(names))
    for j, asset in enumerate(registry.get(name) for name in names):  # a loop over a handful of assets
        if asset.currency != settings.margin_currency:
            raise InputError(f"collateral in {asset.currency} is not stressed yet (margin currency "
                             f"{settings.margin_currency})", field=asset.asset)
        if asset.price_model in PAR_MODELS:
            price[j] = 1.0
        elif asset.price_series:
            price[j] = float(close_on(prices, asset.price_series, day, max_stale_days=STALE_DAYS))
        else:
            raise InputError(f"{asset.asset} has no price series to value it", field=asset.asset)
    sigma = np.array([history.daily_vol(prices.get(registry.get(name).price_series))
                      if registry.get(name).price_series else 0.0 for name in names])
    return CollateralTerms(price, np.array([table.of(name) for name in names]),
                           np.array([table.adv_usd[table.index(name)] for name in names]), sigma, prices)


def scenario_shocks(scenario: Scenario, library: dict[str, Scenario], factor_names: list[str], specs, all_specs,
                    market, collateral_prices, asset_series: list[str | None], assets: list[str], price: np.ndarray,
                    haircut: np.ndarray) -> tuple[Shocks, list[str]]:
    """The scenario in numbers for this book's factors and collateral assets (``price`` and ``haircut`` today's,
    per asset), starting from the one it builds on, and notes on what it moves."""
    if scenario.builds_on is not None:
        base, notes = scenario_shocks(library[scenario.builds_on], library, factor_names, specs, all_specs, market,
                                      collateral_prices, asset_series, assets, price, haircut)
        moves, ratio, stressed_haircut, frozen = (base.moves.copy(), base.price_ratio.copy(), base.haircut.copy(),
                                                  base.frozen.copy())
    else:
        notes, moves, ratio = [], np.zeros(len(factor_names)), np.ones(len(assets))
        stressed_haircut, frozen = haircut.copy(), np.zeros(len(assets), dtype=bool)
    if scenario.type == "historical":
        moves, said = history.window_moves(market, specs, all_specs, scenario.start, scenario.end)
        notes += said
        ratio = history.window_lows(collateral_prices, asset_series, scenario.start, scenario.end)
    for shock in scenario.shocks:
        if shock.kind == "move":
            if shock.target in factor_names:
                moves[factor_names.index(shock.target)] += shock.value
            else:
                notes.append(f"no position of the book moves with {shock.target}")
        elif shock.kind in ("collateral_price", "collateral_move", "haircut", "haircut_scale", "frozen"):
            hit = [j for j, name in enumerate(assets) if shock.target in (name, "*")]
            for j in hit:
                if shock.kind == "collateral_price":
                    ratio[j] = shock.value / max(float(price[j]), 1e-12)
                elif shock.kind == "collateral_move":
                    ratio[j] *= 1.0 + shock.value
                elif shock.kind == "haircut":
                    stressed_haircut[j] = shock.value
                elif shock.kind == "haircut_scale":
                    stressed_haircut[j] = min(stressed_haircut[j] * shock.value, 1.0)
                else:
                    frozen[j] = True
            if not hit:
                notes.append(f"no account holds {shock.target} as collateral")
    return Shocks(moves, ratio, stressed_haircut, frozen), notes
