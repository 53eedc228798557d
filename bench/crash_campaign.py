"""Crash campaign: a full run of the clearing workflow (parameters, VM, calls and cures, floors, defaults,
releases) killed at random instruction boundaries and restarted each time.

1. Embedded EVM, in-process kills (``SimulatedCrash``: the chain lives in this process), KILLS kills.
2. anvil, in-process kills, KILLS kills (the chain is a separate node).
3. anvil, real SIGKILLs: ``tokenclear demo --rpc-url`` killed at a random boundary (``TOKENCLEAR_FAILPOINT=at:N``),
   then a restart that attaches, completes what was in flight and reconciles; SIGKILLS kills.

Prints kills, restarts, instructions, lost, applied twice and reconciliation breaks (all but the first three must
be 0). Run: ``.venv/bin/python bench/crash_campaign.py [KILLS] [SIGKILLS]`` (``CAMPAIGN_PARTS=embedded,anvil,sigkill``
by default; name fewer to run fewer).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tokenclear import logs
from tokenclear.clearing.campaign import applied_twice, campaign
from tokenclear.clearing.demo import Demo
from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import RpcChain, embedded_chain
from tokenclear.settings import Settings
from tokenclear.store.models import Instruction
from tokenclear.store.store import open_store

KILLS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
SIGKILLS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
MEMBERS = 6
PER_RUN = 10


def report(name: str, result, seconds: float) -> None:
    print(f"{name}: {result.kills} kills, {result.restarts} restarts, {result.instructions} instructions "
          f"({result.boundaries} boundaries a run); lost {result.lost}, applied twice {result.applied_twice}, "
          f"reconciliation breaks {result.reconciliation_breaks}; {seconds:.0f} s")
    for line in result.differences:
        print("  difference:", line)


def embedded(folder: Path) -> None:
    count = [0]

    def make():
        count[0] += 1
        return embedded_chain(), open_store(f"sqlite:///{folder / f'embedded-{count[0]}.db'}")

    started = time.perf_counter()
    report("embedded EVM, in-process kills", campaign(make, kills=KILLS, per_run=PER_RUN, members=MEMBERS),
           time.perf_counter() - started)


def on_anvil(folder: Path) -> None:
    count = [0]
    with anvil() as node:
        def make():
            count[0] += 1  # one node, a fresh deployment and book a run
            return RpcChain(node.url, node.funder_key), open_store(f"sqlite:///{folder / f'anvil-{count[0]}.db'}")

        started = time.perf_counter()
        # anvil's clock runs in real time: T-bills accrete by the second, so cure pledges (the members' own
        # arithmetic) differ by a few units between runs; T-bill holdings are left out of the comparison
        result = campaign(make, kills=KILLS, per_run=PER_RUN, members=MEMBERS, skip_assets=frozenset({"TBILL"}))
        report("anvil, in-process kills (T-bill holdings not compared)", result, time.perf_counter() - started)


def sigkills(folder: Path) -> None:
    rng = random.Random(2023)
    executable = Path(sys.executable).with_name("tokenclear")
    kills = lost = twice = breaks = 0
    started = time.perf_counter()
    for n in range(SIGKILLS):
        with anvil() as node:
            url = f"sqlite:///{folder / f'sigkill-{n}.db'}"
            boundary = rng.randint(1, 80)
            env = {**os.environ, "TOKENCLEAR_PRIVATE_KEY": node.funder_key, "TOKENCLEAR_FAILPOINT": f"at:{boundary}"}
            done = subprocess.run([str(executable), "demo", "--rpc-url", node.url, "--database", url, "--members",
                                   str(MEMBERS), "--json"], capture_output=True, text=True, env=env, timeout=600,
                                  check=False)
            if done.returncode != -signal.SIGKILL:
                continue  # the run ended before that boundary
            kills += 1
            store = open_store(url)
            demo = Demo(settings=Settings(), chain=RpcChain(node.url, node.funder_key), store=store, scenario="svb",
                        members=MEMBERS)
            workflow, _ = demo.resume()
            breaks += len(workflow.reconcile())
            with store.session() as session:
                rows = list(session.query(Instruction))
                lost += sum(1 for row in rows if row.status != "confirmed")
                keys = [row.key for row in rows]
            twice += applied_twice(demo, keys)
    print(f"anvil, SIGKILL of `tokenclear demo` at a random boundary then restart: {kills} kills; lost {lost}, "
          f"applied twice {twice}, reconciliation breaks {breaks}; {time.perf_counter() - started:.0f} s")


def main() -> None:
    logs.configure(level=logging.ERROR)
    parts = os.environ.get("CAMPAIGN_PARTS", "embedded,anvil,sigkill").split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, part in (("embedded", embedded), ("anvil", on_anvil), ("sigkill", sigkills)):
            if name in parts:
                part(folder)


if __name__ == "__main__":
    main()
