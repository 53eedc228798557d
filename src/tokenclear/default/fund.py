"""The default fund on chain: its sizing (Cover 2 over the stress library, on the book as it stands) stored with
each member's contribution, and the fund held in the vault in default-fund accounts (one a member, and one for
the CCP's own capital, skin in the game), in the settlement stablecoin.

Rule (stated in every sizing): the fund is the largest, over the scenarios, sum of the two largest uncovered
stress losses of member groups (PFMI Principle 4, Cover 2); each member contributes pro rata to its own
largest uncovered loss over the scenarios, at least ``minimum`` (EMIR Art. 42 lets a CCP set a minimum
contribution). A sizing is run monthly (the scheduler of ``tokenclear serve``) and on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from tokenclear.clearing.coverage import MICRO
from tokenclear.clearing.instructions import Instructions
from tokenclear.clearing.onboarding import account_salt
from tokenclear.default import snapshot
from tokenclear.ledger.ledger import DEFAULT_FUND
from tokenclear.ledger.privacy import account_id
from tokenclear.settings import Settings
from tokenclear.store.models import Account, FundSizing, Holding, Member

FUND_TOKEN = "TUSD"  # contributions are held in the settlement stablecoin, counted at face
FUND_SEGREGATION = "FUND"
CCP = "CCP"  # the clearing house's own default-fund account: skin in the game


def fund_account(member: str) -> str:
    return f"{member}-DF"


@dataclass(frozen=True)
class Sizing:
    id: int
    as_of: str
    fund: Decimal
    scenario: str
    members: tuple[str, str]
    contributions: dict[str, Decimal]


def size(settings: Settings, workflow, *, at: datetime, as_of: str | None = None, scenarios: str = "all",
         minimum: Decimal = Decimal(0)) -> Sizing:
    """Size the fund on the store's book and collateral (written to stress files first), store the sizing.
    ``as_of`` defaults to the date of the book's last closed cycle (the closes it was valued at), else the data's
    latest date. Members in default contribute nothing (their contribution is already in use)."""
    from tokenclear.store import queries
    from tokenclear.stress.run import stress

    with workflow.store.session() as session:
        as_of = as_of or queries.last_cycle_date(session)
        defaulted = queries.members_in_default(session)
        members = [m.id for m in session.scalars(select(Member).order_by(Member.id))
                   if m.id != CCP and m.id not in defaulted]
    with snapshot.files(workflow.store, workflow.ledger, workflow.tokens) as (positions, collateral, digests):
        report = stress(settings, scenarios=scenarios, positions=positions, collateral=collateral, as_of=as_of)
    by_group = dict(zip(report.groups, report.contributions, strict=True))
    contributions = {member: max(by_group.get(member, Decimal(0)), minimum) for member in members}
    detail = {"members": list(report.fund_groups), "inputs": digests, "minimum": str(minimum),
              "rule": "pro rata to each member's largest uncovered stress loss over the scenarios",
              "largest_one": largest_one(report)}
    with workflow.store.session() as session:
        row = FundSizing(at=at, as_of=report.as_of, fund=report.fund, scenario=report.fund_scenario,
                         contributions={m: str(v) for m, v in contributions.items()}, detail=detail)
        session.add(row)
        session.flush()
        sizing_id = row.id
    return Sizing(sizing_id, report.as_of, report.fund, report.fund_scenario, report.fund_groups, contributions)


def largest_one(report) -> dict:
    """The largest uncovered stress loss of one member group over the scenarios (PQD 4.4.3; the Cover 2 fund is
    the two-member figure, 4.4.7): USD as text, the group and the scenario."""
    import numpy as np

    from tokenclear.stress.run import usd

    by_group = report.losses.by_group  # float64[scenarios, groups], USD
    if by_group.size == 0:
        return {"usd": "0.00", "member": None, "scenario": None}
    scenario, group = np.unravel_index(int(np.argmax(by_group)), by_group.shape)
    return {"usd": str(usd(by_group[scenario, group])), "member": report.groups[group],
            "scenario": report.scenarios[scenario].name}


def latest(session) -> FundSizing | None:
    return session.scalar(select(FundSizing).order_by(FundSizing.id.desc()))


def open_accounts(workflow, members: list[str], *, ccp_wallet: str) -> list[str]:
    """Open (idempotently) the default-fund account of each member and the CCP's; returns those opened."""
    instructions: Instructions = workflow.instructions
    salt = account_salt(workflow.store)
    opened = []
    with workflow.store.session() as session:
        if session.get(Member, CCP) is None:
            session.add(Member(id=CCP, name="the clearing house (skin in the game)", group_name=CCP,
                               wallet=ccp_wallet))
        wallets = {m.id: m.wallet for m in session.scalars(select(Member))}
    for member in [*members, CCP]:
        name = fund_account(member)
        onchain = "0x" + account_id(salt, member, name).hex()
        instructions.execute(f"fund:open:{name}", "open_account",
                             {"onchain_id": onchain, "wallet": wallets[member], "segregation": DEFAULT_FUND})
        with workflow.store.session() as session:
            if session.get(Account, name) is None:
                session.add(Account(id=name, member_id=member, segregation=FUND_SEGREGATION, onchain_id=onchain))
                opened.append(name)
    return opened


def held(session, member: str) -> int:
    """Base units of the fund token in a member's default-fund account (as the book has them)."""
    row = session.get(Holding, (fund_account(member), FUND_TOKEN))
    return 0 if row is None else int(row.units)


def due(session, sizing: FundSizing) -> dict[str, Decimal]:
    """USD each member must add (> 0) or may take back (< 0) to hold its contribution of ``sizing``."""
    return {member: Decimal(amount) - Decimal(held(session, member)) / MICRO
            for member, amount in sizing.contributions.items()}
