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
from tokenclear.stress.run import member_of, stress, usd


@dataclass(frozen=True)
class CloseOut:
    day: str
    cost: Decimal  # market impact of the close-out, USD
    days: int  # days from the default until the last factor is closed out
    waited: list[str]  # factors whose market is closed that day
    loss: Decimal  # position loss under the scenario plus both costs
    waterfall: waterfall.Waterfall
    collateral_cost: Decimal = Decimal(0)  # market impact of selling the defaulter's collateral, USD
    prices_after_sale: dict[str, float] | None = None  # asset -> its price after the sale (the spiral's step)
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
    mine = [a for a, account in enumerate(report.accounts) if member_of(account) == member]
    ported = [a for a in mine if "HOUSE" not in report.accounts[a] and loss[a] <= kept[a]]
    closed = [a for a in mine if a not in ported]
    contributions = dict(zip(report.groups, report.contributions, strict=True))
    survivors = {group: amount for group, amount in contributions.items() if group != member}
    gains = {}
    for a, account in enumerate(report.accounts):  # VM owed to survivors under the scenario (their gains)
        if member_of(account) != member and loss[a] < 0:
            gains[member_of(account)] = gains.get(member_of(account), Decimal(0)) + usd(-loss[a])

    # the close-out: delta-equivalent exposure per factor of the accounts closed out, traded on each day
    config = runner.risk_setup(settings, stress_period="none").config
    inputs, context = runner.load_context(settings, config, positions=positions, instruments=None, prices=None,
                                          as_of=report.as_of)
    book_rows = [context.book.accounts.index(report.accounts[a]) for a in closed
                 if report.accounts[a] in context.book.accounts]
    factors = len(context.factors.names)
    exposure = closeout.exposures(context.resolved, context.book.quantity[book_rows].astype(float), factors).sum(0)
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
    position_loss = usd(loss[closed].sum()) if closed else Decimal(0)
    margin = usd(kept[closed].sum()) if closed else Decimal(0)
    spiral = collateral_sale(report, s, closed)
    results = []
    for day in days:
        index = closeout.WEEKDAYS.index(day)
        wait = closeout.next_open(profiles, index)
        multiplier = np.full(factors, multiplier_for(chosen, day))
        trading = np.array([profiles[f, (index + max(int(wait[f]), 0)) % 7] for f in range(factors)])
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
    return DefaultReplay(scenario, member, report.as_of, [report.accounts[a] for a in ported],
                         [report.accounts[a] for a in closed], position_loss, margin, report.fund, results,
                         list(dict.fromkeys(notes)))


def multiplier_for(scenario, day: str) -> float:
    """The scenario's liquidity multiplier on a weekday (the product of its shocks for that day and for *)."""
    value = 1.0
    for shock in scenario.of("liquidity"):
        if shock.target in ("*", day):
            value *= shock.value
    return value


def collateral_sale(report, s: int, closed: list[int]):
    """A function of the day's liquidity multiplier: selling the closed-out accounts' collateral (at its stressed
    price) costs sigma x sqrt(Q / V) x Q per asset, and moves the asset's price down by sigma x sqrt(Q / V): every
    survivor holding it sees its collateral fall (the depeg spiral's step), and some may become uncovered."""
    terms, shock, units = report.terms, report.shocks[s], report.units
    stressed = terms.price * shock.price_ratio
    sellable = ~shock.frozen & np.isfinite(terms.adv_usd) & (terms.adv_usd > 0)
    value = units[closed].sum(axis=0) * stressed if closed else np.zeros(len(report.assets))
    others = [a for a in range(len(report.accounts)) if a not in closed]
    uncovered_before = report.losses.uncovered[s]

    def sell(multiplier: float) -> dict:
        volume = np.where(sellable, terms.adv_usd * multiplier, np.inf)
        impact = np.where(sellable & (value > 0), terms.sigma * np.sqrt(value / volume), 0.0)
        fall = (units[others] * stressed * impact * (1.0 - shock.haircut)).sum(axis=1)  # [survivor accounts]
        after = report.losses.collateral[s, others] - fall
        newly = [report.accounts[a] for a, left in zip(others, after, strict=True)
                 if report.losses.loss[s, a] > left and uncovered_before[a] == 0]
        prices = {name: float(stressed[j] * (1.0 - impact[j])) for j, name in enumerate(report.assets)
                  if value[j] > 0 and impact[j] > 0}
        return {"cost": usd(float((impact * value).sum())), "prices": prices, "fall": usd(float(fall.sum())),
                "uncovered": newly}

    return sell
