"""``tokenclear demo``: a deterministic replay of a real stress window from the shipped data.

A demo book of members (BTC, ETH and E-mini S&P futures; house accounts, some with customer
accounts) posts USDC-like stablecoin (TUSD), tokenized MMF shares (TMMF), tokenized T-bills (TBILL) and
wrapped ETH (WETH) into the vault. At each day's cycle (00:00 UTC after the day's closes, weekends included) prices go
through the oracle guard, haircuts are recalibrated as of that day and pushed on chain with the
prices, variation margin is paid both ways in one stablecoin batch, requirements are computed
(HS-VaR with the holiday add-on collected in advance of weekends) and margin calls issued with a one-
hour deadline. Members answer by pledging on chain: most within minutes, some in two parts, a few
not at all (escalated at the deadline, defaulted after the grace hour). The book follows the vault's
events and is reconciled against the chain at the end.

The members' behaviour and the book are generated from a fixed seed; prices, volumes and haircuts are
the shipped data. Eligibility is decided by the rules in force now (the CFTC pilot schedule), applied
to the replayed prices.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select

from tokenclear.book.positions import book_from_entries
from tokenclear.clearing import calls
from tokenclear.clearing.coverage import MICRO, units_for
from tokenclear.clearing.interfaces import SimulatedClock
from tokenclear.clearing.onboarding import AccountRow, load_positions, onboard
from tokenclear.clearing.system import (
    attach_ledger,
    build_workflow,
    clearing_inputs,
    record_deployment,
)
from tokenclear.clearing.workflow import Workflow
from tokenclear.collateral.valuation import post_haircut_micro
from tokenclear.errors import ConfigurationError
from tokenclear.instruments.catalogue import load_catalogue
from tokenclear.ledger.chain import Chain
from tokenclear.ledger.connect import deployment_roles
from tokenclear.ledger.ledger import Ledger
from tokenclear.ledger.privacy import account_id
from tokenclear.settings import Settings
from tokenclear.store import queries
from tokenclear.store.models import (
    Account,
    Cycle,
    Holding,
    MarginCall,
    Member,
    Requirement,
)
from tokenclear.store.queries import utc
from tokenclear.store.store import Store

SCENARIOS = {
    "svb": ("2023-03-10", "2023-03-13", "SVB failure and the USDC depeg weekend"),
    "ftx": ("2022-11-07", "2022-11-11", "FTX collapse week"),
    "terra": ("2022-05-06", "2022-05-12", "Terra/LUNA collapse"),
}
OPENING_MIX = {"TUSD": 0.35, "TMMF": 0.30, "TBILL": 0.20, "WETH": 0.15}
#: Every fourth member holds mostly the stablecoin: as much as its issuer limit counts (40%), the rest in bills.
STABLECOIN_MIX = {"TUSD": 0.40, "TBILL": 0.60}
CURE_TOKEN = "TBILL"  # members answer calls in tokenized T-bills (no issuer limit; stablecoins cap at 50%)
INSTRUMENTS = [("BTCZ23", 12), ("ETHZ23", 6), ("ESZ23", 8), ("MBTZ23", 40)]
CYCLE_HOUR_UTC = 0  # just after a day's crypto close (24:00 UTC) and US close (21:00 UTC)
SEED = 2023
MAX_MEMBERS = 10_000
SALT = b"tokenclear-demo-salt-2023"
OPERATOR_FLOAT_MICRO = 500_000_000 * int(MICRO)


@dataclass
class MemberPlan:
    member: str
    wallet: str
    behaviour: str  # prompt, partial, unresponsive
    delay_s: int


@dataclass
class DemoResult:
    scenario: str
    description: str
    members: int
    accounts: int
    steps: list[dict] = field(default_factory=list)
    calls: dict = field(default_factory=dict)
    settle_times_s: list[float] = field(default_factory=list)
    chain_seconds: list[float] = field(default_factory=list)
    reconciliation: dict = field(default_factory=dict)
    chain: dict = field(default_factory=dict)
    book_totals_units: dict[str, int] = field(default_factory=dict)
    database: str = ""
    default_fund: dict = field(default_factory=dict)  # the sizing collected at the opening
    default: dict = field(default_factory=dict)  # the managed default (--default), its plan and results

    def to_dict(self) -> dict:
        times = sorted(self.settle_times_s)
        return {
            "scenario": self.scenario, "description": self.description, "members": self.members,
            "accounts": self.accounts, "steps": self.steps, "calls": self.calls,
            "price_move_to_settled_s": {
                "count": len(times), "median": statistics.median(times) if times else None,
                "max": max(times) if times else None},
            "chain_time_per_pledge_s": statistics.median(self.chain_seconds) if self.chain_seconds else None,
            "reconciliation": self.reconciliation, "chain": self.chain,
            "book_totals_units": {symbol: str(units) for symbol, units in self.book_totals_units.items()},
            "database": self.database, "default_fund": self.default_fund, "default": self.default,
        }


def member_name(i: int, members: int) -> str:
    return f"M{i:02d}" if members < 100 else f"M{i:04d}"


def demo_entries(members: int, rng: np.random.Generator) -> list[tuple[str, str, int]]:
    """Random house and customer positions, then matched: each instrument's net is taken up by members'
    house accounts in round robin, so every long has a short among the members (the clearing house's own
    book is flat and VM paid equals VM received)."""
    entries = []
    for i in range(1, members + 1):
        name = member_name(i, members)
        for instrument, size in INSTRUMENTS:
            if rng.random() < 0.7:
                entries.append((f"{name}-HOUSE", instrument, int(rng.integers(1, size + 1)) * int(rng.choice([-1, 1]))))
        if i % 3 == 0:
            instrument, size = INSTRUMENTS[int(rng.integers(0, len(INSTRUMENTS)))]
            entries.append((f"{name}-CUST", instrument, int(rng.integers(1, size + 1)) * int(rng.choice([-1, 1]))))
    houses = sorted({account for account, _, _ in entries if account.endswith("-HOUSE")})
    turn = 0
    for instrument, size in INSTRUMENTS:
        remaining = -sum(quantity for _, name, quantity in entries if name == instrument)
        while remaining:
            step = max(-size, min(size, remaining))
            entries.append((houses[turn % len(houses)], instrument, step))
            turn, remaining = turn + 7, remaining - step  # 7: spread the offsets over unrelated members
    return entries


class Demo:
    SALT = SALT

    def __init__(self, *, settings: Settings, chain: Chain, store: Store, scenario: str, members: int,
                 progress: Callable[[str], None] = lambda _: None, default_member: str | None = None,
                 default_scenario: str | None = None) -> None:
        self.check(scenario, members, default_member)
        self.default_member, self.default_scenario = default_member, default_scenario or scenario
        self.settings, self.chain, self.store, self.scenario = settings, chain, store, scenario
        self.members, self.progress = members, progress
        self.deployment_warnings: list[str] = []
        start, end, self.description = SCENARIOS[scenario]
        self.days = np.arange(np.datetime64(start), np.datetime64(end) + 1)
        self.opening = self._at(self.days[0] - 1, hour=12)  # the first day, valued at the previous close
        rng = np.random.default_rng(SEED)
        catalogue = load_catalogue(settings.instruments_file)
        self.book = book_from_entries(demo_entries(members, rng), catalogue)
        self.inputs = clearing_inputs(settings, self.book, catalogue)
        self.risk, self.reference = self.inputs.risk, self.inputs.reference
        self.collateral_market = self.inputs.collateral_market
        self.clock = SimulatedClock(self._at(self.days[0] - 1))

    @staticmethod
    def check(scenario: str, members: int, default_member: str | None = None) -> None:
        """Refuse an unknown scenario, a member count outside 2..MAX_MEMBERS or a defaulter not in the book."""
        if scenario not in SCENARIOS:
            raise ConfigurationError(f"unknown scenario '{scenario}'; choose one of {', '.join(SCENARIOS)}")
        if not 2 <= members <= MAX_MEMBERS:
            raise ConfigurationError(f"members must lie in 2..{MAX_MEMBERS}")
        names = {member_name(i, members) for i in range(1, members + 1)}
        if default_member is not None and default_member not in names:
            raise ConfigurationError(f"--default {default_member}: the demo's members are {member_name(1, members)}"
                                     f"..{member_name(members, members)}")

    @staticmethod
    def _at(day: np.datetime64, hour: int = CYCLE_HOUR_UTC) -> datetime:
        """When the cycle valuing ``day``'s closes runs: the next day at ``hour`` UTC."""
        return datetime.fromisoformat(str(day + 1)).replace(hour=hour, tzinfo=UTC)

    @property
    def stages(self) -> int:
        """Progress steps of :meth:`run`: four of set-up, one a day, one for a default, one for reconciliation."""
        return 4 + len(self.days) + (self.default_member is not None) + 1

    def run(self) -> DemoResult:
        result = self.setup()
        for day in self.days:
            self.step(day, result)
        if self.default_member is not None:
            self.manage_default(result)
        return self.finish(result)

    def manage_default(self, result: DemoResult) -> None:
        """After the last cycle: the member's default managed on chain (:mod:`tokenclear.default.drill`)."""
        from tokenclear.default import drill

        self.progress(f"default management of {self.default_member}")
        result.default = drill.drill(self, self.default_member, self.default_scenario)

    def setup(self) -> DemoResult:
        """Deploy, onboard the members, open their accounts and post the opening collateral."""
        self.progress("deploying the contracts")
        # a key per role; over JSON-RPC the configured keys, so a restart can act for each
        roles, self.deployment_warnings = deployment_roles(self.settings, self.chain)
        ledger = Ledger.deploy(self.chain, roles=roles)
        record_deployment(self.store, ledger)
        workflow = self._workflow(ledger)
        self.progress("onboarding members and opening accounts")
        self.plans = self._onboard(ledger)
        self.progress("opening collateral")
        self._opening_pledges(workflow, ledger, self.plans)
        self.progress("sizing and collecting the default fund")
        from tokenclear.default import drill

        sizing = drill.collect_fund(self, as_of=str(self.days[0] - 1))
        result = DemoResult(self.scenario, self.description, self.members, len(self.book.accounts))
        result.default_fund = {"as_of": sizing.as_of, "fund": str(sizing.fund), "scenario": sizing.scenario,
                               "members": list(sizing.members),
                               "skin_in_the_game": str((sizing.fund * drill.SKIN_SHARE).quantize(Decimal("0.01"))),
                               "contributions": {m: str(v) for m, v in sizing.contributions.items() if v > 0}}
        return result

    def step(self, day: np.datetime64, result: DemoResult) -> dict[str, float]:
        """One day's cycle and the members' answers; returns seconds per stage."""
        self.progress(f"cycle {day}")
        at = self._at(day)
        self.clock.set(at)
        summary = self.workflow.run_cycle(at)
        result.steps.append({
            "at": at.isoformat(), "as_of": str(day), "prices": {k: round(v, 6) for k, v in summary.prices.items()},
            "price_status": summary.price_status, "haircuts_bps": summary.haircuts_bps,
            "requirement_usd": str(summary.requirement_usd), "collateral_usd": str(summary.collateral_usd),
            "calls_issued": summary.calls_issued, "called_usd": str(summary.called_usd),
            "vm_paid_by_members_usd": str(summary.vm_paid_by_members_usd),
            "vm_paid_to_members_usd": str(summary.vm_paid_to_members_usd), "vm_blocked": summary.vm_blocked,
            "drivers": {name: {"calls": entry["calls"], "usd": str(entry["usd"])}
                        for name, entry in summary.drivers.items()}, "warnings": summary.warnings})
        started = time.perf_counter()
        self._answer_calls(self.workflow, self.ledger, self.plans, at, result)
        seconds = {**summary.seconds, "calls answered and settled on chain": time.perf_counter() - started}
        started = time.perf_counter()
        result.steps[-1]["released_usd"] = str(self._release_excess(day))
        return {**seconds, "excess released on chain": time.perf_counter() - started}

    def finish(self, result: DemoResult) -> DemoResult:
        self.progress("reconciling the book against the chain")
        breaks = self.workflow.reconcile()
        result.reconciliation = {"clean": not breaks, "breaks": [
            {**b.__dict__, "book_units": str(b.book_units), "chain_units": str(b.chain_units)} for b in breaks]}
        result.calls = self._call_totals()
        result.chain = {"name": self.chain.name, "evm": self.chain.evm, "chain_id": self.chain.chain_id,
                        "operator": self.ledger.operator,
                        "roles": asdict(self.ledger.roles), "contracts": self.ledger.addresses(),
                        "warnings": self.deployment_warnings}
        with self.store.session() as session:
            for holding in session.scalars(select(Holding)):  # summed in Python: exact on every database
                totals = result.book_totals_units
                totals[holding.asset] = totals.get(holding.asset, 0) + int(holding.units)
        return result

    def _workflow(self, ledger: Ledger) -> Workflow:
        workflow = build_workflow(self.settings, self.store, ledger, self.clock, self.inputs)
        self.ledger, self.workflow = ledger, workflow
        return workflow

    def resume(self) -> tuple[Workflow, int]:
        """After a crash: attach to the deployment the book recorded and complete every instruction
        left in flight. Returns the workflow and how many instructions it completed."""
        ledger = attach_ledger(self.store, self.chain)
        with self.store.session() as session:
            latest = session.scalar(select(Cycle.at).order_by(Cycle.at.desc()))
        if latest is not None:
            self.clock.set(max(self.clock.now(), utc(latest)))
        workflow = self._workflow(ledger)
        return workflow, len(workflow.recover())

    def _onboard(self, ledger: Ledger) -> dict[str, MemberPlan]:
        """The members' wallets (each authorises the vault and the settlement contract, as a member
        does), then the clearing house's onboarding of their accounts and positions."""
        book = self.book
        names = sorted({account.split("-")[0] for account in book.accounts})
        wallets = {name: self.new_wallet(name) for name in names}
        plans = {}
        for index, name in enumerate(names):
            behaviour = "unresponsive" if index % 10 == 7 or name == self.default_member else \
                "partial" if index % 10 in (3, 8) else "prompt"
            plans[name] = MemberPlan(name, wallets[name], behaviour, 30 + (index * 37) % 570)
        rows = []
        for account in book.accounts:
            member, kind = account.split("-")
            rows.append(AccountRow(account, member, "HOUSE" if kind == "HOUSE" else "CUSTOMER", wallets[member]))
        onboard(self.store, ledger, rows, salt=SALT)
        for wallet in wallets.values():
            ledger.authorise(wallet)
        load_positions(self.store, book)
        return plans

    def new_wallet(self, member: str) -> str:
        """A member's wallet, funded for gas (the service derives it from its seed, to act for it after a restart)."""
        return self.chain.new_account()

    def _opening_pledges(self, workflow: Workflow, ledger: Ledger, plans: dict[str, MemberPlan]) -> None:
        """Each account is fully collateralised at the opening: it posts its requirement with a cushion of
        0..8% (the industry posts about 6% more than required; an unresponsive member exactly the
        requirement) in its token mix; each wallet keeps several times as much to answer calls (in T-bills)
        and pay VM (in the stablecoin)."""
        opening = self.opening
        self.clock.set(opening)
        workflow.run_cycle(opening, kind="opening", issue_calls=False)
        with self.store.session() as session:
            rows = {row.account_id: row.requirement for row in session.scalars(select(Requirement))}
        targets: dict[str, Decimal] = {}
        self.cushions: dict[str, float] = {}
        for index, account in enumerate(self.book.accounts):
            member = account.split("-")[0]
            plan = plans[member]
            cushion = 0.08 * ((index * 7919) % 100) / 100
            if self.mix(member) is STABLECOIN_MIX:
                cushion = 0.005 + 0.015 * ((index * 7919) % 100) / 100  # cash managed tightly: 0.5..2%
            if plan.behaviour == "unresponsive":
                cushion = 0.0  # covered exactly, and will not answer a call: the escalation path
            self.cushions[account] = cushion
            targets[account] = rows[account] * Decimal(1 + cushion)
            target_micro = int(targets[account] * MICRO) + int(MICRO)
            onchain = account_id(SALT, member, account)
            for symbol, share in self.mix(member).items():
                units = self._units(ledger, symbol, int(target_micro * share))
                ledger.issue(symbol, plan.wallet, (8 if symbol == CURE_TOKEN else 4) * units + 10**6)
                ledger.pledge(f"open:{account}:{symbol}", onchain, symbol, units, plan.wallet)
            ledger.issue("TUSD", plan.wallet, 2 * target_micro)  # stablecoin for calls and VM
        ledger.issue("TUSD", ledger.operator, OPERATOR_FLOAT_MICRO)  # the clearing house pays VM winners
        workflow.sync()
        # what counts is less than the vault's value where wrong-way risk or a limit bites (WETH against a
        # long-ETH book): each member tops up in bills until what counts reaches its target
        with self.store.session() as session:
            accounts = [session.get(Account, account) for account in self.book.accounts]
            counted = workflow.counted(session, accounts, {a.id: rows[a.id] for a in accounts})
        for account in accounts:
            gap = targets[account.id] - counted[account.id]
            if gap > 0:
                units = self._units(ledger, CURE_TOKEN, int(gap * MICRO) + int(MICRO))
                ledger.pledge(f"open:{account.id}:top-up", bytes.fromhex(account.onchain_id[2:]), CURE_TOKEN, units,
                              plans[account.member_id].wallet)
        workflow.sync()

    def _release_excess(self, day: np.datetime64) -> Decimal:
        """Members take back what exceeds their cushion (plus a 2% band), in bills, as a treasury does when
        requirements fall: the vault refuses anything that would break the floor. Returns the USD released."""
        from tokenclear.clearing.instructions import WorkflowError

        workflow, ledger = self.workflow, self.ledger
        tbill = ledger.asset_parameters(CURE_TOKEN)
        with self.store.session() as session:
            accounts = [session.get(Account, account) for account in self.book.accounts]
            last = queries.last_closed_cycle(session)  # every cycle stores every account's requirement
            latest = {row.account_id: row.requirement for row in queries.requirements_of(session, last.id)}
            counted = workflow.counted(session, accounts, latest)
            held = {a.id: int(h.units) for a in accounts if (h := session.get(Holding, (a.id, CURE_TOKEN)))}
        released = Decimal(0)
        for account in accounts:
            keep = latest[account.id] * Decimal(1 + self.cushions[account.id])
            excess = counted[account.id] - keep
            if excess <= latest[account.id] * Decimal("0.02"):
                continue
            units = min(self._units(ledger, CURE_TOKEN, int(excess * MICRO)) - 1, held.get(account.id, 0))
            value = Decimal(post_haircut_micro(units, price_e8=tbill.price_e8, haircut_bps=tbill.haircut_bps,
                                               decimals=tbill.decimals)) / MICRO
            try:
                workflow.request_release(f"release:{day}:{account.id}", account.id, CURE_TOKEN, units)
            except WorkflowError:  # an open call, a default, or the floor: the book refuses, as it should
                continue
            released += value
        return released.quantize(Decimal("0.01"))

    def mix(self, member: str) -> dict[str, float]:
        """The tokens a member posts, by share of value: every fourth member mostly the stablecoin."""
        return STABLECOIN_MIX if int(member[1:]) % 4 == 1 else OPENING_MIX

    def wallets(self) -> list[str]:
        """The clearing members' wallets, by member id (not the CCP's own fund account nor the liquidity
        provider)."""
        from tokenclear.default import drill, fund

        with self.store.session() as session:
            return [member.wallet for member in session.scalars(select(Member).order_by(Member.id))
                    if member.id not in (fund.CCP, drill.LIQUIDITY_MEMBER)]

    def store_account(self, account: str) -> str:
        """On-chain id (hex) of a book account."""
        with self.store.session() as session:
            return session.get(Account, account).onchain_id

    @staticmethod
    def _units(ledger: Ledger, symbol: str, value_micro: int) -> int:
        asset = ledger.asset_parameters(symbol)
        return units_for(value_micro, price_e8=asset.price_e8, haircut_bps=asset.haircut_bps, decimals=asset.decimals)

    def _answer_calls(self, workflow: Workflow, ledger: Ledger, plans: dict[str, MemberPlan], at: datetime,
                      result: DemoResult) -> None:
        with self.store.session() as session:
            open_calls = list(session.scalars(select(MarginCall).where(MarginCall.state == calls.ISSUED)))
            accounts = {a.id: a for a in session.scalars(select(Account))}
        actions = []
        for call in open_calls:
            plan = plans[call.account_id.split("-")[0]]
            if plan.behaviour == "prompt":
                actions.append((plan.delay_s, call, Decimal(1)))
            elif plan.behaviour == "partial":
                actions += [(600 + plan.delay_s, call, Decimal("0.5")), (2400 + plan.delay_s, call, Decimal(1))]
        for delay_s, call, fraction in sorted(actions, key=lambda item: item[0]):
            self.clock.set(max(self.clock.now(), at + timedelta(seconds=delay_s)))
            account = accounts[call.account_id]
            onchain = bytes.fromhex(account.onchain_id[2:])
            with self.store.session() as session:
                requirement = session.get(Requirement, (call.cycle_id, account.id)).requirement
                collateral = workflow.counted(session, [account], {account.id: requirement})[account.id]
            gap = requirement - collateral
            if gap <= 0:
                workflow.on_collateral(account.id)
                continue
            value_micro = int((gap if fraction == 1 else call.amount * fraction) * MICRO) + 1
            units = self._units(ledger, CURE_TOKEN, value_micro)
            started = time.perf_counter()
            ledger.pledge(f"cure:{call.key}:{fraction}", onchain, CURE_TOKEN, units, plans[account.member_id].wallet)
            elapsed = time.perf_counter() - started
            state = workflow.on_collateral(account.id)
            result.chain_seconds.append(elapsed)
            if state == calls.CURED:
                result.settle_times_s.append((self.clock.now() - at).total_seconds() + elapsed)
        for hours in (1, 2):
            self.clock.set(max(self.clock.now(), at + timedelta(hours=hours)))
            workflow.process_due()

    def _call_totals(self) -> dict:
        by_state: dict[str, dict] = {}
        with self.store.session() as session:
            for call in session.scalars(select(MarginCall)):
                entry = by_state.setdefault(call.state, {"count": 0, "amount_usd": Decimal(0)})
                entry["count"] += 1
                entry["amount_usd"] += call.amount
        total = sum(entry["count"] for entry in by_state.values())
        amount = sum((entry["amount_usd"] for entry in by_state.values()), Decimal(0))
        by_state = {state: {**entry, "amount_usd": str(entry["amount_usd"])} for state, entry in by_state.items()}
        return {"issued": total, "amount_usd": str(amount),
                "by_state": by_state}


def default_database(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"sqlite:///{folder / f'demo-{stamp}.db'}"
