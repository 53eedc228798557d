"""The margin cycle around the clock, as one orchestrator over the parts that do the work: prices and
haircuts on chain (:mod:`~tokenclear.clearing.parameters`), variation margin paid both ways in one batch
(:mod:`~tokenclear.clearing.vm_settlement`), requirements (:mod:`~tokenclear.clearing.requirements`),
collateral that counts (:mod:`~tokenclear.clearing.collateral_count`), margin calls
(:mod:`~tokenclear.clearing.call_desk`), and the book kept in step with the chain
(:mod:`~tokenclear.clearing.reconciliation`).

Every instruction to the chain goes through :class:`~tokenclear.clearing.instructions.Instructions`:
recorded under its idempotency key before it is sent, confirmed after, sent again from its stored
parameters after a crash; the contracts treat a replayed key as a no-op. The book's holdings change only
by applying vault events, with the block cursor moved in the same transaction.

Every cycle posts each account's floor and a commitment to its exact requirement on chain, so the vault
itself refuses a release that would break coverage. The cycle's risk state (wrong-way correlations,
market haircuts) and the oracle guard's state are stored with the cycle and loaded from there, so a
restart values collateral exactly as before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import structlog

from tokenclear.book.positions import Book, book_from_entries
from tokenclear.clearing import (
    calls,
    drivers,
    reconciliation,
    requirements,
    vm_settlement,
)
from tokenclear.clearing.call_desk import CallDesk
from tokenclear.clearing.collateral_count import CollateralCount
from tokenclear.clearing.coverage import MICRO, Limits, RiskState
from tokenclear.clearing.instructions import (
    InstructionKind,
    Instructions,
    Recovery,
    WorkflowError,
)
from tokenclear.clearing.interfaces import Clock, LedgerPort, PriceFeed, StorePort
from tokenclear.clearing.parameters import ChainParameters, TokenAsset
from tokenclear.clearing.reconciliation import Break
from tokenclear.clearing.requirements import RiskInputs
from tokenclear.clearing.vm_batch import usd_of
from tokenclear.collateral.files import Reference
from tokenclear.collateral.haircuts import HaircutConfig
from tokenclear.collateral.limits import resolve_limits
from tokenclear.collateral.valuation import BPS, post_haircut_micro
from tokenclear.market.history import MarketData
from tokenclear.market.oracle import OracleGuard
from tokenclear.store import queries
from tokenclear.store.models import Account, Cycle, Holding, Instruction, Requirement
from tokenclear.store.queries import utc

__all__ = ["CycleSummary", "RiskInputs", "TokenAsset", "Workflow", "WorkflowConfig", "WorkflowError"]
log = structlog.get_logger("tokenclear.workflow")


@dataclass(frozen=True)
class WorkflowConfig:
    schedule: str = "CFTC_PILOT"
    policy_date: np.datetime64 = np.datetime64("2026-01-05")  # the eligibility rules in force
    call_threshold_usd: Decimal = Decimal("100.00")  # shortfalls below this are not called
    deadline: timedelta = calls.DEADLINE
    grace: timedelta = calls.GRACE
    haircuts: HaircutConfig = field(default_factory=HaircutConfig)
    # concentration limits applied to what an account holds in the vault; "chain" is left out because
    # every token in one vault lives on the vault's chain
    limit_dimensions: tuple[str, ...] = ("issuer", "kind")
    wrong_way_threshold: float = 0.5  # correlation with the account's P&L from which the haircut grows
    wrong_way_exclude: float = 0.8  # and from which the collateral counts for nothing
    floor_grid_usd: Decimal = Decimal(0)  # privacy mode: floors posted rounded down to this grid (0: exact)


@dataclass(frozen=True)
class CycleSummary:
    """One cycle's totals; every amount is USD (the margin currency)."""

    key: str
    at: datetime
    requirement_usd: Decimal
    collateral_usd: Decimal
    calls_issued: int
    called_usd: Decimal
    vm_paid_by_members_usd: Decimal
    vm_paid_to_members_usd: Decimal
    haircuts_bps: dict[str, int]
    prices: dict[str, float]
    price_status: dict[str, str]
    seconds: dict[str, float]  # wall time per stage
    vm_blocked: list[dict] = field(default_factory=list)  # legs the token refused: account, units, reason
    warnings: list[str] = field(default_factory=list)  # the margin run's (short history, proxies, ...)
    # by driver (drivers.DRIVERS, or "none"): calls it was the main driver of, and its USD over every account
    drivers: dict[str, dict] = field(default_factory=dict)
    as_of: str = ""  # the date of the closes the cycle valued at


class Workflow:
    def __init__(self, *, store: StorePort, ledger: LedgerPort, clock: Clock, feed: PriceFeed, guard: OracleGuard,
                 risk: RiskInputs, reference: Reference, collateral_market: tuple[MarketData, MarketData],
                 tokens: list[TokenAsset], config: WorkflowConfig = WorkflowConfig()) -> None:
        self.store, self.ledger, self.clock, self.guard = store, ledger, clock, guard
        self.risk, self.config, self.tokens = risk, config, tokens
        self.prices = collateral_market[0]
        self.registry = reference.registry.subset([token.asset for token in tokens])
        self.symbol_of = {ledger.token_address(token.symbol).lower(): token.symbol for token in tokens}
        limits = Limits([one for one in resolve_limits(reference.limits, self.registry)
                         if one.dimension in config.limit_dimensions],
                        config.wrong_way_threshold, config.wrong_way_exclude)
        self.stablecoin_assets = {token.asset for token in tokens
                                  if self.registry.get(token.asset).kind == "stablecoin"}
        self.vm_asset = next(token.asset for token in tokens if token.symbol == vm_settlement.VM_TOKEN)
        self.instructions = Instructions(store, ledger, clock)
        self.count = CollateralCount(store, ledger, [token.symbol for token in tokens], limits)
        self.parameters = ChainParameters(
            store=store, instructions=self.instructions, feed=feed, guard=guard, tokens=tokens,
            registry=self.registry, reference=reference, collateral_market=collateral_market,
            haircuts=config.haircuts, schedule=config.schedule, policy_date=config.policy_date,
            floor_grid_usd=config.floor_grid_usd)
        self.desk = CallDesk(store=store, clock=clock, instructions=self.instructions, count=self.count,
                             threshold_usd=config.call_threshold_usd, deadline=config.deadline, grace=config.grace,
                             vault_address=ledger.vault_address)
        with store.session() as session:  # the guard carries on from the last cycle's state
            last = queries.last_closed_cycle(session)
            if last is not None and "guard" in last.detail:
                guard.restore(last.detail["guard"])

    @property
    def feed(self) -> PriceFeed:
        """Where the cycle's quotes come from (an operator may swap in marks between cycles)."""
        return self.parameters.feed

    @feed.setter
    def feed(self, feed: PriceFeed) -> None:
        self.parameters.feed = feed

    # ---- instructions and the book ------------------------------------------------------------------
    def execute(self, key: str, kind: InstructionKind, params: dict) -> dict:
        return self.instructions.execute(key, kind, params)

    def recover(self) -> Recovery:
        """Complete every instruction left pending by a crash, each re-validated against the book as it is now
        (:meth:`still_valid`), then sync the book; ``len()`` of the result is how many were sent again."""
        self.sync()
        done = self.instructions.recover(self.still_valid)
        self.sync()
        return done

    def still_valid(self, instruction: Instruction) -> str | None:
        """Why a recorded instruction must not be sent (again) now, or None. A release is checked as a new one
        would be (no open call, no default, still covered) unless the vault shows it carried out before the
        crash; a default must still stand in the book. The cycle's own instructions (prices, VM, floors) are
        re-sent as recorded: their cycle is completed under its key, and the chain ignores a replay."""
        params = instruction.params
        if instruction.kind not in ("release", "declare_default"):
            return None
        if instruction.kind == "release" and self.ledger.carried_out(instruction.key, "release"):
            return None
        with self.store.session() as session:
            account = queries.account_by_onchain(session, params["onchain_id"])
            if account is None:
                return f"no account {params['onchain_id']} in the book"
            if instruction.kind == "declare_default":
                return None if queries.in_default(session, account.id) else f"{account.id} is not in default"
            return self._release_refusal(session, account, params["symbol"], int(params["units"]))

    def retry(self, key: str) -> dict:
        """Send a failed instruction again once the operator has cleared its cause (re-validated first)."""
        self.sync()
        result = self.instructions.retry(key, self.still_valid)
        self.sync()
        return result

    def expire(self, key: str, reason: str) -> None:
        """Close a pending or failed instruction unsent, with the operator's reason."""
        self.instructions.expire(key, reason)

    def sync(self) -> int:
        """Apply vault events after the cursor to the book's holdings; returns events applied."""
        return reconciliation.sync(self.store, self.ledger, self.symbol_of)

    def reconcile(self) -> list[Break]:
        """The book against the chain, per account and token; every difference with its cause."""
        self.sync()
        return reconciliation.reconcile(self.store, self.ledger, [t.symbol for t in self.tokens], self.clock.now())

    def book(self) -> Book:
        """The open positions in the store, as the risk core's dense book."""
        return requirements.stored_book(self.store, self.risk.catalogue)

    # ---- the cycle ------------------------------------------------------------------------------------
    def run_cycle(self, at: datetime, *, kind: str = "scheduled", issue_calls: bool = True,
                  as_of: np.datetime64 | None = None) -> CycleSummary:
        """One margin cycle at ``at``; idempotent on its key (a rerun re-reads, sends nothing twice).
        ``issue_calls`` False: requirements and parameters only (the opening of a book). ``as_of``: the
        date of the closes the cycle values at (default: the day before ``at``, the last complete day).

        The cycle is recorded (open, with its date) before anything is sent, and a cycle left open by a
        crash is completed, under its own key, before a later one starts: the later cycle's VM then runs
        from the crashed cycle's date, never again over a period already paid."""
        key = f"{kind}:{at.isoformat()}"
        day = np.datetime64(at.date(), "D") - 1 if as_of is None else np.datetime64(as_of, "D")
        self._complete_open_cycles(before=at)
        with self.store.session() as session:
            if queries.cycle_by_key(session, key) is None:
                session.add(Cycle(key=key, at=at, kind=kind, status="open", detail={"date": str(day)}))
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[stage] = now - clock
            clock = now

        guarded = self.parameters.guarded_prices(at)
        haircuts_bps, market_haircut = self.parameters.push(key, day, guarded)
        lap("prices, haircuts and parameters on chain")
        vm = (vm_settlement.settle(key, day, store=self.store, ledger=self.ledger, instructions=self.instructions,
                                   risk=self.risk, price_usd=guarded.prices.get(self.vm_asset))
              if kind != "intraday" else vm_settlement.Settled())
        unpaid = {one["account"]: usd_of(one) for one in vm.blocked if one["units"] > 0}
        lap("variation margin batch on chain")
        self.sync()
        book = self.book()
        measured = requirements.measure(self.risk, book, self.registry, self.prices, day)
        risk = RiskState(tuple(token.symbol for token in self.tokens), tuple(float(h) for h in market_haircut),
                         measured.correlation)
        lap("requirements (HS-VaR)")
        terms, decimals = self._token_terms()
        with self.store.session() as session:
            previous = queries.last_closed_cycle(session)
            cycle = queries.cycle_by_key(session, key)
            if "risk" not in cycle.detail:  # the first run to get this far records what it measured
                cycle.detail = {**cycle.detail, "vm_paid_by_members": str(vm.paid_by_members_usd),
                                "vm_paid_to_members": str(vm.paid_to_members_usd), "prices": guarded.prices,
                                "vm_blocked": vm.blocked, "risk": risk.to_json(), "guard": self.guard.state(),
                                "warnings": measured.warnings + vm.warnings,
                                "terms": {symbol: [t.price, t.haircut] for symbol, t in terms.items()},
                                "holiday": {a: str(v) for a, v in measured.holiday_addon_usd.items()},
                                "positions": book.entries(), "worst": measured.worst_scenario}
            if previous is not None and previous.id == cycle.id:  # a rerun of a closed cycle
                previous = queries.previous_closed_cycle(session, cycle)
            accounts = queries.margin_accounts(session)
            needed = {account.id: measured.requirement_usd.get(account.id, Decimal("0.00"))
                      + unpaid.get(account.id, Decimal(0)) for account in accounts}
            counted = self.count.counted(session, accounts, needed, risk)
            explain = self._explainer(session, previous, terms, decimals, measured, needed,
                                      self._previous_positions(previous, book, day, unpaid))
            issued, called = 0, Decimal(0)
            by_driver = {name: {"calls": 0, "usd": Decimal(0)} for name in (*drivers.DRIVERS, "none")}
            explained: dict[str, dict[str, str]] = {}
            recorded = {row.account_id for row in queries.requirements_of(session, cycle.id)}  # a rerun's
            for account in accounts:
                cover = counted[account.id] - needed[account.id]
                if account.id not in recorded:
                    session.add(Requirement(cycle_id=cycle.id, account_id=account.id, requirement=needed[account.id],
                                            collateral=counted[account.id], coverage=cover))
                why = explain(account.id)
                for name, value in (why or {}).items():  # each driver's effect on the whole book's cover
                    by_driver[name]["usd"] += value
                amount = self.desk.issue(session, cycle, at, account.id, cover, why) if issue_calls else None
                if amount is not None:
                    issued, called = issued + 1, called + amount
                    if why is not None:
                        by_driver[drivers.main_driver(why)]["calls"] += 1
                if why is not None:
                    explained[account.id] = {name: str(value) for name, value in why.items()}
            if "drivers" not in cycle.detail:  # each account's shortfall change by driver, for the API and reports
                cycle.detail = {**cycle.detail, "drivers": explained}
            floors = [(account.onchain_id, needed[account.id]) for account in accounts]
        self.parameters.post_floors(key, floors)
        with self.store.session() as session:
            queries.cycle_by_key(session, key).status = "closed"
        lap("valuation from the vault, calls and floors on chain")
        return CycleSummary(key, at, sum(needed.values(), Decimal(0)), sum(counted.values(), Decimal(0)), issued,
                            called, vm.paid_by_members_usd, vm.paid_to_members_usd, haircuts_bps, guarded.prices,
                            guarded.status, seconds, vm.blocked, measured.warnings + vm.warnings, by_driver, str(day))

    def complete_open_cycles(self) -> list[str]:
        """Rerun, under their own keys, every cycle a crash left open (a restarted service does this first);
        returns their keys."""
        with self.store.session() as session:
            keys = [cycle.key for cycle in queries.open_cycles(session)]
        if keys:
            self._complete_open_cycles(before=datetime.max.replace(tzinfo=UTC))
        return keys

    def _complete_open_cycles(self, *, before: datetime) -> None:
        """Rerun, under their own keys, the cycles a crash left open before ``before``."""
        with self.store.session() as session:
            left = [(c.at, c.kind, c.detail["date"]) for c in queries.open_cycles(session) if utc(c.at) < before]
        for at, kind, day in left:
            log.warning("completing a cycle a crash left open", at=str(at), kind=kind)
            self.run_cycle(utc(at), kind=kind, issue_calls=kind != "opening", as_of=np.datetime64(day))

    def _token_terms(self) -> tuple[dict[str, drivers.TokenTerms], dict[str, int]]:
        """Each token's price and haircut as the vault values it now, and its decimals."""
        assets = self.ledger.assets_parameters([token.symbol for token in self.tokens])
        return ({symbol: drivers.TokenTerms(a.price_e8 / 1e8, a.haircut_bps / BPS) for symbol, a in assets.items()},
                {symbol: a.decimals for symbol, a in assets.items()})

    def _previous_positions(self, previous: Cycle | None, book: Book, day: np.datetime64,
                            unpaid: dict[str, Decimal]) -> dict[str, drivers.Valuation]:
        """For each account whose positions changed since ``previous``: what its previous positions would require
        now (the same closes and the book's scenarios; an account that held nothing: 0)."""
        if previous is None or "positions" not in previous.detail:
            return {}
        before, now = previous.detail["positions"], book.entries()
        changed = sorted(a for a in set(before) | set(now) if before.get(a, {}) != now.get(a, {}))
        if not changed:
            return {}
        known = set(self.risk.catalogue.instruments)
        entries = [(a, i, q) for a in changed for i, q in before.get(a, {}).items() if i in known]
        out = {a: drivers.Valuation(unpaid.get(a, Decimal(0)), Decimal(0)) for a in changed}
        if entries:
            instruments = {i for _, i, _ in entries} | set(book.instruments)
            entries += [(changed[0], i, 0) for i in sorted(instruments)]  # the book's scenarios, the same window
            old = requirements.measure(self.risk, book_from_entries(entries, self.risk.catalogue), self.registry,
                                       self.prices, day)
            for a in changed:
                if a in old.requirement_usd:
                    out[a] = drivers.Valuation(old.requirement_usd[a] + unpaid.get(a, Decimal(0)),
                                               old.holiday_addon_usd[a])
        return out

    def _explainer(self, session, previous: Cycle | None, terms: dict[str, drivers.TokenTerms],
                   decimals: dict[str, int], measured, needed: dict[str, Decimal],
                   previous_positions: dict[str, drivers.Valuation]):
        """``explain(account)``: its shortfall's change since ``previous`` by driver (None without one)."""
        if previous is None or "terms" not in previous.detail:
            return lambda account: None
        before_terms = {symbol: drivers.TokenTerms(*pair) for symbol, pair in previous.detail["terms"].items()}
        holiday_0 = previous.detail.get("holiday", {})
        rows = {row.account_id: row for row in queries.requirements_of(session, previous.id)}
        held = queries.holdings(session)
        stablecoins = {token.symbol for token in self.tokens if token.asset in self.stablecoin_assets}

        def explain(account: str) -> dict[str, Decimal] | None:
            row = rows.get(account)
            if row is None:
                return None
            units = {symbol: held.get((account, symbol), 0) / 10**places for symbol, places in decimals.items()}
            before = drivers.Valuation(row.requirement, Decimal(holiday_0.get(account, "0")))
            after = drivers.Valuation(needed[account], measured.holiday_addon_usd.get(account, Decimal(0)))
            return drivers.attribute(before, after, units, before_terms, terms, stablecoins,
                                     previous_positions.get(account))

        return explain

    def intraday(self, at: datetime, *, threshold: float = 0.05) -> CycleSummary | None:
        """Between scheduled cycles: when a guarded price has moved more than ``threshold`` (a fraction)
        since the last cycle, revalue every account's collateral at the new prices (on chain) against the
        requirement of the last end-of-day run, and call the shortfalls. Returns None when no price
        crossed the threshold."""
        with self.store.session() as session:
            last = queries.last_closed_cycle(session)
        if last is None:
            raise WorkflowError("no cycle has run yet: an intraday check needs the last prices")
        before = last.detail.get("prices", {})
        probe = OracleGuard(self.guard.config)  # a look that does not disturb the guard's history
        moved = {}
        for token in self.tokens:
            if token.series is None or token.asset not in before:
                continue
            decision = probe.update(token.asset, self.feed.quotes(token.series, at), at)
            if decision.usable and abs(decision.price / before[token.asset] - 1.0) > threshold:
                moved[token.asset] = decision.price / before[token.asset] - 1.0
        if not moved:
            return None
        log.info("intraday move", moves={k: round(v, 4) for k, v in moved.items()}, threshold=threshold)
        return self.run_cycle(at, kind="intraday", as_of=np.datetime64(last.detail["date"]))

    # ---- collateral -----------------------------------------------------------------------------------
    def risk_state(self) -> RiskState:
        return self.count.risk_state()

    def counted(self, session, accounts: list[Account], required: dict[str, Decimal],
                risk: RiskState | None = None) -> dict[str, Decimal]:
        return self.count.counted(session, accounts, required, risk)

    def collateral(self, onchain_id: str) -> Decimal:
        return self.count.vault_value(onchain_id)

    def requirement_opening(self, cycle_key: str, account_id: str) -> tuple[int, bytes]:
        return self.parameters.requirement_opening(cycle_key, account_id)

    def request_release(self, key: str, account_id: str, symbol: str, units: int) -> dict:
        """A member asks for collateral back: granted only if the account stays covered (against the
        last requirement, with no open call and not in default); sent as an idempotent instruction."""
        if units <= 0:
            raise WorkflowError(f"release of {units} units: the amount must be positive")
        if symbol not in {token.symbol for token in self.tokens}:
            raise WorkflowError(f"unknown collateral token '{symbol}'")
        self.sync()
        with self.store.session() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise WorkflowError(f"unknown account '{account_id}'")
            refusal = self._release_refusal(session, account, symbol, units)
            onchain = account.onchain_id
        if refusal is not None:
            raise WorkflowError(f"release refused: {refusal}")
        return self.instructions.execute(key, "release", {"onchain_id": onchain, "symbol": symbol, "units": units})

    def _release_refusal(self, session, account: Account, symbol: str, units: int) -> str | None:
        """Why releasing ``units`` of ``symbol`` from ``account`` is refused now, or None."""
        if queries.open_call(session, account.id) is not None or queries.in_default(session, account.id):
            return f"{account.id} has an open margin call or is in default"
        held = session.get(Holding, (account.id, symbol))
        if held is None or int(held.units) < units:
            return (f"{account.id} holds {0 if held is None else int(held.units)} {symbol} units, fewer than the "
                    f"{units} asked")
        required = queries.latest_requirement(session, account.id)
        asset = self.ledger.asset_parameters(symbol)
        value = Decimal(post_haircut_micro(units, price_e8=asset.price_e8, haircut_bps=asset.haircut_bps,
                                           decimals=asset.decimals)) / MICRO
        after = self.count.counted(session, [account], {account.id: required})[account.id] - value
        if after < required:
            return f"{account.id} would hold {after:.2f} USD against a requirement of {required} USD"
        return None

    # ---- calls ------------------------------------------------------------------------------------------
    def on_collateral(self, account_id: str) -> str | None:
        """After a member pledged: sync the book, then move the account's open call by its coverage."""
        self.sync()
        return self.desk.on_collateral(account_id)

    def process_due(self) -> list[tuple[str, str]]:
        return self.desk.process_due()

    def call_message(self, key: str, *, clearing_house: str = "tokenclear CCP") -> bytes:
        return self.desk.call_message(key, clearing_house=clearing_house)

    def receive_answer(self, data: bytes, *, source: str = "answer") -> str:
        return self.desk.receive_answer(data, source=source)
