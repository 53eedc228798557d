"""Speed of the stress core: 10,000 accounts of 1,000 members on the catalogue's instruments, 13 scenarios
(random moves of the scale of the shipped library), 5 collateral assets; Cover 2, contributions and one reverse
stress multiple (bisection, ~20 revaluations); then issue 15's figure, 50 scenarios x 10,000 accounts x 500
instruments (the catalogue's instruments tiled to 500, strikes and forwards kept) against a 2 s target.
Quantities are random (seeded); the instruments are resolved on the shipped data. Prints seconds and accounts x
scenarios per second. Run: make bench."""

from __future__ import annotations

import time
from dataclasses import fields, replace

import numpy as np

from tokenclear import runner
from tokenclear.settings import Settings
from tokenclear.stress.losses import Shocks, StressBook, contributions, cover2, losses, reverse_multiple

ACCOUNTS, MEMBERS, SCENARIOS, ASSETS = 10_000, 1_000, 13, 5


def tiled(resolved, size: int):
    """``resolved`` repeated to ``size`` instruments (every per-instrument array tiled)."""
    reps = -(-size // resolved.size)
    changes = {}
    for field in fields(resolved):
        value = getattr(resolved, field.name)
        changes[field.name] = ([f"{name}#{k}" for k in range(reps) for name in value][:size] if field.name == "names"
                               else np.tile(value, reps)[:size])
    return replace(resolved, **changes)


def run(context, scenarios: int, instruments: int | None, reverse: bool) -> None:
    rng = np.random.default_rng(7)
    resolved = context.resolved if instruments is None else tiled(context.resolved, instruments)
    quantity = rng.integers(-20, 21, (ACCOUNTS, resolved.size)).astype(float)
    book = StressBook([f"M{i % MEMBERS:04d}-{i}" for i in range(ACCOUNTS)], [f"M{m:04d}" for m in range(MEMBERS)],
                      np.arange(ACCOUNTS) % MEMBERS, resolved, quantity,
                      rng.uniform(0, 50_000, (ACCOUNTS, ASSETS)), np.ones(ASSETS), np.full(ASSETS, 0.05), 2.0)
    factors = len(context.factors.names)
    shocks = [Shocks(rng.normal(0, 0.15, factors), rng.uniform(0.8, 1.0, ASSETS), np.full(ASSETS, 0.1),
                     np.zeros(ASSETS, dtype=bool)) for _ in range(scenarios)]
    start = time.perf_counter()
    result = losses(book, shocks)
    cover = cover2(result.by_group)
    contributions(cover.fund, result.by_group)
    middle = time.perf_counter()
    rate = ACCOUNTS * scenarios / (middle - start)
    line = (f"stress: {ACCOUNTS:,} accounts x {resolved.size} instruments x {scenarios} scenarios: losses, Cover 2 "
            f"and contributions {middle - start:.3f} s ({rate:,.0f} account-scenarios/s)")
    if reverse:
        k = reverse_multiple(book, shocks[cover.scenario], 1.5 * cover.fund)
        line += f"; reverse multiple {k:.3f} in {time.perf_counter() - middle:.3f} s"
    else:
        line += f" (target 2 s: {(middle - start) / 2:.3f} of it)"
    print(line)


def main() -> None:
    settings = Settings()
    config = runner.risk_setup(settings, stress_period="none").config
    _, context = runner.load_context(settings, config, positions=None, instruments=None, prices=None, as_of=None)
    run(context, SCENARIOS, None, reverse=True)
    run(context, 50, 500, reverse=False)


if __name__ == "__main__":
    main()
