"""Speed of the stress core: 10,000 accounts of 1,000 members on the catalogue's instruments, 13 scenarios
(random moves of the scale of the shipped library), 5 collateral assets; Cover 2, contributions and one reverse
stress multiple (bisection, ~20 revaluations). Quantities are random (seeded); the instruments are resolved on
the shipped data. Prints seconds and accounts x scenarios per second. Run: make bench."""

from __future__ import annotations

import time

import numpy as np

from tokenclear import runner
from tokenclear.settings import Settings
from tokenclear.stress.losses import Shocks, StressBook, contributions, cover2, losses, reverse_multiple

ACCOUNTS, MEMBERS, SCENARIOS, ASSETS = 10_000, 1_000, 13, 5


def main() -> None:
    settings = Settings()
    config = runner.risk_setup(settings, stress_period="none").config
    _, context = runner.load_context(settings, config, positions=None, instruments=None, prices=None, as_of=None)
    rng = np.random.default_rng(7)
    instruments = context.book.quantity.shape[1]
    quantity = rng.integers(-20, 21, (ACCOUNTS, instruments)).astype(float)
    book = StressBook([f"M{i % MEMBERS:04d}-{i}" for i in range(ACCOUNTS)], [f"M{m:04d}" for m in range(MEMBERS)],
                      np.arange(ACCOUNTS) % MEMBERS, context.resolved, quantity,
                      rng.uniform(0, 50_000, (ACCOUNTS, ASSETS)), np.ones(ASSETS), np.full(ASSETS, 0.05), 2.0)
    factors = len(context.factors.names)
    shocks = [Shocks(rng.normal(0, 0.15, factors), rng.uniform(0.8, 1.0, ASSETS), np.full(ASSETS, 0.1),
                     np.zeros(ASSETS, dtype=bool)) for _ in range(SCENARIOS)]
    start = time.perf_counter()
    result = losses(book, shocks)
    cover = cover2(result.by_group)
    contributions(cover.fund, result.by_group)
    middle = time.perf_counter()
    k = reverse_multiple(book, shocks[cover.scenario], 1.5 * cover.fund)
    end = time.perf_counter()
    rate = ACCOUNTS * SCENARIOS / (middle - start)
    print(f"stress: {ACCOUNTS:,} accounts x {instruments} instruments x {SCENARIOS} scenarios: losses, Cover 2 and "
          f"contributions {middle - start:.3f} s ({rate:,.0f} account-scenarios/s); reverse multiple {k:.3f} "
          f"in {end - middle:.3f} s")


if __name__ == "__main__":
    main()
