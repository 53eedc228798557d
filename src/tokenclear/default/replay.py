"""A member's default under a stress scenario, off chain: what is ported, what is closed out and at what cost on
each weekday, and which layers of the waterfall pay for it (the adapter around :mod:`.closeout` and
:mod:`.waterfall`, on the stress run of :mod:`tokenclear.stress.run`).

Porting rule: a customer account whose own collateral after the scenario covers its stress loss is ported to a
surviving member with its collateral (it costs the default fund nothing); the house account and any customer
account its collateral does not cover are closed out in the market.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from tokenclear import runner
from tokenclear.default import auction, closeout, waterfall
from tokenclear.errors import InputError
from tokenclear.settings import Settings
from tokenclear.stress.run import stress, usd


@dataclass(frozen=True)
class CloseOut:
    day: str
    cost: Decimal  # what closing the positions out costs, USD: the auction's price per lot, or the market's
    days: int  # days from the default until the last factor is closed out
    waited: list[str]  # factors whose market is closed that day
    loss: Decimal  # position loss under the scenario plus both costs
    waterfall: waterfall.Waterfall
    collateral_cost: Decimal = Decimal(0)  # market impact of selling the defaulter's collateral, USD
    prices_after_sale: dict[str, float] | None = None  # asset -> the price it sells at (the spiral's step); a
    # frozen asset cannot be sold and has none
    survivors_collateral_fall: Decimal = Decimal(0)  # what the sale takes off the survivors' collateral, USD
    newly_uncovered: list[str] | None = None  # survivors' accounts the fall leaves uncovered
    market_cost: Decimal = Decimal(0)  # the market impact of closing out every lot in the market, USD
    lots: list[auction.Lot] = field(default_factory=list)  # the auction, one lot per factor
    outage_hours: float = 0.0  # how long the scenario's outages hold the close-out back (feeds, the chain)
    outage_cost: Decimal = Decimal(0)  # the 99% adverse move of what waits for them, USD


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
    lot_instruments: dict[str, list[str]] = field(default_factory=dict)  # factor -> instruments of its lot


def replay(settings: Settings, *, scenario: str, member: str, days: list[str], positions: Path | None = None,
           collateral: Path | None = None, as_of: str | None = None, skin_in_the_game: Decimal = Decimal(0),
           assessment_multiple: Decimal = Decimal(1), excluded: tuple[str, ...] = (),
           appetite: dict[str, float] | None = None) -> DefaultReplay:
    """``excluded``: members that may not bid (in default); ``appetite``: each bidder's risk appetite in [0, 1]
    (default :data:`APPETITE`); a bidder's capacity is :data:`CAPACITY_MULTIPLE` x its collateral after the
    scenario, in USD of exposure."""
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
    # the bidders: the survivors' house accounts, each with its capacity, appetite and own exposure per factor
    house = np.array(["HOUSE" in account for account in report.accounts])
    bidder_groups = [g for g, group in enumerate(report.groups) if group != member and group not in excluded
                     and (house & (report.book.group == g)).any()]
    bidders = [report.groups[g] for g in bidder_groups]
    # each group's house exposure per factor and collateral after stress, summed over its accounts at once
    house_exposure = np.zeros((len(report.accounts), factors))
    house_exposure[house] = closeout.exposures(report.book.resolved, report.book.quantity[house], factors)
    own = report.by_group(house_exposure.T).T[bidder_groups]  # [bidders, factors]
    capacity = CAPACITY_MULTIPLE * report.by_group(kept[None, :])[0][bidder_groups]
    appetites = np.array([(appetite or {}).get(name, APPETITE) for name in bidders])
    prices = auction.bids(exposure, sigma, own, capacity, appetites)
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
        lots = auction.award(context.factors.names, exposure, cost, prices, bidders, capacity)
        paid = sum((usd(lot.price) for lot in lots), Decimal(0))
        waited = outage_cost(chosen, exposure, sigma, report, s, closed)
        total = position_loss + paid + sold["cost"] + waited  # the loss the waterfall meets, to the cent
        flow = waterfall.run(total, margin=margin, own_contribution=contributions.get(member, Decimal(0)),
                             skin_in_the_game=skin_in_the_game, survivors=survivors,
                             assessment_multiple=assessment_multiple, vm_gains=gains)
        results.append(CloseOut(day, paid, needed,
                                [name for name, w in zip(context.factors.names, wait, strict=True)
                                 if w > 0 and size[context.factors.names.index(name)] > 0], total, flow,
                                sold["cost"], sold["prices"], sold["fall"], sold["uncovered"],
                                sum((usd(c) for c in cost[exposure != 0]), Decimal(0)), lots,
                                max(chosen.hours("feed_outage"), chosen.hours("chain_outage")), waited))
    accounts = np.array(report.accounts)
    return DefaultReplay(scenario, member, report.as_of, list(accounts[ported]), list(accounts[closed]),
                         position_loss, margin, report.fund, results, list(dict.fromkeys(notes)),
                         [name for name, frozen in zip(report.assets, report.shocks[s].frozen, strict=True) if frozen],
                         gains, lot_instruments(report, closed))


def outage_cost(scenario, exposure: np.ndarray, sigma: np.ndarray, report, s: int, closed: np.ndarray) -> Decimal:
    """USD the scenario's outages add to the loss: with the price feeds silent for H hours (an exchange halted)
    nothing can be priced, auctioned or traded, so the positions wait and may move by their 99% adverse move over
    H hours, ``2.326 x sigma x sqrt(H / 24) x |E|`` per factor (no offset between factors: conservative); with the
    chain unable to settle for H hours the collateral can be neither seized nor sold, and its non-cash part may
    fall by as much over H hours (``sigma`` of each asset's price series)."""
    feed, chain = scenario.hours("feed_outage"), scenario.hours("chain_outage")
    cost = 0.0
    if feed > 0:
        cost += float((auction.Z_99 * sigma * np.sqrt(feed / 24.0) * np.abs(exposure)).sum())
    if chain > 0:
        terms, shock = report.terms, report.shocks[s]
        value = report.book.collateral[closed].sum(axis=0) * terms.price * shock.price_ratio
        cost += float((auction.Z_99 * terms.sigma * np.sqrt(chain / 24.0) * value).sum())
    return usd(cost)


def lot_instruments(report, closed: np.ndarray) -> dict[str, list[str]]:
    """Each factor's instruments that the closed-out accounts hold: the lot auctioned for it."""
    resolved, names = report.book.resolved, report.context.factors.names
    held = (report.book.quantity[closed] != 0).any(axis=0)
    out: dict[str, list[str]] = {}
    for j in np.flatnonzero(held):
        out.setdefault(names[resolved.underlying_index[j]], []).append(resolved.names[j])
    return out


#: A bidder's capacity: this many times its collateral after the scenario, in USD of delta exposure (a member
#: carries several times its margin in exposure); its risk appetite when none is given (an assumption, stated).
CAPACITY_MULTIPLE = 10.0
APPETITE = 0.5


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
