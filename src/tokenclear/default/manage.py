"""A member's default managed on chain, crash-safe: the plan is computed once, stored with the case, and carried
out step by step; every step that touches the chain is an idempotent instruction (recorded before it is sent,
its key claimed on chain), every step in the book is one transaction that also marks the step done. A process
killed at any point and started again carries on from the stored plan: nothing is done twice, nothing lost.

The plan (priced by :func:`tokenclear.default.replay.replay` on the store's book written as stress files):

1. every margin account of the member is declared in default on chain;
2. porting: each customer account whose collateral after the scenario covers its stress loss moves to the
   receiving member, positions and collateral together: a customer account is opened for it there, its
   collateral ported inside the vault, its positions moved in the book;
3. the other accounts (house, and customers the collateral does not cover) are closed out: their collateral is
   seized to the CCP's liquidation wallet (the default manager's), the non-stablecoin part sold to the liquidity
   provider by DvP against the stablecoin at the scenario's price less the square-root impact of the sale; their
   positions pass to the liquidity provider's account, which is paid the close-out cost (impact on the day);
4. the waterfall meets the loss (the positions' loss under the scenario plus the close-out cost) in the
   stablecoin: the defaulter's margin (what seizure and sale raised), its default-fund contribution, the CCP's
   skin in the game, the survivors' contributions pro rata, then assessments paid by the survivors' wallets
   (each its own instruction: one that is refused is reported, not retried in a loop); the liquidation wallet
   pays the positions' loss to the CCP's settlement wallet (which owes it to the survivors as variation margin)
   and the close-out cost to the liquidity provider; margin left over goes back to the defaulter's wallet.
   Haircutting of variation-margin gains and partial tear-up are sized and recorded, not transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import structlog
from sqlalchemy import select

from tokenclear.clearing.instructions import InstructionFailed, WorkflowError
from tokenclear.clearing.onboarding import account_salt
from tokenclear.default import closeout, fund, snapshot, waterfall
from tokenclear.default.replay import replay
from tokenclear.ledger.ledger import CUSTOMER
from tokenclear.ledger.privacy import account_id
from tokenclear.settings import Settings
from tokenclear.store import queries
from tokenclear.store.models import Account, DefaultCase, Holding, Member, Position
from tokenclear.stress.run import usd

log = structlog.get_logger("tokenclear.default")
CASH = fund.FUND_TOKEN
MICRO = fund.MICRO
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Parties:
    """Who takes part besides the defaulter: the liquidity provider's wallet and book account (it buys the
    collateral and takes over the closed-out positions), the receiving member for ported customers (None: the
    first member not in default), the assessments' cap (times each survivor's contribution) and the bidders' risk
    appetite at the auction."""

    liquidity_provider: str
    liquidity_account: str
    port_to: str | None = None
    assessment_multiple: Decimal = Decimal(1)
    appetite: dict[str, float] | None = None  # bidders' risk appetite at the auction (default: replay.APPETITE)


def micro(amount: Decimal) -> int:
    return int((amount * MICRO).to_integral_value(rounding=ROUND_DOWN))


def usd_of(units: int) -> Decimal:
    return (Decimal(units) / MICRO).quantize(CENT, rounding=ROUND_DOWN)


def open_case(settings: Settings, workflow, member: str, scenario: str, parties: Parties, *, at: datetime,
              as_of: str | None = None) -> DefaultCase:
    """The stored case of ``member``'s default: its plan, computed now on the book as it stands (valued at
    ``as_of``, default: the date of the book's last cycle), or the plan stored when the case opened (a restart
    never plans again)."""
    with workflow.store.session() as session:
        case = session.get(DefaultCase, member)
        if case is not None:
            return case
        if session.get(Member, member) is None:
            raise WorkflowError(f"no member '{member}' in the book")
    workflow.sync()
    plan = _plan(settings, workflow, member, scenario, parties, at=at, as_of=as_of)
    with workflow.store.session() as session:
        if session.get(DefaultCase, member) is None:
            session.add(DefaultCase(member_id=member, scenario=scenario, status="open", plan=plan, done={},
                                    opened_at=at))
    with workflow.store.session() as session:
        return session.get(DefaultCase, member)


def _plan(settings: Settings, workflow, member: str, scenario: str, parties: Parties, *, at: datetime,
          as_of: str | None) -> dict:
    ledger, store = workflow.ledger, workflow.store
    day = closeout.WEEKDAYS[at.weekday()]
    with store.session() as session:
        as_of = as_of or queries.last_cycle_date(session)  # the closes the book was last valued at
        defaulted = queries.members_in_default(session) - {member}
        lp = session.get(Account, parties.liquidity_account)
        if lp is None:
            raise WorkflowError(f"no liquidity-provider account '{parties.liquidity_account}' in the book")
        lp_member = lp.member_id
    with snapshot.files(store, ledger, workflow.tokens) as (positions, collateral, digests):
        priced = replay(settings, scenario=scenario, member=member, days=[day], positions=positions,
                        collateral=collateral, as_of=as_of, excluded=(*sorted(defaulted), lp_member),
                        appetite=parties.appetite)
    (close,) = priced.closeouts
    asset_of = {token.symbol: token.asset for token in workflow.tokens}
    with store.session() as session:
        accounts = [a for a in session.scalars(select(Account).where(Account.member_id == member)
                                               .order_by(Account.id)) if a.segregation in snapshot.MARGIN_SEGREGATIONS]
        wallets = {m.id: m.wallet for m in session.scalars(select(Member))}
        holdings = {(h.account_id, h.asset): int(h.units) for h in session.scalars(select(Holding)) if int(h.units)}
        sizing = fund.latest(session)
        fund_held = {m: fund.held(session, m) for m in wallets}
        house = {}
        for a in session.scalars(select(Account).where(Account.segregation == "HOUSE").order_by(Account.id)):
            house.setdefault(a.member_id, a.id)
        fund_ids = {a.member_id: a.onchain_id for a in session.scalars(select(Account))
                    if a.segregation == fund.FUND_SEGREGATION}
    if not accounts:
        raise WorkflowError(f"{member} has no house or customer account")
    receiver = parties.port_to or _receiving_member(member, wallets, lp_member, defaulted)
    steps: list[dict] = []

    def step(key: str, kind: str, params: dict, what: str) -> None:
        steps.append({"key": f"dm:{member}:{key}", "kind": kind, "params": params, "what": what})

    liquidation = ledger.roles.default_manager
    for account in accounts:
        step(f"declare:{account.id}", "declare_default", {"onchain_id": account.onchain_id},
             f"declare {account.id} in default")
    salt = account_salt(store)
    for name in priced.ported:
        account = next(a for a in accounts if a.id == name)
        new = f"{receiver}-PORT-{name}"
        onchain = "0x" + account_id(salt, receiver, new).hex()
        step(f"open:{new}", "open_account", {"onchain_id": onchain, "wallet": wallets[receiver],
                                             "segregation": CUSTOMER}, f"open {new} at {receiver}")
        step(f"book:{new}", "book_account", {"account": new, "member": receiver, "onchain_id": onchain},
             f"record {new} in the book")
        for symbol in _held(holdings, name):
            step(f"port:{name}:{symbol}", "port", {"onchain_id": account.onchain_id, "symbol": symbol,
                                                   "units": holdings[(name, symbol)], "to_onchain_id": onchain},
                 f"port {holdings[(name, symbol)]} {symbol} units of {name} to {new}")
        step(f"positions:{name}", "book_positions", {"from": name, "to": new}, f"move {name}'s positions to {new}")
    raised = 0  # base units of the stablecoin the margin raises
    unsold: dict[str, int] = {}
    for name in priced.closed_out:
        account = next(a for a in accounts if a.id == name)
        for symbol in _held(holdings, name):
            units = holdings[(name, symbol)]
            step(f"seize:{name}:{symbol}", "seize", {"onchain_id": account.onchain_id, "symbol": symbol,
                                                     "units": units, "receiver": liquidation},
                 f"seize {units} {symbol} units of {name}")
            if symbol == CASH:
                raised += units
            else:
                unsold[symbol] = unsold.get(symbol, 0) + units
        for lot in close.lots:  # a lot won at auction goes to the winner's house account
            if lot.winner is not None:
                target = house[lot.winner]
                step(f"positions:{name}:{lot.factor}", "book_positions",
                     {"from": name, "to": target, "instruments": priced.lot_instruments[lot.factor]},
                     f"move {name}'s {lot.factor} lot to {target} (won at auction for {usd(lot.price)} USD)")
        step(f"positions:{name}", "book_positions", {"from": name, "to": parties.liquidity_account},
             f"close out {name}'s other positions to the liquidity provider ({parties.liquidity_account})")
    prices = close.prices_after_sale or {}
    frozen = []
    for symbol, units in unsold.items():
        price = prices.get(asset_of[symbol])
        if price is None:  # frozen by the scenario: kept in the liquidation wallet, worth nothing now
            frozen.append(symbol)
            continue
        places = ledger.asset_parameters(symbol).decimals
        cash = micro(Decimal(units).scaleb(-places) * Decimal(repr(price)))
        raised += cash
        step(f"sell:{symbol}", "dvp", {"asset": symbol, "seller": liquidation, "units": units, "cash": CASH,
                                       "buyer": parties.liquidity_provider, "cash_units": cash},
             f"sell {units} {symbol} units to the liquidity provider for {usd_of(cash)} USD ({price:.6g} a unit)")
    # close.cost: each lot at its auction price or the market's; close.outage_cost: what waits for the outages
    loss = priced.position_loss + close.cost + close.outage_cost
    # the survivors: not the defaulter, the CCP nor a member in default (its contribution is kept for its own)
    contributions = {m: usd_of(fund_held[m]) for m in wallets if m not in (member, fund.CCP) and m not in defaulted}
    flow = waterfall.run(loss, margin=usd_of(raised), own_contribution=usd_of(fund_held.get(member, 0)),
                         skin_in_the_game=usd_of(fund_held.get(fund.CCP, 0)),
                         survivors={m: v for m, v in contributions.items() if v > 0},
                         assessment_multiple=parties.assessment_multiple,
                         vm_gains={m: v for m, v in priced.vm_gains.items() if m in contributions})
    declared = accounts[0].onchain_id  # the default each fund payment is made towards
    margin_used, own, skin, survivors, assessed, vm_cut = flow.layers
    for payer, amount, label in ((member, own.used, "own contribution"), (fund.CCP, skin.used, "skin in the game"),
                                 *((m, v, "contribution") for m, v in survivors.by_member.items())):
        if amount > 0:
            step(f"fund:{payer}", "apply_fund", {"onchain_id": fund_ids[payer], "symbol": CASH, "units": micro(amount),
                                                 "defaulted_onchain_id": declared, "receiver": liquidation},
                 f"use {amount} USD of {payer}'s default fund ({label})")
    for payer, amount in assessed.by_member.items():
        if amount > 0:
            step(f"assess:{payer}", "settle_payments", {"legs": [[wallets[payer], liquidation, micro(amount)]],
                                                        "symbol": CASH},
                 f"assess {payer} {amount} USD")
    # the liquidation wallet pays the liquidity provider first (it took the positions at that cost), then the
    # positions' loss to the CCP's settlement wallet; a gain of the positions is owed to the defaulter: the
    # settlement wallet pays it in; what is left goes back to the defaulter's wallet
    moved = priced.position_loss + close.outage_cost  # the positions' loss, the outage's included
    gain = max(-moved, Decimal(0))
    available = usd_of(raised) + own.used + skin.used + survivors.used + assessed.used + gain
    won: dict[str, Decimal] = {}
    for lot in close.lots:
        if lot.winner is not None:
            won[lot.winner] = won.get(lot.winner, Decimal(0)) + usd(lot.price)
    to_lp = min(close.cost - sum(won.values(), Decimal(0)), available)
    left = available - to_lp
    to_winners = {}
    for winner, price in sorted(won.items()):  # the winners next, in member order, as far as it goes
        to_winners[winner] = min(price, left)
        left -= to_winners[winner]
    to_ccp = min(max(moved, Decimal(0)), left)
    surplus = raised + micro(available - usd_of(raised)) - micro(to_lp) - micro(to_ccp) \
        - sum(micro(amount) for amount in to_winners.values())
    for key, payer, target, units, what in (
            ("pay:gain", ledger.operator, liquidation, micro(gain),
             "the positions' gain under the scenario, owed to the defaulter, from the CCP's settlement wallet"),
            *((f"pay:auction:{winner}", liquidation, wallets[winner], micro(amount), f"pay {winner} its winning bids")
              for winner, amount in to_winners.items()),
            ("pay:closeout", liquidation, parties.liquidity_provider, micro(to_lp),
             "pay the close-out cost to the liquidity provider"),
            ("pay:loss", liquidation, ledger.operator, micro(to_ccp),
             "pay the positions' loss to the CCP's settlement wallet (owed to survivors)"),
            ("pay:surplus", liquidation, wallets[member], surplus, "return what is left to the defaulter")):
        if units > 0:
            step(key, "settle_payments", {"legs": [[payer, target, units]], "symbol": CASH},
                 f"{what}: {Decimal(units) / MICRO} USD")
            if key in ("pay:loss", "pay:surplus"):  # an assessment the chain refuses is not there to pay
                steps[-1]["less_refused_assessments"] = True
    return {"scenario": scenario, "day": day, "as_of": priced.as_of, "receiver": receiver,
            "ported": priced.ported, "closed_out": priced.closed_out, "loss": str(loss),
            "position_loss": str(priced.position_loss), "closeout_cost": str(close.cost),
            "days_to_close_out": close.days, "raised": str(usd_of(raised)), "frozen": frozen,
            "market_closeout_cost": str(close.market_cost), "outage_hours": close.outage_hours,
            "outage_cost": str(close.outage_cost),
            "auction": [{"lot": lot.factor, "exposure": round(lot.exposure, 2), "reserve": str(usd(lot.reserve)),
                         "winner": lot.winner, "price": str(usd(lot.price)),
                         "bids": [{"member": b.member, "price": str(usd(b.price)), "won": b.won} for b in lot.bids]}
                        for lot in close.lots],
            "layers": [{"name": layer.name, "available": str(layer.available), "used": str(layer.used),
                        "by_member": {m: str(v) for m, v in layer.by_member.items() if v > 0}}
                       for layer in flow.layers],
            "tear_up": str(flow.tear_up), "surplus": str(Decimal(surplus) / MICRO), "inputs": digests,
            "sizing": None if sizing is None else sizing.id, "notes": priced.notes, "steps": steps}


def _held(holdings: dict[tuple[str, str], int], account: str) -> list[str]:
    return sorted(symbol for (name, symbol) in holdings if name == account)


def _receiving_member(member: str, wallets: dict[str, str], liquidity_member: str, defaulted: set[str]) -> str:
    """The receiving member when none is named: the first member by id that is not in default (nor the
    defaulter, the liquidity provider or the CCP)."""
    survivors = sorted(m for m in wallets if m not in (member, fund.CCP, liquidity_member) and m not in defaulted)
    if not survivors:
        raise WorkflowError("no surviving member to port to")
    return survivors[0]


def run(workflow, member: str) -> DefaultCase:
    """Carry out every step of the stored plan not done yet, in order; close the case and sync the book."""
    with workflow.store.session() as session:
        case = session.get(DefaultCase, member)
        if case is None:
            raise WorkflowError(f"no default case for {member}: open it first")
        steps, done = case.plan["steps"], dict(case.done)
    for one in steps:
        if one["key"] in done:
            continue
        if one["kind"] == "book_account":
            result = _book_account(workflow, member, one)
        elif one["kind"] == "book_positions":
            workflow.sync()
            result = _book_positions(workflow, member, one)
        else:
            result = _instruction(workflow, member, one, done)
            _mark(workflow, member, one["key"], result)
        done[one["key"]] = result
    workflow.sync()
    with workflow.store.session() as session:
        case = session.get(DefaultCase, member)
        if case.status != "closed":
            case.status, case.closed_at = "closed", workflow.clock.now()
    with workflow.store.session() as session:
        return session.get(DefaultCase, member)


def _instruction(workflow, member: str, one: dict, done: dict) -> dict:
    """Send one step's instruction (a replay of a confirmed key returns its first result). A payment out of the
    liquidation wallet pays less by what refused assessments did not bring in: the loss's leg first, then the
    surplus's; an assessment the chain refuses is reported, not retried (the member is pursued)."""
    params = one["params"]
    less = 0
    if one.get("less_refused_assessments"):
        refused = sum(micro(Decimal(r["amount"])) for r in done.values() if "refused" in r)
        refused -= sum(int(r["paid_less"]) for r in done.values() if "paid_less" in r)
        payer, target, units = params["legs"][0]
        less = min(int(units), refused)
        if less == int(units):
            return {"paid_less": less, "sent": False}
        params = {**params, "legs": [[payer, target, int(units) - less]]}
    try:
        result = workflow.instructions.execute(one["key"], one["kind"], params)
    except InstructionFailed as error:
        if not one["key"].startswith(f"dm:{member}:assess:"):
            raise
        return {"refused": str(error), "amount": str(usd_of(int(params["legs"][0][2])))}
    return {**result, "paid_less": less} if less else result


def _mark(workflow, member: str, key: str, result: dict, session=None) -> None:
    def mark(s) -> None:
        case = s.get(DefaultCase, member)
        case.done = {**case.done, key: result}

    if session is not None:
        mark(session)
    else:
        with workflow.store.session() as s:
            mark(s)


def _book_account(workflow, member: str, one: dict) -> dict:
    params = one["params"]
    with workflow.store.session() as session:  # the account and the step's mark in one transaction
        if session.get(Account, params["account"]) is None:
            session.add(Account(id=params["account"], member_id=params["member"], segregation="CUSTOMER",
                                onchain_id=params["onchain_id"]))
        _mark(workflow, member, one["key"], {"account": params["account"]}, session)
    return {"account": params["account"]}


def _book_positions(workflow, member: str, one: dict) -> dict:
    """Move every position of one account to another, and mark the step, in one transaction."""
    source, target, only = one["params"]["from"], one["params"]["to"], one["params"].get("instruments")
    moved = 0
    with workflow.store.session() as session:
        for row in list(session.scalars(select(Position).where(Position.account_id == source))):
            if only is not None and row.instrument not in only:
                continue
            existing = session.get(Position, (target, row.instrument))
            if existing is None:
                session.add(Position(account_id=target, instrument=row.instrument, quantity=row.quantity))
            else:
                existing.quantity += row.quantity
            session.delete(row)
            moved += 1
        session.flush()
        for row in list(session.scalars(select(Position).where(Position.account_id == target,
                                                                Position.quantity == 0))):
            session.delete(row)
        _mark(workflow, member, one["key"], {"positions": moved}, session)
    return {"positions": moved}
