"""Issue 15's figures (the stress one, 50 scenarios x 10,000 accounts x 500 instruments, is bench_stress.py's):
(1) a member's default on the embedded chain,
planned and carried out (the demo book, the member with the most positions; its positions are few: the chain's
work grows with the collateral tokens, the book's with the positions); (2) the depeg spiral on 1,000 members over
20 rounds, three policies. Prints seconds against each target. Run: make bench."""

from __future__ import annotations

import time

import numpy as np

from tokenclear.settings import Settings

SCENARIOS, ACCOUNTS, INSTRUMENTS, MEMBERS, ASSETS = 50, 10_000, 500, 1_000, 5


def default_figure(settings: Settings) -> None:
    import logging
    import tempfile
    from pathlib import Path

    from sqlalchemy import func, select

    from tokenclear import logs
    from tokenclear.clearing.demo import Demo
    from tokenclear.default import drill, manage
    from tokenclear.ledger.chain import EmbeddedChain
    from tokenclear.store.models import Account, Position
    from tokenclear.store.store import open_store

    logs.configure(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'book.db'}")
        demo = Demo(settings=settings, chain=EmbeddedChain(), store=store, scenario="svb", members=50)
        result = demo.run()
        with store.session() as session:
            counts = session.execute(select(Account.member_id, func.count(Position.instrument))
                                     .join(Position, Position.account_id == Account.id)
                                     .group_by(Account.member_id)).all()
        member, positions = max(counts, key=lambda row: (row[1], row[0]))
        wallet = drill.liquidity_provider(demo)
        parties = manage.Parties(liquidity_provider=wallet, liquidity_account=drill.LIQUIDITY_ACCOUNT)
        start = time.perf_counter()
        manage.open_case(settings, demo.workflow, member, result.default_fund["scenario"], parties,
                         at=demo.clock.now(), as_of=str(demo.days[-1]))
        planned = time.perf_counter()
        case = manage.run(demo.workflow, member)
        end = time.perf_counter()
        clean = demo.workflow.reconcile() == []
    print(f"default of {member} ({positions} positions, {len(case.plan['steps'])} steps) under "
          f"{case.scenario} on the embedded chain: planned {planned - start:.2f} s, carried out {end - planned:.2f} s, "
          f"total {end - start:.2f} s (target 10 s: {(end - start) / 10:.2f} of it); reconciliation "
          f"{'clean' if clean else 'NOT clean'}")


def spiral_figure() -> None:
    from tokenclear.default.spiral import ANTI_PROCYCLICAL, DIVERSIFIED, PROCYCLICAL, SpiralBook, SpiralMarket, simulate

    rng = np.random.default_rng(16)
    n, rounds, base = 1_000, 20, 0.02
    requirement = rng.uniform(1e5, 1e8, n)
    share = rng.uniform(0, 1, n)
    units = requirement * 1.05 * share / (1 - base)
    book = SpiralBook(requirement, requirement * 1.05 * (1 - share), units, requirement * 0.05, units)
    path = np.concatenate([np.linspace(1.0, 0.87, 4), np.full(rounds - 4, 0.87)])
    market = SpiralMarket(1.0, path, np.full(rounds, 26.7e9), 0.018, base)
    start = time.perf_counter()
    out = [simulate(book, market, policy) for policy in (PROCYCLICAL, ANTI_PROCYCLICAL, DIVERSIFIED)]
    seconds = time.perf_counter() - start
    print(f"spiral: {n:,} members x {rounds} rounds x 3 policies: {seconds:.3f} s (target 2 s: {seconds / 2:.3f} of "
          f"it); forced sales {', '.join(f'{one.forced_sales / 1e9:.2f}' for one in out)} bn USD")


def main() -> None:
    spiral_figure()
    default_figure(Settings())


if __name__ == "__main__":
    main()
