"""Issue 15's figures (the stress one, 50 scenarios x 10,000 accounts x 500 instruments, is bench_stress.py's):
(1) a member's default with 1,000 positions on the embedded chain, planned and carried out (the demo book on a copy
of the shipped data whose catalogue adds 1,000 bitcoin options; M42 buys one of each from M41); (2) the depeg
spiral on 1,000 members over 20 rounds, three policies. Prints seconds against each target. Run: make bench."""

from __future__ import annotations

import time

import numpy as np

from tokenclear.settings import Settings

SCENARIOS, ACCOUNTS, INSTRUMENTS, MEMBERS, ASSETS = 50, 10_000, 500, 1_000, 5


POSITIONS = 1_000


def with_options(folder, count: int):
    """A copy of the shipped data folder whose catalogue also lists ``count`` bitcoin options of December 2023
    (calls and puts, strikes 100 USD apart): the instruments of a member with ``count`` positions."""
    import shutil

    data = Settings().data_dir
    target = folder / "data"
    shutil.copytree(data, target, symlinks=True)
    rows = []
    for k in range(count // 2):
        strike = 10_000 + 100 * k
        rows += [f"BTCZ23-C{strike}X,option,btc_usd,5,USD,2023-12-29,{strike},call,,paid,listed,CME,BTC",
                 f"BTCZ23-P{strike}X,option,btc_usd,5,USD,2023-12-29,{strike},put,,paid,listed,CME,BTC"]
    with open(target / "instruments.csv", "a", encoding="utf-8") as out:
        out.write("\n".join(rows) + "\n")
    return Settings(data_dir=target), [row.split(",")[0] for row in rows]


def default_figure() -> None:
    import logging
    import tempfile
    from pathlib import Path

    from tokenclear import logs
    from tokenclear.clearing.demo import Demo
    from tokenclear.default import drill, manage
    from tokenclear.ledger.chain import embedded_chain
    from tokenclear.store.models import Position
    from tokenclear.store.store import open_store

    logs.configure(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        settings, options = with_options(Path(folder), POSITIONS)
        store = open_store(f"sqlite:///{Path(folder) / 'book.db'}")
        demo = Demo(settings=settings, chain=embedded_chain(), store=store, scenario="svb", members=50)
        result = demo.run()
        member = "M42"
        with store.session() as session:  # M42 buys one of each option from M41: the book stays matched
            for name in options:
                session.add(Position(account_id=f"{member}-HOUSE", instrument=name, quantity=1))
                session.add(Position(account_id="M41-HOUSE", instrument=name, quantity=-1))
            positions = sum(1 for row in session.query(Position).filter(Position.account_id.like(f"{member}-%")))
        wallet = drill.liquidity_provider(demo)
        parties = manage.Parties(liquidity_provider=wallet, liquidity_account=drill.LIQUIDITY_ACCOUNT)
        start = time.perf_counter()
        manage.open_case(settings, demo.workflow, member, result.default_fund["scenario"], parties,
                         at=demo.clock.now(), as_of=str(demo.days[-1]))
        planned = time.perf_counter()
        case = manage.run(demo.workflow, member)
        end = time.perf_counter()
        clean = demo.workflow.reconcile() == []
        with store.session() as session:
            left = session.query(Position).filter(Position.account_id.like(f"{member}-%")).count()
    print(f"default of {member} ({positions} positions, {len(case.plan['steps'])} steps) under {case.scenario} on "
          f"the embedded chain: planned {planned - start:.2f} s, carried out {end - planned:.2f} s, total "
          f"{end - start:.2f} s (target 10 s: {(end - start) / 10:.2f} of it); {left} positions left with "
          f"{member}; reconciliation {'clean' if clean else 'NOT clean'}")


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
    default_figure()


if __name__ == "__main__":
    main()
