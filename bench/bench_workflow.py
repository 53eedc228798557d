"""A full margin cycle for 1,000 members on the embedded defaults (SQLite file, in-process EVM):
prices and haircuts on chain, the VM batch, HS-VaR requirements, valuation from the vault, calls,
the members' pledges settled on chain, reconciliation. Prints each stage's time and share, and the
time from the price move to the last call settled on chain. Run: make bench, or
``python bench/bench_workflow.py [MEMBERS] [--evm revm|py-evm]`` (default 1,000 members on revm).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from tokenclear import logs
from tokenclear.clearing.demo import Demo, DemoResult
from tokenclear.ledger.chain import ENGINES, embedded_chain
from tokenclear.settings import Settings
from tokenclear.store import queries
from tokenclear.store.store import open_store

TARGET_S = 60.0


def arguments() -> tuple[int, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="?", type=int, default=1_000)
    parser.add_argument("--evm", choices=list(ENGINES), default="revm", help="the embedded EVM")
    args = parser.parse_args()
    return args.members, args.evm


def main() -> None:
    members, evm = arguments()
    logs.configure(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'book.db'}")
        demo = Demo(settings=Settings(), chain=embedded_chain(evm), store=store, scenario="svb", members=members)
        start = time.perf_counter()
        result: DemoResult = demo.setup()
        print(f"{members:,} members, {result.accounts:,} accounts on the embedded EVM ({evm}); set-up (deploy, "
              f"onboard, opening pledges) {time.perf_counter() - start:.1f} s (not part of a cycle)")
        demo.step(demo.days[0], result)  # Friday: the first scheduled cycle after the opening
        day = demo.days[1]  # Saturday 2023-03-11: USDC at 0.9715
        before = len(result.settle_times_s)
        stages = demo.step(day, result)
        released = stages.pop("excess released on chain")  # the members' own requests, not the clearing cycle
        with demo.store.session() as session:
            releases = sum(1 for key in queries.instruction_keys(session) if key.startswith(f"release:{day}:"))
        started = time.perf_counter()
        breaks = demo.workflow.reconcile()
        stages["reconciliation"] = time.perf_counter() - started
        total = sum(stages.values())
        print(f"cycle of {day} (calls issued: {result.steps[-1]['calls_issued']}, reconciliation "
              f"{'clean' if not breaks else f'{len(breaks)} breaks'})")
        for stage, seconds in stages.items():
            print(f"  {stage:<45}{seconds:>8.2f} s  {seconds / total:>6.1%}")
        print(f"  {'whole cycle':<45}{total:>8.2f} s  ({total / TARGET_S:.2f} of the {TARGET_S:.0f} s target)")
        print(f"members' releases of excess after the cycle (not part of it): {releases:,} in {released:.1f} s, "
              f"{released / max(releases, 1) * 1000:.0f} ms each (sync, valuation against the floor, release on chain)")
        settled = result.settle_times_s[before:]
        if settled:
            median = sorted(settled)[len(settled) // 2]
            print(f"price move to the last call settled on chain: {max(settled) / 60:.1f} min simulated (members "
                  f"answer within 10 min, or in two parts within 50 min); median {median:.0f} s")
        print("baseline in the field: about one hour to meet a call, next-day collection from clients")


if __name__ == "__main__":
    main()
