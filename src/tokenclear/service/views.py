"""What the API and the dashboard show, read from the book and the chain, scoped to who asks: a member sees only
its own rows (an account of another member is "not found", never "forbidden", so its existence does not leak).
Money is decimal text (USD, two decimals), token amounts are integer base units as text; never floats, except
prices and haircut fractions that are floats in the risk core and on chain (price_e8 / 1e8, bps / 1e4)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
from sqlalchemy import select

from tokenclear import money
from tokenclear.clearing import calls as call_states
from tokenclear.clearing.coverage import MICRO
from tokenclear.clearing.system import recorded_deployment
from tokenclear.collateral.valuation import post_haircut_micro
from tokenclear.default.fund import FUND_SEGREGATION
from tokenclear.service.auth import Principal
from tokenclear.service.core import Service
from tokenclear.store import queries
from tokenclear.store.models import (
    Account,
    AuditEntry,
    CallEvent,
    Cycle,
    DefaultCase,
    FundSizing,
    Holding,
    Instruction,
    MarginCall,
    Member,
    Position,
    PriceQuote,
    Reconciliation,
    ReconciliationBreak,
    Requirement,
    ServiceEvent,
)
from tokenclear.store.queries import utc

CENT = Decimal("0.01")


class NotFound(LookupError):
    """A row that does not exist, or that the caller may not see (404)."""


class Forbidden(PermissionError):
    """A role that may not do this (403)."""


def iso(moment) -> str | None:
    return None if moment is None else utc(moment).isoformat()


def usd(value: Decimal | int | str) -> str:
    return str(Decimal(value).quantize(CENT))


def account_of(session, principal: Principal, account_id: str) -> Account:
    """The account if the caller may see it."""
    account = session.get(Account, account_id)
    if account is None or (not principal.reads_all and account.member_id != principal.member):
        raise NotFound(f"no account '{account_id}'")
    return account


def visible_ids(session, principal: Principal, account_id: str | None = None) -> list[str]:
    """The ids of the accounts the caller may see (one query, no ORM objects)."""
    if account_id is not None:
        return [account_of(session, principal, account_id).id]
    query = select(Account.id).order_by(Account.id)
    if not principal.reads_all:
        query = query.where(Account.member_id == principal.member)
    return list(session.scalars(query))


def visible_accounts(session, principal: Principal, account_id: str | None = None) -> list[Account]:
    if account_id is not None:
        return [account_of(session, principal, account_id)]
    query = select(Account).order_by(Account.id)
    if not principal.reads_all:
        query = query.where(Account.member_id == principal.member)
    return list(session.scalars(query))


# ---- members, accounts, positions --------------------------------------------------------------------------
def members(service: Service, principal: Principal) -> list[dict]:
    with service.store.session() as session:
        query = select(Member).order_by(Member.id)
        if not principal.reads_all:
            query = query.where(Member.id == principal.member)
        defaulted = queries.members_in_default(session)
        return [{"id": m.id, "name": m.name, "group": m.group_name, "wallet": m.wallet,
                 "in_default": m.id in defaulted} for m in session.scalars(query)]


def accounts(service: Service, principal: Principal, account_id: str | None = None) -> list[dict]:
    with service.store.session() as session:
        rows = visible_accounts(session, principal, account_id)
        latest = _latest_requirements(session, None if principal.reads_all and account_id is None
                                      else [a.id for a in rows])
        defaulted = queries.accounts_in_default(session, None if principal.reads_all and account_id is None
                                                else [a.id for a in rows])
        out = []
        for a in rows:
            req = latest.get(a.id)
            out.append({"id": a.id, "member": a.member_id, "segregation": a.segregation, "onchain_id": a.onchain_id,
                        "in_default": a.id in defaulted,
                        "requirement_usd": None if req is None else usd(req.requirement),
                        "collateral_usd": None if req is None else usd(req.collateral),
                        "coverage_usd": None if req is None else usd(req.coverage)})
        return out


def positions(service: Service, principal: Principal, account_id: str | None = None) -> list[dict]:
    with service.store.session() as session:
        ids = visible_ids(session, principal, account_id)
        rows = session.scalars(select(Position).where(Position.account_id.in_(ids))
                               .order_by(Position.account_id, Position.instrument))
        return [{"account": p.account_id, "instrument": p.instrument, "quantity": int(p.quantity)} for p in rows]


# ---- requirements ------------------------------------------------------------------------------------------
def _latest_requirements(session, ids: list[str] | None = None) -> dict[str, Requirement]:
    """The last closed cycle's requirement rows (of ``ids`` only, if given), without loading the cycle's detail."""
    last = session.scalar(select(Cycle.id).where(Cycle.status == "closed").order_by(Cycle.at.desc()))
    if last is None:
        return {}
    query = select(Requirement).where(Requirement.cycle_id == last)
    if ids is not None:
        query = query.where(Requirement.account_id.in_(ids))
    return {r.account_id: r for r in session.scalars(query)}


def requirements(service: Service, principal: Principal, account_id: str | None = None) -> dict:
    """Each visible account's requirement in the last cycle, the collateral that counted, its cover, the
    holiday add-on within the requirement, and the change of its shortfall since the cycle before by driver."""
    with service.store.session() as session:
        last = queries.last_closed_cycle(session)
        ids = visible_ids(session, principal, account_id)
        if last is None:
            return {"cycle": None, "accounts": []}
        rows = {r.account_id: r for r in queries.requirements_of(session, last.id)}
        holiday, explained = last.detail.get("holiday", {}), last.detail.get("drivers", {})
        worst = last.detail.get("worst", {})
        out = []
        for account in ids:
            row = rows.get(account)
            if row is None:
                continue
            out.append({"account": account, "requirement_usd": usd(row.requirement),
                        "collateral_usd": usd(row.collateral), "coverage_usd": usd(row.coverage),
                        "holiday_addon_usd": usd(holiday.get(account, "0")),
                        "worst_scenario": worst.get(account),
                        "drivers_usd": {name: usd(value) for name, value in explained.get(account, {}).items()}})
        return {"cycle": cycle_head(last), "accounts": out}


def requirement_history(service: Service, principal: Principal, account_id: str | None = None) -> list[dict]:
    """Per closed cycle after the opening, the visible accounts' summed requirement and counted collateral (USD)."""
    with service.store.session() as session:
        ids = set(visible_ids(session, principal, account_id))
        cycles = list(session.scalars(select(Cycle).where(Cycle.status == "closed", Cycle.kind != "opening")
                                      .order_by(Cycle.at)))  # the opening values the book before its pledges
        out = []
        for cycle in cycles:
            rows = [r for r in queries.requirements_of(session, cycle.id) if r.account_id in ids]
            out.append({**cycle_head(cycle),
                        "requirement_usd": usd(sum((r.requirement for r in rows), Decimal(0))),
                        "collateral_usd": usd(sum((r.collateral for r in rows), Decimal(0)))})
        return out


def cycle_head(cycle: Cycle) -> dict:
    return {"key": cycle.key, "at": iso(cycle.at), "kind": cycle.kind, "as_of": cycle.detail.get("date")}


def cycles(service: Service, principal: Principal, sessions: Callable[[np.datetime64], list[str]] | None = None
           ) -> list[dict]:
    """Every cycle with its totals: VM both ways and the guarded prices (members see the book's prices, not
    other members' figures); with ``sessions`` (the scheduler's), the product calendars whose session of the
    cycle's date it closed (the others' products kept their last close)."""
    with service.store.session() as session:
        out = []
        for cycle in session.scalars(select(Cycle).order_by(Cycle.at)):
            entry = {**cycle_head(cycle), "status": cycle.status, "prices": cycle.detail.get("prices", {}),
                     "warnings": cycle.detail.get("warnings", [])}
            if sessions is not None and entry["as_of"]:
                entry["sessions_closed"] = sessions(np.datetime64(entry["as_of"], "D"))
            if principal.reads_all:
                entry["vm_paid_by_members_usd"] = cycle.detail.get("vm_paid_by_members")
                entry["vm_paid_to_members_usd"] = cycle.detail.get("vm_paid_to_members")
            out.append(entry)
        return out


# ---- collateral --------------------------------------------------------------------------------------------
def token_terms(service: Service) -> dict[str, dict]:
    """Each token as the vault values it now: price (USD per whole token), haircut, eligibility, decimals."""
    with service.lock:
        out = {}
        terms = service.ledger.assets_parameters([token.symbol for token in service.workflow.tokens])
        for token in service.workflow.tokens:
            a = terms[token.symbol]
            out[token.symbol] = {"asset": token.asset, "price_usd": a.price_e8 / 1e8, "price_e8": a.price_e8,
                                 "haircut_bps": a.haircut_bps, "eligible": a.eligible, "decimals": a.decimals}
        return out


def collateral(service: Service, principal: Principal, account_id: str | None = None) -> dict:
    """Each visible account's holdings by token: units, market value, haircut, post-haircut value as the vault
    values it (each down to the cent; an account's totals are the sums of its rows), and the collateral that
    counts against the requirement (after concentration and wrong-way limits, the vault's exact value)."""
    terms = token_terms(service)
    with service.store.session() as session:
        rows = [a for a in visible_accounts(session, principal, account_id) if a.segregation != FUND_SEGREGATION]
        held = queries.holdings(session)
        latest = _latest_requirements(session, [a.id for a in rows])
        required = {a.id: latest[a.id].requirement if a.id in latest else Decimal(0) for a in rows}
        with service.lock:
            counted = service.workflow.counted(session, rows, required)
        out = []
        for a in rows:
            tokens, post_total, market_total = [], Decimal(0), Decimal(0)
            for symbol, t in terms.items():
                units = held.get((a.id, symbol), 0)
                if not units:
                    continue
                market = (Decimal(units * t["price_e8"]) / Decimal(10 ** (t["decimals"] + 8))).quantize(
                    CENT, rounding="ROUND_DOWN")
                post = (Decimal(post_haircut_micro(units, price_e8=t["price_e8"], haircut_bps=t["haircut_bps"],
                                                   decimals=t["decimals"])) / MICRO).quantize(
                    CENT, rounding="ROUND_DOWN") if t["eligible"] else Decimal("0.00")
                market_total, post_total = market_total + market, post_total + post  # totals add up the rows
                tokens.append({"symbol": symbol, "units": str(units), "price_usd": t["price_usd"],
                               "haircut_bps": t["haircut_bps"], "eligible": t["eligible"],
                               "market_value_usd": usd(market), "post_haircut_usd": usd(post)})
            out.append({"account": a.id, "member": a.member_id, "tokens": tokens,
                        "market_value_usd": usd(market_total), "post_haircut_usd": usd(post_total),
                        "counted_usd": usd(counted[a.id]), "kept_out_usd": usd(max(post_total - counted[a.id], 0)),
                        "requirement_usd": usd(required[a.id])})
        return {"tokens": terms, "accounts": out}


def concentration(service: Service, principal: Principal, account_id: str | None = None) -> dict:
    """How each visible account uses each concentration limit now: per limited group it holds (dimension issuer,
    kind or chain), the post-haircut value held in it, what the limit allows (its share of the last cycle's
    requirement), the share of the limit used and what it keeps from counting; and what general wrong-way risk
    keeps out. USD to the cent (half to even; the count itself rounds each account's cut up)."""
    with service.store.session() as session:
        rows = [a for a in visible_accounts(session, principal, account_id) if a.segregation != FUND_SEGREGATION]
        latest = _latest_requirements(session, [a.id for a in rows])
        required = {a.id: latest[a.id].requirement if a.id in latest else Decimal(0) for a in rows}
        with service.lock:
            count = service.workflow.count.counting(session, rows, required)
    def dollars(values: np.ndarray) -> np.ndarray:  # the float core's USD to Decimal, in the array's shape
        return np.array(money.amounts(values), dtype=object).reshape(values.shape)

    wrong_way = dollars(count.wrong_way)
    converted = [(dollars(use.held), dollars(use.allowed), dollars(use.kept_out)) for use in count.uses]
    out = []
    for i, a in enumerate(rows):
        limits = []
        for use, (held, allowed, kept) in zip(count.uses, converted, strict=True):
            for g, group in enumerate(use.groups):
                if use.held[i, g] <= 0:
                    continue  # a group the account holds nothing of uses none of its limit
                limit = use.allowed[i, g]
                limits.append({"dimension": use.dimension, "group": group,
                               "max_share_of_requirement": float(use.caps[g]), "held_usd": usd(held[i, g]),
                               "allowed_usd": usd(allowed[i, g]),
                               "use": float(use.held[i, g] / limit) if limit > 0 else None,
                               "kept_out_usd": usd(kept[i, g])})
        out.append({"account": a.id, "member": a.member_id, "requirement_usd": usd(required[a.id]),
                    "wrong_way_usd": usd(wrong_way[i]), "limits": limits})
    return {"accounts": out}


def haircut_history(service: Service) -> list[dict]:
    """Each closed cycle's price and haircut per token as the vault valued them (the USDC depeg shows here)."""
    with service.store.session() as session:
        out = []
        for cycle in session.scalars(select(Cycle).where(Cycle.status == "closed").order_by(Cycle.at)):
            terms = cycle.detail.get("terms", {})
            out.append({**cycle_head(cycle),
                        "tokens": {s: {"price_usd": p, "haircut": h} for s, (p, h) in terms.items()}})
        return out


def eligibility(service: Service) -> list[dict]:
    """Each token's asset at every clearing house schedule the reference lists, as of the policy date."""
    workflow = service.workflow
    schedules = workflow.parameters.reference.schedules
    date = np.datetime64(workflow.config.policy_date, "D")
    out = []
    for token in workflow.tokens:
        asset = workflow.registry.get(token.asset)
        for name in schedules.names:
            decision = schedules.decide(asset, name, date)
            out.append({"symbol": token.symbol, "asset": token.asset, "schedule": decision.schedule,
                        "eligible": decision.eligible, "why": decision.explain()})
    return out


def reviews(service: Service) -> list[dict]:
    with service.store.session() as session:
        return [{"key": e.key, "at": iso(e.at), **e.detail} for e in session.scalars(
            select(ServiceEvent).where(ServiceEvent.kind == "haircut-review").order_by(ServiceEvent.at))]


# ---- calls -------------------------------------------------------------------------------------------------
def calls(service: Service, principal: Principal, *, state: str | None = None,
          account_id: str | None = None) -> list[dict]:
    with service.store.session() as session:
        ids = visible_ids(session, principal, account_id)
        query = select(MarginCall).where(MarginCall.account_id.in_(ids)).order_by(MarginCall.issued_at.desc(),
                                                                                   MarginCall.id)
        if state is not None:
            if state not in call_states.STATES:
                raise ValueError(f"state '{state}': one of {', '.join(call_states.STATES)}")
            query = query.where(MarginCall.state == state)
        return [_call(c) for c in session.scalars(query)]


def call(service: Service, principal: Principal, key: str) -> dict:
    with service.store.session() as session:
        found = queries.call_by_key(session, key)
        if found is None:
            raise NotFound(f"no margin call '{key}'")
        account_of(session, principal, found.account_id)
        events = session.scalars(select(CallEvent).where(CallEvent.call_id == found.id).order_by(CallEvent.id))
        return {**_call(found), "history": [{"at": iso(e.at), "from": e.source, "to": e.target, "detail": e.detail}
                                            for e in events]}


def _call(c: MarginCall) -> dict:
    return {"key": c.key, "account": c.account_id, "amount_usd": usd(c.amount), "currency": c.currency,
            "state": c.state, "issued_at": iso(c.issued_at), "deadline": iso(c.deadline),
            "cured_usd": usd(c.cured_amount), "settled_at": iso(c.settled_at), "message_id": c.message_id}


# ---- instructions ------------------------------------------------------------------------------------------
def instructions(service: Service, principal: Principal, *, status: str | None = None, limit: int = 500) -> list[dict]:
    """The chain instructions (each with its idempotency key, status and transaction); a member sees those on
    its own accounts."""
    with service.store.session() as session:
        query = select(Instruction).order_by(Instruction.id.desc()).limit(limit if principal.reads_all else 50_000)
        if status is not None:
            query = query.where(Instruction.status == status)
        mine = None if principal.reads_all else {a.onchain_id for a in visible_accounts(session, principal)}
        out = []
        for row in session.scalars(query):
            onchain = row.params.get("onchain_id") if isinstance(row.params, dict) else None
            if mine is not None and onchain not in mine:
                continue
            out.append({"key": row.key, "kind": row.kind, "status": row.status, "params": row.params,
                        "result": row.result, "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)})
            if len(out) >= limit:
                break
        return out


# ---- prices, parameters, chain -----------------------------------------------------------------------------
def prices(service: Service) -> dict:
    with service.store.session() as session:
        last = queries.last_closed_cycle(session)
        quotes = session.scalars(select(PriceQuote).order_by(PriceQuote.id.desc()).limit(50))
        posted = [{"series": q.series, "source": q.source, "price": q.price, "at": iso(q.at),
                   "posted_by": q.posted_by} for q in quotes]
    return {"cycle": None if last is None else cycle_head(last),
            "guarded": {} if last is None else last.detail.get("prices", {}), "posted": posted}


def parameters(service: Service) -> dict:
    workflow = service.workflow
    config = workflow.config
    return {"schedule": config.schedule, "policy_date": str(config.policy_date),
            "call_threshold_usd": usd(config.call_threshold_usd),
            "call_deadline_s": int(config.deadline.total_seconds()), "grace_s": int(config.grace.total_seconds()),
            "intraday_threshold": service.settings.intraday_threshold,
            "limits": [{"dimension": caps.dimension, "group": group, "max_share_of_requirement": float(cap)}
                       for caps in workflow.count.limits.caps for group, cap in zip(caps.groups, caps.caps, strict=True)
                       if np.isfinite(cap)],
            "wrong_way_threshold": config.wrong_way_threshold, "wrong_way_exclude": config.wrong_way_exclude,
            "haircut_floor_bps": dict(workflow.parameters.haircut_floor_bps),
            "suspended": sorted(workflow.parameters.suspended), "tokens": token_terms(service)}


def chain(service: Service) -> dict:
    record = recorded_deployment(service.store)
    with service.lock:
        block = service.ledger.block_number()
    with service.store.session() as session:
        last = session.scalar(select(Reconciliation).order_by(Reconciliation.id.desc()))
        breaks = [] if last is None else [
            {"account": b.account_id, "asset": b.asset, "book_units": str(b.book_units),
             "chain_units": str(b.chain_units), "cause": b.cause}
            for b in session.scalars(select(ReconciliationBreak)
                                     .where(ReconciliationBreak.reconciliation_id == last.id))]
        settled = session.scalars(select(Instruction).where(Instruction.status == "confirmed")
                                  .order_by(Instruction.id.desc()).limit(25))
        recent = [{"key": i.key, "kind": i.kind, "tx": i.result.get("tx"), "block": i.result.get("block"),
                   "at": iso(i.updated_at)} for i in settled]
    return {"name": service.chain.name, "evm": service.chain.evm, "chain_id": record["chain_id"], "block": block,
            "contracts": record["addresses"], "operator": record.get("operator"),
            "reconciliation": None if last is None else {"at": iso(last.at), "block": last.block,
                                                         "accounts": last.accounts, "breaks": breaks,
                                                         "clean": not breaks},
            "recent": recent}


def default_fund(service: Service, principal: Principal) -> dict:
    with service.store.session() as session:
        rows = list(session.scalars(select(FundSizing).order_by(FundSizing.at)))
        def shown(row: FundSizing) -> dict:
            contributions = row.contributions if principal.reads_all else \
                {m: v for m, v in row.contributions.items() if m == principal.member}
            return {"id": row.id, "at": iso(row.at), "as_of": row.as_of, "fund_usd": usd(row.fund),
                    "scenario": row.scenario, "contributions_usd": contributions,
                    "members": row.detail.get("members") if principal.reads_all else None,
                    "largest_one": row.detail.get("largest_one") if principal.reads_all else None}
        return {"sizings": [shown(row) for row in rows]}


def defaults(service: Service, principal: Principal) -> list[dict]:
    with service.store.session() as session:
        query = select(DefaultCase).order_by(DefaultCase.opened_at)
        if not principal.reads_all:
            query = query.where(DefaultCase.member_id == principal.member)
        return [{"member": c.member_id, "scenario": c.scenario, "status": c.status, "opened_at": iso(c.opened_at),
                 "closed_at": iso(c.closed_at), "steps_done": len(c.done)} for c in session.scalars(query)]


def audit(service: Service, *, actor: str | None = None, limit: int = 200) -> list[dict]:
    with service.store.session() as session:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        return [{"at": iso(e.at), "actor": e.actor, "role": e.role, "method": e.method, "path": e.path,
                 "status": e.status_code, "idempotency_key": e.idempotency_key, "ms": round(e.milliseconds, 2)}
                for e in session.scalars(query)]


def holdings_total(service: Service) -> dict[str, int]:
    """Units per token over the book (exact integers)."""
    with service.store.session() as session:
        out: dict[str, int] = {}
        for h in session.scalars(select(Holding)):
            out[h.asset] = out.get(h.asset, 0) + int(h.units)
        return out
