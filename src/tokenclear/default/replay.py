"""A member's default under a stress scenario, off chain: what is ported, what is closed out and at what cost on
each weekday, and which layers of the waterfall pay for it (the adapter around :mod:`.closeout` and
:mod:`.waterfall`, on the stress run of :mod:`tokenclear.stress.run`).

Porting rule: a customer account whose own collateral after the scenario covers its stress loss is ported to a
surviving member with its collateral (it costs the default fund nothing); the house account and any customer
account its collateral does not cover are closed out in the market.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from tokenclear import runner
from tokenclear.default import closeout, waterfall
from tokenclear.errors import InputError
from tokenclear.settings import Settings
from tokenclear.stress.run import stress, usd


@dataclass(frozen=True)
class CloseOut:
    day: str
    cost: Decimal  # market impact of the close-out, USD
    days: int  # days from the default until the last factor is closed out
    waited: list[str]  # factors whose market is closed that day
    loss: Decimal  # position loss under the scenario plus both costs
    waterfall: waterfall.Waterfall
    collateral_cost: Decimal = Decimal(0)  # market impact of selling the defaulter's collateral, USD
    prices_after_sale: dict[str, float] | None = None  # asset -> the price it sells at (the spiral's step); a
    # frozen asset cannot be sold and has none
    survivors_collateral_fall: Decimal = Decimal(0)  # what the sale takes off the survivors' collateral, USD
    newly_uncovered: list[str] | None = None  # survivors' accounts the fall leaves uncovered


@dataclass(frozen=True)
class DefaultReplay:
    scenario: str
    member: str
    as_of: str
    ported: list[str]
    closed_out: list[str]
    position_loss: Decimal
    margin: Decimal
    fund: Decimal
    closeouts: list[CloseOut]
    notes: list[str]
    frozen: list[str]  # collateral assets the scenario freezes: they cannot be sold
    vm_gains: dict[str, Decimal]  # survivor -> the variation margin the scenario owes it (its gains), USD


def replay(settings: Settings, *, scenario: str, member: str, days: list[str], positions: Path | None = None,
           collateral: Path | None = None, as_of: str | None = None, skin_in_the_game: Decimal = Decimal(0),
           assessment_multiple: Decimal = Decimal(1)) -> DefaultReplay:
    for day in days:
        if day not in closeout.WEEKDAYS:
            raise InputError(f"'{day}' is not a weekday (mon..sun)", field="--days")
    report = stress(settings, scenarios="all", positions=positions, collateral=collateral, as_of=as_of,
                    skin_in_the_game=skin_in_the_game)
    names = [one.name for one in report.scenarios]
    if scenario not in names:
        raise InputError(f"unknown scenario '{scenario}'; choose one of {', '.join(names)}", field="--scenario")
    if member not in report.groups:
        raise InputError(f"no member '{member}' in the book (members: {', '.join(report.groups)})", field="--member")
    s = names.index(scenario)
    loss, kept = report.losses.loss[s], report.losses.collateral[s]
    mine = report.book.group == report.groups.index(member)
    customer = np.array(["HOUSE" not in account for account in report.accounts])
    ported = mine & customer & (loss <= kept)
    closed = mine & ~ported
    contributions = dict(zip(report.groups, report.contributions, strict=True))
    survivors = {group: amount for group, amount in contributions.items() if group != member}
    owed = report.by_group(np.maximum(-report.losses.loss, 0.0))[s]  # VM owed to each group: its gains
    gains = {group: usd(owed[g]) for g, group in enumerate(report.groups) if group != member and owed[g] > 0}

    # the close-out: delta-equivalent exposure per factor of the accounts closed out, traded on each day
    inputs, context = report.inputs, report.context
    factors = len(context.factors.names)
    exposure = closeout.exposures(report.book.resolved, report.book.quantity[closed], factors).sum(axis=0)
    volumes: dict = {}
    adv, participation = runner.factor_adv_usd(settings, context, inputs.prices_dir, volumes)
    profiles = np.stack([closeout.weekday_profile(volumes[name].get(name).dates, volumes[name].get(name).closes)
                         if name in volumes else closeout.calendar_profile(spec.calendar)
                         for name, spec in zip(context.factors.names, context.factors.specs, strict=True)])
    # daily volatility as a fraction (an absolute factor's EWMA vol is in price units: over its level)
    sigma = context.daily_vol[-1] / np.where(context.factors.is_absolute, np.abs(context.factors.spot), 1.0)
    chosen = report.scenarios[s]
    others = [f"{name}: " for name in names if name != scenario]
    notes = [note for note in report.notes if not note.startswith(tuple(others))]  # this scenario's and the inputs'
    missing = [name for name, value in zip(context.factors.names, adv, strict=True) if not np.isfinite(value)
               and exposure[context.factors.names.index(name)] != 0]
    if missing:
        notes.append(f"no average daily volume for {', '.join(missing)} (concentration.csv): their close-out "
                     "cost is not counted")
    position_loss, margin = usd(loss[closed].sum()), usd(kept[closed].sum())
    spiral = collateral_sale(report, s, closed)
    results = []
    for day in days:
        index = closeout.WEEKDAYS.index(day)
        wait = closeout.next_open(profiles, index)
        multiplier = np.full(factors, multiplier_for(chosen, day))
        trading = profiles[np.arange(factors), (index + np.maximum(wait, 0)) % 7]
        cost = closeout.impact_cost(exposure, np.nan_to_num(adv, nan=np.inf), sigma, trading, multiplier)
        cost = np.where(np.isfinite(cost), cost, 0.0)
        size = np.abs(exposure)
        per_day = np.where(np.isfinite(adv), np.maximum(participation, 1e-9) * np.nan_to_num(adv) * trading, np.inf)
        spread = np.where(size > 0, np.ceil(size / np.maximum(per_day, 1e-300)), 0)
        needed = int(np.max(np.where(size > 0, np.maximum(wait, 0) + spread, 0), initial=0))
        sold = spiral(multiplier_for(chosen, day))
        total = position_loss + usd(cost.sum()) + sold["cost"]  # the loss the waterfall meets, to the cent
        flow = waterfall.run(total, margin=margin, own_contribution=contributions.get(member, Decimal(0)),
                             skin_in_the_game=skin_in_the_game, survivors=survivors,
                             assessment_multiple=assessment_multiple, vm_gains=gains)
        results.append(CloseOut(day, usd(cost.sum()), needed,
                                [name for name, w in zip(context.factors.names, wait, strict=True)
                                 if w > 0 and size[context.factors.names.index(name)] > 0], total, flow,
                                sold["cost"], sold["prices"], sold["fall"], sold["uncovered"]))
    accounts = np.array(report.accounts)
    return DefaultReplay(scenario, member, report.as_of, list(accounts[ported]), list(accounts[closed]),
                         position_loss, margin, report.fund, results, list(dict.fromkeys(notes)),
                         [name for name, frozen in zip(report.assets, report.shocks[s].frozen, strict=True) if frozen],
                         gains)


def multiplier_for(scenario, day: str) -> float:
    """The scenario's liquidity multiplier on a weekday (the product of its shocks for that day and for *)."""
    value = 1.0
    for shock in scenario.of("liquidity"):
        if shock.target in ("*", day):
            value *= shock.value
    return value


def collateral_sale(report, s: int, closed: np.ndarray):
    """A function of the day's liquidity multiplier: selling the closed-out accounts' collateral (at its stressed
    price) costs sigma x sqrt(Q / V) x Q per asset, and moves the asset's price down by sigma x sqrt(Q / V): every
    survivor holding it sees its collateral fall (the depeg spiral's step), and some may become uncovered."""
    terms, shock, units = report.terms, report.shocks[s], report.book.collateral
    stressed = terms.price * shock.price_ratio
    sellable = ~shock.frozen & np.isfinite(terms.adv_usd) & (terms.adv_usd > 0)
    value = units[closed].sum(axis=0) * stressed
    others = ~closed
    covered_before = report.losses.uncovered[s] == 0

    def sell(multiplier: float) -> dict:
        volume = np.where(sellable, terms.adv_usd * multiplier, np.inf)
        impact = np.where(sellable & (value > 0), terms.sigma * np.sqrt(value / volume), 0.0)
        fall = (units * stressed * impact * (1.0 - shock.haircut)).sum(axis=1) * others  # [accounts], survivors'
        short = others & covered_before & (report.losses.loss[s] > report.losses.collateral[s] - fall)
        newly = list(np.array(report.accounts)[short])
        prices = {name: float(stressed[j] * (1.0 - impact[j])) for j, name in enumerate(report.assets)
                  if value[j] > 0 and not shock.frozen[j]}
        return {"cost": usd(float((impact * value).sum())), "prices": prices, "fall": usd(float(fall.sum())),
                "uncovered": newly}

    return sell
