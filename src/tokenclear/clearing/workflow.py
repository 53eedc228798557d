"""The margin cycle around the clock: prices through the oracle guard, haircuts and prices on chain,
variation margin paid both ways in one batch, requirements, coverage from the vault, margin calls
with deadlines, the book kept in step with the chain's events, and reconciliation.

Every instruction to the chain goes through :meth:`Workflow.execute`: it is recorded under its
idempotency key before it is sent, marked confirmed after, and every kind can be sent again from its
stored parameters (:meth:`Workflow.recover`); the contracts treat a replayed key as a no-op, so a
crash at any point neither pays twice nor loses a pledge. The book's holdings change only by
applying vault events (:meth:`Workflow.sync`), with the block cursor moved in the same transaction.

Every cycle posts each account's floor (the requirement, or its privacy bucket) and a commitment to
the exact requirement on chain, so the vault itself refuses a release that would break coverage. The
cycle's risk state (wrong-way correlations, market haircuts) and the oracle guard's state are stored
with the cycle and loaded from there, so a restart values collateral exactly as before it.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import numpy as np
import structlog
from sqlalchemy import select

from tokenclear.book.positions import Book, book_from_entries
from tokenclear.clearing import calls, coverage, reconciliation
from tokenclear.clearing.coverage import CENT, MICRO, Holdings, Limits, RiskState
from tokenclear.clearing.interfaces import Clock, LedgerPort, PriceFeed, StorePort
from tokenclear.clearing.reconciliation import Break
from tokenclear.clearing.vm_batch import paid, vm_batch
from tokenclear.collateral.files import Reference
from tokenclear.collateral.haircuts import HaircutConfig, calibrate
from tokenclear.collateral.limits import portfolio_correlation, resolve_limits
from tokenclear.collateral.returns import asset_returns
from tokenclear.collateral.valuation import BPS, post_haircut_micro
from tokenclear.errors import TokenclearError
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.ledger.ledger import Floor, Payment
from tokenclear.ledger.privacy import commitment
from tokenclear.margin.context import Context, RunConfig, build_context
from tokenclear.margin.historical import Historical
from tokenclear.margin.hsvar import portfolio_pnl
from tokenclear.margin.setup import RiskSetup, book_margin
from tokenclear.margin.variation import settlement_prices, variation_margin
from tokenclear.market.history import MarketData
from tokenclear.market.oracle import OracleGuard
from tokenclear.store import queries
from tokenclear.store.models import (
    Account,
    CallEvent,
    Cycle,
    Holding,
    Instruction,
    MarginCall,
    Requirement,
)

log = structlog.get_logger("tokenclear.workflow")
MAX_HAIRCUT_BPS = BPS - 1  # the vault refuses a haircut of 100%


#: What the workflow sends the chain; each kind can be sent again from its stored parameters.
InstructionKind = Literal["set_asset", "settle_payments", "release", "declare_default", "set_requirements"]


class WorkflowError(TokenclearError):
    """An instruction the workflow cannot carry out (unknown account, negative amount, ...)."""


@dataclass(frozen=True)
class TokenAsset:
    """A token on chain and the registry asset whose haircut it takes. ``series``: its price
    series (``None``: the token prices itself on chain, as fund shares and bills do)."""

    symbol: str
    asset: str
    series: str | None


@dataclass(frozen=True)
class RiskInputs:
    """Reference and market data of the risk core and the run's setup (built by
    :func:`tokenclear.runner.risk_setup`, as for the ``margin`` command); the positions come from the
    store each cycle. ``capacity``: the concentration add-on's capacity per instrument of a context."""

    catalogue: Catalogue
    specs: dict
    market: MarketData
    setup: RiskSetup
    capacity: Callable[[Context], np.ndarray | None] | None = None

    @property
    def config(self) -> RunConfig:
        return self.setup.config


@dataclass(frozen=True)
class WorkflowConfig:
    schedule: str = "CFTC_PILOT"
    policy_date: np.datetime64 = np.datetime64("2026-01-05")  # the eligibility rules in force
    call_threshold: Decimal = Decimal("100.00")  # shortfalls below this are not called
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


class Workflow:
    def __init__(self, *, store: StorePort, ledger: LedgerPort, clock: Clock, feed: PriceFeed, guard: OracleGuard,
                 risk: RiskInputs, reference: Reference, collateral_market: tuple[MarketData, MarketData],
                 tokens: list[TokenAsset], config: WorkflowConfig = WorkflowConfig()) -> None:
        self.store, self.ledger, self.clock, self.feed, self.guard = store, ledger, clock, feed, guard
        self.risk, self.reference, self.config = risk, reference, config
        self.prices, self.volumes = collateral_market
        self.tokens = tokens
        self.registry = reference.registry.subset([token.asset for token in tokens])
        self.symbol_of = {ledger.token_address(token.symbol).lower(): token.symbol for token in tokens}
        self.limits = Limits([one for one in resolve_limits(reference.limits, self.registry)
                              if one.dimension in config.limit_dimensions],
                             config.wrong_way_threshold, config.wrong_way_exclude)
        with store.session() as session:  # the guard carries on from the last cycle's state
            last = queries.last_closed_cycle(session)
            if last is not None and "guard" in last.detail:
                guard.restore(last.detail["guard"])

    # ---- instructions ---------------------------------------------------------------------------
    def execute(self, key: str, kind: InstructionKind, params: dict) -> dict:
        """Record, send, confirm. A replay of a confirmed key returns the first result."""
        now = self.clock.now()
        with self.store.session() as session:
            recorded = self.store.record(session, key=key, kind=kind, params=params, now=now)
            if not recorded.created and recorded.instruction.status == "confirmed":
                return recorded.instruction.result
            instruction_id = recorded.instruction.id
        failpoint("before-send", kind)
        result = self._send(key, kind, params)
        failpoint("after-send", kind)
        with self.store.session() as session:
            row = session.get(Instruction, instruction_id)
            row.status, row.result, row.updated_at = "confirmed", result, self.clock.now()
        log.info("instruction confirmed", key=key, kind=kind, **result)
        return result

    def _send(self, key: str, kind: InstructionKind, params: dict) -> dict:
        ledger = self.ledger
        if kind == "set_asset":
            receipt = ledger.set_asset(params["symbol"], haircut_bps=params["haircut_bps"],
                                       price_e8=params["price_e8"], eligible=params["eligible"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "settle_payments":
            legs = [Payment(payer, receiver, int(units)) for payer, receiver, units in params["legs"]]
            receipts = ledger.settle_payments(key, legs)
            return {"tx": [r.tx_hash for r in receipts], "block": receipts[-1].block if receipts else None}
        if kind == "release":
            receipt = ledger.release(key, bytes.fromhex(params["onchain_id"][2:]), params["symbol"], params["units"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "declare_default":
            account = bytes.fromhex(params["onchain_id"][2:])
            if ledger.is_defaulted(account):  # already declared: replay
                return {"tx": None, "block": ledger.block_number()}
            receipt = ledger.declare_default(account)
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "set_requirements":
            floors = [Floor(bytes.fromhex(onchain[2:]), int(floor), bytes.fromhex(committed[2:]))
                      for onchain, floor, committed, _ in params["floors"]]
            receipts = ledger.set_requirements(key, floors)
            return {"tx": [r.tx_hash for r in receipts], "block": receipts[-1].block if receipts else None}
        raise WorkflowError(f"unknown instruction kind '{kind}'")

    def recover(self) -> int:
        """Complete every instruction left pending by a crash; returns how many."""
        pending = self.store.in_flight()
        for instruction in pending:
            self.execute(instruction.key, instruction.kind, instruction.params)
        self.sync()
        return len(pending)

    # ---- the book follows the chain ---------------------------------------------------------------
    def sync(self) -> int:
        """Apply vault events after the cursor to the book's holdings; returns events applied."""
        return reconciliation.sync(self.store, self.ledger, self.symbol_of)

    # ---- the cycle --------------------------------------------------------------------------------
    def run_cycle(self, at: datetime, *, kind: str = "scheduled", issue_calls: bool = True,
                  as_of: np.datetime64 | None = None) -> CycleSummary:
        """One margin cycle at ``at``; idempotent on its key (a rerun re-reads, sends nothing twice).
        ``issue_calls`` False: requirements and parameters only (the opening of a book). ``as_of``: the
        date of the closes the cycle values at (default: the day before ``at``, the last complete day)."""
        key = f"{kind}:{at.isoformat()}"
        day = np.datetime64(at.date(), "D") - 1 if as_of is None else np.datetime64(as_of, "D")
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[stage] = now - clock
            clock = now

        prices, status, addon = self._guarded_prices(at)
        haircuts_bps, market_haircut = self._push_parameters(key, day, prices, addon)
        lap("prices, haircuts and parameters on chain")
        paid_by, paid_to, blocked = (self._variation_margin(key, day) if kind != "intraday"
                                     else (Decimal(0), Decimal(0), []))
        unpaid = {one["account"]: Decimal(one["units"]) / MICRO for one in blocked if one["units"] > 0}
        lap("variation margin batch on chain")
        self.sync()
        requirement, correlation, warnings = self._requirements(day)
        risk = RiskState(tuple(token.symbol for token in self.tokens), tuple(float(h) for h in market_haircut),
                         correlation)
        lap("requirements (HS-VaR)")
        with self.store.session() as session:
            cycle = queries.cycle_by_key(session, key)
            if cycle is None:
                cycle = Cycle(key=key, at=at, kind=kind, status="open",
                              detail={"date": str(day), "vm_paid_by_members": str(paid_by),
                                      "vm_paid_to_members": str(paid_to), "prices": prices, "vm_blocked": blocked,
                                      "risk": risk.to_json(), "guard": self.guard.state(),
                                      "warnings": warnings})
                session.add(cycle)
                session.flush()
            accounts = queries.accounts(session)
            issued, called, total_collateral, total_requirement = 0, Decimal(0), Decimal(0), Decimal(0)
            needed = {account.id: requirement.get(account.id, Decimal("0.00")) + unpaid.get(account.id, Decimal(0))
                      for account in accounts}
            counted = self.counted(session, accounts, needed, risk)
            for account in accounts:
                required = needed[account.id]
                collateral = counted[account.id]
                cover = collateral - required
                total_collateral += collateral
                total_requirement += required
                if session.get(Requirement, (cycle.id, account.id)) is None:
                    session.add(Requirement(cycle_id=cycle.id, account_id=account.id, requirement=required,
                                            collateral=collateral, coverage=cover))
                amount = coverage.call_amount(cover, self.config.call_threshold)
                if (issue_calls and amount is not None and queries.open_call(session, account.id) is None
                        and not queries.in_default(session, account.id)):
                    call_key = f"call:{key}:{account.id}"
                    if queries.call_by_key(session, call_key) is None:
                        call = MarginCall(key=call_key, account_id=account.id, cycle_id=cycle.id, amount=amount,
                                          currency="USD", issued_at=at, deadline=at + self.config.deadline,
                                          state=calls.ISSUED, cured_amount=Decimal("0.00"))
                        session.add(call)
                        session.flush()
                        session.add(CallEvent(call_id=call.id, at=at, source="", target=calls.ISSUED,
                                              detail=f"shortfall {amount} USD"))
                        log.info("margin call issued", key=call_key, account=account.id, amount=str(amount))
                        issued += 1
                        called += amount
            floors = [(account.onchain_id, needed[account.id]) for account in accounts]
        self._post_floors(key, floors)
        with self.store.session() as session:
            queries.cycle_by_key(session, key).status = "closed"
        lap("valuation from the vault, calls and floors on chain")
        return CycleSummary(key, at, total_requirement, total_collateral, issued, called, paid_by, paid_to,
                            haircuts_bps, prices, status, seconds, blocked, warnings)

    def _guarded_prices(self, at: datetime) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
        prices, status, addon = {}, {}, {}
        for token in self.tokens:
            if token.series is None:
                continue
            decision = self.guard.update(token.asset, self.feed.quotes(token.series, at), at)
            status[token.asset] = decision.status
            addon[token.asset] = decision.haircut_addon
            if decision.usable:
                prices[token.asset] = decision.price
        return prices, status, addon

    def _push_parameters(self, key: str, day: np.datetime64, prices: dict[str, float],
                         addon: dict[str, float]) -> tuple[dict[str, int], np.ndarray]:
        """Haircuts calibrated as of ``day`` (plus the guard's fallback add-on) and prices on chain;
        returns the haircuts pushed (bps per token) and the market haircut component (fraction)."""
        table = calibrate(self.registry, market=self.prices, volumes=self.volumes, floors=self.reference.floors,
                          as_of=day, config=self.config.haircuts, schedule=self.reference.schedule_floors)
        eligible = self.reference.schedules.eligible_mask(self.registry.assets, self.config.schedule,
                                                          self.config.policy_date)
        out = {}
        for i, token in enumerate(self.tokens):
            haircut = float(table.published[i]) + addon.get(token.asset, 0.0)
            bps = min(int(math.ceil(round(haircut * BPS, 6))), MAX_HAIRCUT_BPS)
            halted = token.series is not None and token.asset not in prices
            price_e8 = 0 if token.series is None or halted else int(round(prices[token.asset] * 10**8))
            params = {"symbol": token.symbol, "haircut_bps": bps, "price_e8": price_e8,
                      "eligible": bool(eligible[i]) and not halted}
            self.execute(f"{key}:asset:{token.symbol}", "set_asset", params)
            out[token.symbol] = bps
        return out, table.market

    def _post_floors(self, key: str, floors: list[tuple[str, Decimal]]) -> None:
        """Each account's floor and a commitment to its exact requirement on chain, idempotently: the
        salts are drawn once and kept in the instruction's stored parameters, so a resend after a crash
        posts the same commitments (and a member or regulator given the salt can open them)."""
        instruction = f"{key}:floors"
        with self.store.session() as session:
            done = queries.instruction(session, instruction)
            params = None if done is None else done.params
        if params is None:
            rows = []
            for onchain, required in floors:
                salt = secrets.token_bytes(32)
                exact = coverage.micro(required)
                rows.append([onchain, coverage.floor_micro(required, self.config.floor_grid_usd),
                             "0x" + commitment(exact, salt).hex(), "0x" + salt.hex()])
            params = {"floors": rows}
        if params["floors"]:
            self.execute(instruction, "set_requirements", params)

    def requirement_opening(self, cycle_key: str, account_id: str) -> tuple[int, bytes]:
        """(requirement in micro-USD, salt) that open the commitment a cycle posted for an account: what
        the clearing house hands the member or the regulator."""
        with self.store.session() as session:
            account = session.get(Account, account_id)
            done = queries.instruction(session, f"{cycle_key}:floors")
            cycle = queries.cycle_by_key(session, cycle_key)
            if account is None or done is None or cycle is None:
                raise WorkflowError(f"no floor posted for '{account_id}' by cycle '{cycle_key}'")
            required = session.get(Requirement, (cycle.id, account_id)).requirement
        salt = next(bytes.fromhex(row[3][2:]) for row in done.params["floors"] if row[0] == account.onchain_id)
        return coverage.micro(required), salt

    def book(self) -> Book:
        """The open positions in the store, as the risk core's dense book."""
        with self.store.session() as session:
            entries = queries.positions(session)
        unknown = sorted({instrument for _, instrument, _ in entries} - set(self.risk.catalogue.instruments))
        if unknown:
            raise WorkflowError(f"positions in instruments the catalogue does not know: {', '.join(unknown)}")
        return book_from_entries(entries, self.risk.catalogue)

    def _settlement(self, book: Book, day: np.datetime64) -> list[Decimal]:
        risk = self.risk
        return settlement_prices(risk.catalogue, book.instruments, risk.market, risk.specs, day,
                                 max_stale_days=risk.config.max_stale_days)

    def _variation_margin(self, key: str, day: np.datetime64) -> tuple[Decimal, Decimal, list[dict]]:
        """VM since the previous cycle's date, paid in the stablecoin both ways in one batch.

        A leg the token would refuse (frozen or paused wallet, not enough balance: its ERC-1404
        pre-check) is left out of the batch instead of reverting everyone's VM; it is returned as
        blocked with the token's reason, and VM a member could not pay is added to its requirement
        (so it is called). Returns (paid by members, paid to members, blocked legs)."""
        instruction_key_ = f"{key}:vm"
        with self.store.session() as session:
            done = queries.instruction(session, instruction_key_)
            previous = queries.previous_daily_cycle(session, key)
            wallets = queries.wallets(session)
        if done is not None:  # a rerun or a restart: the batch as first decided
            params = done.params
        else:
            if previous is None or previous.detail.get("date") == str(day):
                return Decimal(0), Decimal(0), []
            book = self.book()
            rows = variation_margin(book, self.risk.catalogue,
                                    self._settlement(book, np.datetime64(previous.detail["date"])),
                                    self._settlement(book, day))
            params = vm_batch(rows, wallets, self.ledger.operator,
                              lambda payer, receiver, units: self.ledger.transfer_restriction("TUSD", payer, receiver,
                                                                                              units))
            if not params["legs"] and not params["blocked"]:
                return Decimal(0), Decimal(0), []
        if params["legs"]:
            self.execute(instruction_key_, "settle_payments", params)
        for one in params["blocked"]:
            log.warning("VM leg blocked", key=instruction_key_, account=one["account"], units=one["units"],
                        reason=one["reason"])
        return (*paid(params), params["blocked"])

    def _requirements(self, day: np.datetime64) -> tuple[dict[str, Decimal], dict[str, tuple[float, ...]], list[str]]:
        """Each account's requirement (USD) as of ``day``, computed as the ``margin`` command computes it,
        each account's correlation with every token's return over the same scenarios, and the run's
        warnings."""
        risk = self.risk
        book = self.book()
        # the whole book's scenarios (wrong-way correlations need them); a one-class book's margin runs on them too
        context = build_context(book=book, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                                config=risk.config, as_of=day)

        def build(sub: Book, config: RunConfig) -> Context:
            if (sub.accounts, sub.instruments, config) == (book.accounts, book.instruments, risk.config):
                return context
            return build_context(book=sub, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                                 config=config, as_of=day)

        run = book_margin(book, risk.catalogue, risk.setup, "hsvar", build=build, capacity=risk.capacity)
        for warning in run.warnings:
            log.warning("margin run", date=str(day), warning=warning)
        window = context.window()
        measured = window[context.move_dates[window] >= context.factors.grid[0]]  # the tokens' own history only:
        history = Historical.build(context, measured, filtered=False)  # proxied stress rows have no token return
        pnl = portfolio_pnl(context.book.quantity, history.pnl)  # [accounts, scenarios]
        returns = asset_returns(self.registry, self.prices, history.dates, horizon=risk.config.mpor_days,
                                margin_currency=risk.config.margin_currency)
        correlation = portfolio_correlation(pnl, returns)
        by_account = {account: tuple(float(x) for x in correlation[i])
                      for i, account in enumerate(context.book.accounts)}
        return {account.account: account.margin_usd for account in run.accounts}, by_account, list(run.warnings)

    def risk_state(self) -> RiskState:
        """The risk state of the last cycle that measured one (empty before the first)."""
        with self.store.session() as session:
            for detail in session.scalars(select(Cycle.detail).order_by(Cycle.at.desc(), Cycle.id.desc())):
                if "risk" in detail:
                    return RiskState.from_json(detail["risk"])
        return RiskState()

    def counted(self, session, accounts: list[Account], required: dict[str, Decimal],
                risk: RiskState | None = None) -> dict[str, Decimal]:
        """Collateral that counts, per account (USD, down to the cent): the vault's exact post-haircut value
        less what the concentration limits and general wrong-way risk keep from counting (see
        :func:`tokenclear.clearing.coverage.counted`), with ``risk`` or the last cycle's risk state."""
        risk = self.risk_state() if risk is None else risk
        symbols = [token.symbol for token in self.tokens]
        ids = [account.id for account in accounts]
        index = {account: i for i, account in enumerate(ids)}
        quantity = np.zeros((len(accounts), len(symbols)))
        price, haircut, eligible = np.zeros(len(symbols)), np.zeros(len(symbols)), np.zeros(len(symbols), bool)
        for j, symbol in enumerate(symbols):
            asset = self.ledger.asset_parameters(symbol)
            eligible[j], haircut[j], price[j] = asset.eligible, asset.haircut_bps / BPS, asset.price_e8 / 1e8
            for holding in session.scalars(select(Holding).where(Holding.asset == symbol, Holding.account_id.in_(ids))):
                quantity[index[holding.account_id], j] = float(holding.units) / 10**asset.decimals
        vault = [self.collateral(account.onchain_id) for account in accounts]
        values = coverage.counted(vault, Holdings(ids, symbols, quantity, price, haircut, eligible),
                                  [required[account] for account in ids], risk, self.limits)
        return dict(zip(ids, values, strict=True))

    def collateral(self, onchain_id: str) -> Decimal:
        """Post-haircut collateral of an account as the vault values it, USD rounded down to the cent."""
        return coverage.usd(self.ledger.collateral_value(bytes.fromhex(onchain_id[2:])))

    def intraday(self, at: datetime, *, threshold: float = 0.05) -> CycleSummary | None:
        """Between scheduled cycles: when a guarded price has moved more than ``threshold`` since the
        last cycle, revalue every account's collateral at the new prices (on chain) against the
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
            if queries.open_call(session, account_id) is not None or queries.in_default(session, account_id):
                raise WorkflowError(f"{account_id} has an open margin call or is in default: no release")
            held = session.get(Holding, (account_id, symbol))
            if held is None or int(held.units) < units:
                raise WorkflowError(f"{account_id} holds {0 if held is None else int(held.units)} {symbol} units, "
                                    f"fewer than the {units} asked")
            required = queries.latest_requirement(session, account_id)
            onchain = account.onchain_id
            asset = self.ledger.asset_parameters(symbol)
            value = Decimal(post_haircut_micro(units, price_e8=asset.price_e8, haircut_bps=asset.haircut_bps,
                                               decimals=asset.decimals)) / MICRO
            after = self.counted(session, [account], {account_id: required})[account_id] - value
        if after < required:
            raise WorkflowError(f"release refused: {account_id} would hold {after:.2f} USD against a requirement "
                                f"of {required} USD")
        return self.execute(key, "release", {"onchain_id": onchain, "symbol": symbol, "units": units})

    # ---- calls ------------------------------------------------------------------------------------
    def on_collateral(self, account_id: str) -> str | None:
        """After a member pledged: sync the book, then move the account's open call by its coverage."""
        self.sync()
        now = self.clock.now()
        with self.store.session() as session:
            call = queries.open_call(session, account_id)
            if call is None:
                return None
            account = session.get(Account, account_id)
            required = session.get(Requirement, (call.cycle_id, account_id)).requirement
            collateral = self.counted(session, [account], {account_id: required})[account_id]
            cover = collateral - required
            target = calls.apply(call.state, calls.payment_event(cover))
            call.cured_amount = max(call.amount + cover, Decimal("0.00")).quantize(CENT)
            if target == calls.CURED:
                call.cured_amount = call.amount
                call.settled_at = now
            session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=target,
                                  detail=f"coverage {cover} USD"))
            log.info("margin call moved", key=call.key, account=account_id, source=call.state, target=target)
            call.state = target
            return target

    def process_due(self) -> list[tuple[str, str]]:
        """Escalate calls past their deadline, default those past the grace; returns (call key, state)."""
        now = self.clock.now()
        moved, defaults = [], []
        with self.store.session() as session:
            for call in session.scalars(select(MarginCall).where(MarginCall.state.in_(calls.OPEN_STATES))):
                event = calls.due_event(call.state, issued_at=utc(call.issued_at), now=now,
                                        deadline=self.config.deadline, grace=self.config.grace)
                if event is None:
                    continue
                target = calls.apply(call.state, event)
                session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=target, detail=event))
                call.state = target
                moved.append((call.key, target))
                if target == calls.DEFAULTED:
                    defaults.append(session.get(Account, call.account_id))
        for account in defaults:
            self.execute(f"default:{account.id}", "declare_default", {"onchain_id": account.onchain_id})
        return moved

    # ---- ISO 20022 ----------------------------------------------------------------------------------
    def call_message(self, key: str, *, clearing_house: str = "tokenclear CCP") -> bytes:
        """The colr.003 MarginCallRequest of the call ``key``."""
        from tokenclear.clearing.iso20022 import CallMessage, margin_call_request

        with self.store.session() as session:
            call = queries.call_by_key(session, key)
            if call is None:
                raise WorkflowError(f"no margin call '{key}'")
            account = session.get(Account, call.account_id)
            return margin_call_request(CallMessage(call.key, clearing_house, account.member_id, account.id,
                                                   utc(call.issued_at), utc(call.deadline), call.amount,
                                                   call.currency))

    def receive_answer(self, data: bytes, *, source: str = "colr.004") -> str:
        """A member's colr.004: an agreed amount acknowledges the call, a dispute is recorded with its
        reason (the call keeps running to its deadline). Returns the call's state."""
        from tokenclear.clearing.iso20022 import margin_call_response

        answer = margin_call_response(data, source=source)
        now = self.clock.now()
        with self.store.session() as session:
            call = queries.call_by_key(session, answer.call_id)
            if call is None:
                raise WorkflowError(f"{source}: answers unknown margin call '{answer.call_id}'")
            if answer.disputed is not None:
                session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=call.state,
                                      detail=f"disputed {answer.disputed} USD: {answer.reason}"))
                return call.state
            if call.state == calls.ISSUED:
                session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=calls.ACKNOWLEDGED,
                                      detail=f"agreed {answer.agreed} USD ({answer.transaction_id})"))
                call.state = calls.apply(call.state, "acknowledge")
            return call.state

    # ---- reconciliation ---------------------------------------------------------------------------
    def reconcile(self) -> list[Break]:
        """The book against the chain, per account and token; every difference with its cause."""
        self.sync()
        return reconciliation.reconcile(self.store, self.ledger, [t.symbol for t in self.tokens], self.clock.now())


FAILPOINT_ENV = "TOKENCLEAR_FAILPOINT"
#: Fault injection in process (the crash campaign): called at every instruction boundary.
failpoint_hook: Callable[[str, str], None] | None = None


def failpoint(stage: str, kind: str) -> None:
    """Fault injection for crash tests: ``TOKENCLEAR_FAILPOINT=after-send:settle_payments`` kills the process
    (SIGKILL, no clean-up) at that point of that instruction kind; ``TOKENCLEAR_FAILPOINT=at:N`` at the N-th
    instruction boundary (before or after a send) of any kind."""
    wanted = os.environ.get(FAILPOINT_ENV)
    if wanted is not None:
        if wanted.startswith("at:"):
            global _boundaries
            _boundaries += 1
            if _boundaries == int(wanted[3:]):
                os.kill(os.getpid(), signal.SIGKILL)
        elif wanted == f"{stage}:{kind}":
            os.kill(os.getpid(), signal.SIGKILL)
    if failpoint_hook is not None:
        failpoint_hook(stage, kind)


_boundaries = 0


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC columns; every time in the book is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
