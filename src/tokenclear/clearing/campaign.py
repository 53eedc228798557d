"""The crash campaign: a full run of the clearing workflow (parameters, VM, calls and cures, floors,
defaults, releases) killed at random instruction boundaries, each kill followed by a restart that
completes what was in flight and carries on. Measures what matters: instructions lost, instructions
applied twice, reconciliation breaks; all must be 0.

A kill drops everything the clearing process holds in memory (the workflow, its guard and risk state);
what survives is what survives a real crash: the book's database and the chain. On the embedded EVM the
kill is in-process (a ``SimulatedCrash`` raised at the boundary: the chain lives in this process, so a
SIGKILL would take it along); on a JSON-RPC node it may be a real SIGKILL of a child process (see
``bench/crash_campaign.py``). The members' side (their wallets and behaviour) is the demo's simulator.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from tokenclear.clearing import instructions as instructions_module
from tokenclear.clearing.demo import Demo, DemoResult
from tokenclear.ledger.chain import Chain
from tokenclear.ledger.ledger import instruction_key
from tokenclear.settings import Settings
from tokenclear.store.models import Holding, Instruction, MarginCall
from tokenclear.store.store import Store

EFFECTS = {"Pledged", "Released", "Seized", "Substituted", "BatchSettled", "DvPSettled"}  # keyed effects


class SimulatedCrash(BaseException):  # noqa: N818 - a crash, not an error: nothing may catch it
    """The process dies here (BaseException: no ``except Exception`` in the workflow catches it)."""


@dataclass
class CampaignResult:
    kills: int = 0
    restarts: int = 0
    boundaries: int = 0
    instructions: int = 0
    lost: int = 0  # instructions not confirmed at the end, or final state different from the unkilled run
    applied_twice: int = 0  # instruction keys with more than one effect on chain
    reconciliation_breaks: int = 0  # summed over every restart and the end
    differences: list[str] = field(default_factory=list)


class Killer:
    """Counts instruction boundaries and raises :class:`SimulatedCrash` at the chosen ones."""

    def __init__(self, at: set[int]) -> None:
        self.at, self.count, self.kills = set(at), 0, 0

    def __call__(self, stage: str, kind: str) -> None:
        self.count += 1
        if self.count in self.at:
            self.kills += 1
            raise SimulatedCrash(f"killed at boundary {self.count} ({stage} {kind})")


def full_run(demo: Demo, result: DemoResult, on_restart: Callable[[], None]) -> None:
    """Every day's cycle and the members' answers, then releases of part of the excess, then
    reconciliation; each step is rerun from its start after a crash (every step is idempotent)."""

    def step(work: Callable[[], None]) -> None:
        while True:
            try:
                work()
                return
            except SimulatedCrash:
                restart(demo, on_restart)


    for day in demo.days:
        def cycle(day=day) -> None:
            at = demo._at(day)
            demo.clock.set(max(demo.clock.now(), at))
            demo.workflow.run_cycle(at)
            demo._answer_calls(demo.workflow, demo.ledger, demo.plans, at, result)
        step(cycle)
    plan = release_plan(demo)  # the members decide once; a rerun after a crash asks the same
    step(lambda: releases(demo, plan))


def restart(demo: Demo, on_restart: Callable[[], None]) -> None:
    """A new process: attach, complete what was in flight; a kill during the restart restarts again."""
    while True:
        try:
            demo.resume()
        except SimulatedCrash:
            continue
        on_restart()
        return


def release_plan(demo: Demo) -> list[tuple[str, int]]:
    """Each account asks for 1% of its stablecoin back."""
    with demo.store.session() as session:
        rows = [(h.account_id, int(h.units)) for h in session.scalars(select(Holding).where(Holding.asset == "TUSD"))]
    return [(account, units // 100) for account, units in sorted(rows) if units >= 100]


def releases(demo: Demo, plan: list[tuple[str, int]]) -> None:
    """The members' requests, keyed: a rerun sends the same instruction, carried out once; an account not
    covered, with an open call or in default is refused by the book, as it should be."""
    from tokenclear.clearing.instructions import WorkflowError

    for account, units in plan:
        try:
            demo.workflow.request_release(f"release:{account}", account, "TUSD", units)
        except WorkflowError:
            pass


def final_state(store: Store) -> dict:
    with store.session() as session:
        calls = {c.key: (c.state, str(c.amount), str(c.cured_amount)) for c in session.scalars(select(MarginCall))}
        holdings = {(h.account_id, h.asset): int(h.units) for h in session.scalars(select(Holding)) if h.units}
        instructions = {i.key: (i.kind, i.status) for i in session.scalars(select(Instruction))}
    return {"calls": calls, "holdings": holdings, "instructions": instructions}


def applied_twice(demo: Demo, instruction_keys) -> int:
    """Instruction keys with more than one effect on chain. A vault instruction has one effect event per
    key; a VM batch or a floor posting one event per leg or account, under its chunk's key ``key#i``, so
    those count the ``BatchSettled`` events and the distinct accounts posted."""
    counts: Counter = Counter()
    for event in demo.ledger.vault.history() + demo.ledger.settlement.history():
        if event.name in EFFECTS and "key" in event.args:
            counts[bytes(event.args["key"])] += 1
    keys = {instruction_key(key) for key in instruction_keys}
    keys |= {instruction_key(f"{key}#{i}") for key in instruction_keys for i in range(8)}
    return sum(1 for key, n in counts.items() if n > 1 and key in keys)


def run_once(chain: Chain, store: Store, *, members: int, kill_at: set[int],
             settings: Settings | None = None) -> tuple[dict, CampaignResult, Demo]:
    """One full run with kills at the given boundaries; returns the final state and the counts."""
    demo = Demo(settings=settings or Settings(), chain=chain, store=store, scenario="svb", members=members)
    out = CampaignResult()
    killer = Killer(set())
    instructions_module.failpoint_hook = killer
    try:
        result = demo.setup()  # deployment and opening are not killed: a failed set-up is redone from scratch
        killer.at = {n for n in kill_at}

        def on_restart() -> None:
            out.restarts += 1
            out.reconciliation_breaks += len(demo.workflow.reconcile())

        full_run(demo, result, on_restart)
    finally:
        instructions_module.failpoint_hook = None
    out.kills, out.boundaries = killer.kills, killer.count
    out.reconciliation_breaks += len(demo.workflow.reconcile())
    state = final_state(store)
    out.instructions = len(state["instructions"])
    out.lost = sum(1 for _, status in state["instructions"].values() if status != "confirmed")
    out.applied_twice = applied_twice(demo, state["instructions"])
    return state, out, demo


def campaign(make: Callable[[], tuple[Chain, Store]], *, kills: int, per_run: int, members: int,
             seed: int = 2023, skip_assets: frozenset[str] = frozenset()) -> CampaignResult:
    """Runs until ``kills`` kills have landed, ``per_run`` random boundaries a run; every run's final
    state is compared with an unkilled reference run on a fresh chain and book. ``skip_assets``: holdings
    not compared (on a node whose clock runs in real time, a T-bill's price accretes by the second, so the
    units a member pledges to cure a call differ between two runs by the member's own rounding)."""
    chain, store = make()
    reference, base, _ = run_once(chain, store, members=members, kill_at=set())
    rng = random.Random(seed)
    total = CampaignResult(boundaries=base.boundaries)
    while total.kills < kills:
        # boundaries are counted across restarts (a restart adds its own), so draw from a little beyond the run
        points = set(rng.sample(range(1, int(base.boundaries * 1.2) + 1), per_run))
        chain, store = make()
        state, one, _ = run_once(chain, store, members=members, kill_at=points)
        total.kills += one.kills
        total.restarts += one.restarts
        total.instructions += one.instructions
        total.applied_twice += one.applied_twice
        total.reconciliation_breaks += one.reconciliation_breaks
        differences = compare(reference, state, skip_assets)
        total.lost += one.lost + (1 if differences else 0)
        total.differences += differences
    return total


def compare(reference: dict, state: dict, skip_assets: frozenset[str] = frozenset()) -> list[str]:
    """What differs between two runs' final books (calls, holdings, instruction kinds and statuses)."""
    out = []
    for name in ("calls", "holdings", "instructions"):
        a, b = reference[name], state[name]
        for key in sorted(set(a) | set(b), key=str):
            if name == "holdings" and key[1] in skip_assets:
                continue
            if a.get(key) != b.get(key):
                out.append(f"{name} {key}: {a.get(key)} != {b.get(key)}")
    return out[:20]

