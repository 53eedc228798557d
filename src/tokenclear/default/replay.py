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
    loss: Decimal  # position loss under the scenario plus the cost
    waterfall: waterfall.Waterfall


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
           collateral: Path | None = None, skin_in_the_game: Decimal = Decimal(0),
           assessment_multiple: Decimal = Decimal(1)) -> DefaultReplay:
    for day in days:
        if day not in closeout.WEEKDAYS:
            raise InputError(f"'{day}' is not a weekday (mon..sun)", field="--days")
    report = stress(settings, scenarios="all", positions=positions, collateral=collateral,
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
    notes = list(report.notes)
    missing = [name for name, value in zip(context.factors.names, adv, strict=True) if not np.isfinite(value)
               and exposure[context.factors.names.index(name)] != 0]
    if missing:
        notes.append(f"no average daily volume for {', '.join(missing)} (concentration.csv): their close-out "
                     "cost is not counted")
    position_loss = usd(loss[closed].sum()) if closed else Decimal(0)
    margin = usd(kept[closed].sum()) if closed else Decimal(0)
    results = []
    for day in days:
        index = closeout.WEEKDAYS.index(day)
        wait = closeout.next_open(profiles, index)
        multiplier = np.ones(factors)
        for shock in chosen.of("liquidity"):
            if shock.target in ("*", day):
                multiplier *= shock.value
        trading = np.array([profiles[f, (index + max(int(wait[f]), 0)) % 7] for f in range(factors)])
        cost = closeout.impact_cost(exposure, np.nan_to_num(adv, nan=np.inf), sigma, trading, multiplier)
        cost = np.where(np.isfinite(cost), cost, 0.0)
        size = np.abs(exposure)
        per_day = np.where(np.isfinite(adv), np.maximum(participation, 1e-9) * np.nan_to_num(adv) * trading, np.inf)
        spread = np.where(size > 0, np.ceil(size / np.maximum(per_day, 1e-300)), 0)
        needed = int(np.max(np.where(size > 0, np.maximum(wait, 0) + spread, 0), initial=0))
        total = position_loss + usd(cost.sum())  # the loss the waterfall meets, to the cent
        flow = waterfall.run(total, margin=margin, own_contribution=contributions.get(member, Decimal(0)),
                             skin_in_the_game=skin_in_the_game, survivors=survivors,
                             assessment_multiple=assessment_multiple, vm_gains=gains)
        results.append(CloseOut(day, usd(cost.sum()), needed,
                                [name for name, w in zip(context.factors.names, wait, strict=True)
                                 if w > 0 and size[context.factors.names.index(name)] > 0], total, flow))
    return DefaultReplay(scenario, member, report.as_of, [report.accounts[a] for a in ported],
                         [report.accounts[a] for a in closed], position_loss, margin, report.fund, results,
                         list(dict.fromkeys(notes)))
