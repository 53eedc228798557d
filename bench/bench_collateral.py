"""Speed of the collateral core, with the allocation's outcome against a naive one.

* haircut calibration of every registry asset over its whole history (one as-of date, and the
  monthly review at every month-end of the data);
* valuation of 10,000 accounts x 20 assets (haircuts, eligibility, wrong-way, concentration limits);
* allocation for 1,000 members x 20 assets x 3 clearing houses (HiGHS LP against the naive greedy).

Inventories and requirements are random (seeded); haircuts, eligibility, limits and yields are the
shipped reference data. Run: make bench.
"""

from __future__ import annotations

import time

import numpy as np

from tokenclear.collateral import files
from tokenclear.collateral.allocation import AllocationProblem, naive, optimal
from tokenclear.collateral.haircuts import calibrate
from tokenclear.collateral.limits import portfolio_correlation, resolve_limits, wrong_way
from tokenclear.collateral.valuation import value_collateral
from tokenclear.settings import PROJECT_DATA

ACCOUNTS, MEMBERS, SCENARIOS = 10_000, 1_000, 1_250
HOUSES = ["CME", "CFTC_PILOT", "tokenclear"]
ELIGIBLE_ON = np.datetime64("2026-01-05")
REPEAT = 3
TARGETS = {"calibration": 1.0, "valuation": 0.2, "allocation": 10.0}


def best_of(work, repeat: int = REPEAT) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def line(name: str, seconds: float, target: float | None = None, extra: str = "") -> None:
    ratio = f"  ({seconds / target:.2f} of the {target:g} s target)" if target else ""
    print(f"{name:<58}{seconds:>9.3f} s{ratio}{extra}")


def main() -> None:
    reference = files.load_reference(PROJECT_DATA / "collateral")
    registry = reference.registry.subset([name for name in reference.registry.names if name != "TMMFD"])
    prices, volumes = files.load_market(PROJECT_DATA / "market", PROJECT_DATA / "volume", registry, "USD")
    as_of = files.default_as_of(prices, registry)
    print(f"registry: {len(registry)} assets; as of {as_of}")

    seconds, table = best_of(lambda: calibrate(registry, market=prices, volumes=volumes, floors=reference.floors,
                                               as_of=as_of))
    line("haircut calibration, every asset, whole history", seconds, TARGETS["calibration"])
    month_ends = np.unique((prices.get("btc_usd").dates.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1)
    month_ends = month_ends[(month_ends >= np.datetime64("2021-03-31")) & (month_ends <= as_of)]
    start = time.perf_counter()
    history = [calibrate(registry, market=prices, volumes=volumes, floors=reference.floors, as_of=day)
               for day in month_ends]
    monthly = time.perf_counter() - start
    line(f"monthly review series ({month_ends.size} month-ends)", monthly, None,
         f"  ({monthly / month_ends.size * 1e3:.1f} ms per date)")
    usdc = np.array([one.of("USDC") for one in history])
    eth = np.array([one.of("ETH") for one in history])
    print(f"  published USDC {usdc.min():.1%}..{usdc.max():.1%}, ETH {eth.min():.1%}..{eth.max():.1%} "
          "across the month-ends")

    rng = np.random.default_rng(11)
    count = len(registry)
    price = np.array([prices.get(a.price_series).closes[prices.get(a.price_series).dates <= as_of][-1]
                      if a.price_series else 1.0 for a in registry.assets])
    fx = np.array([prices.get(f"{a.currency.lower()}_usd").closes[-1] if a.currency != "USD" else 1.0
                   for a in registry.assets])
    quantity = rng.lognormal(10, 2, (ACCOUNTS, count)) / price * (rng.random((ACCOUNTS, count)) < 0.4)
    requirement = rng.lognormal(13, 1.5, ACCOUNTS)
    caps = resolve_limits(reference.limits, registry)
    eligible = reference.schedules.eligible_mask(registry.assets, "tokenclear", ELIGIBLE_ON)
    pnl = rng.standard_normal((ACCOUNTS, SCENARIOS))
    returns = rng.standard_normal((SCENARIOS, count)) * 0.02
    seconds_corr, corr = best_of(lambda: portfolio_correlation(pnl, returns))
    way = wrong_way(corr, table.market)
    seconds, valuation = best_of(lambda: value_collateral(quantity, price=price, fx=fx, haircut=table.published,
                                                          eligible=eligible, requirement=requirement, caps=caps,
                                                          wrong_way=way))
    line(f"valuation {ACCOUNTS:,} accounts x {count} assets (limits, wrong-way)", seconds, TARGETS["valuation"])
    line(f"  wrong-way correlation ({SCENARIOS:,} scenarios)", seconds_corr)
    start = time.perf_counter()
    exact = [valuation.exact(i) for i in range(ACCOUNTS)]
    line("  exact Decimal boundary for every account", time.perf_counter() - start)
    short = sum(1 for _, _, coverage in exact if coverage < 0)
    print(f"  {short:,} of {ACCOUNTS:,} accounts short; {valuation.over_limits.sum() / 1e6:,.1f}m USD kept from "
          "counting by concentration limits")

    houses = len(HOUSES)
    inventory = rng.lognormal(15, 1.0, (MEMBERS, count)) * (rng.random((MEMBERS, count)) < 0.8)
    demand = rng.lognormal(15.5, 1.0, (MEMBERS, houses))
    demand = np.minimum(demand, inventory.sum(axis=1, keepdims=True) / (houses * 4))  # members can cover
    eligible_at = np.stack([reference.schedules.eligible_mask(registry.assets, house, ELIGIBLE_ON)
                            for house in HOUSES], axis=1)
    problem = AllocationProblem(inventory=inventory, requirement=demand,
                                haircut=np.repeat(table.published[:, None], houses, axis=1), eligible=eligible_at,
                                yield_annual=registry.column("yield_annual"),
                                yield_pledged=registry.column("yield_pledged"), caps=caps)
    seconds_naive, plain = best_of(lambda: naive(problem), repeat=1)
    seconds, best = best_of(lambda: optimal(problem), repeat=1)
    line(f"allocation {MEMBERS:,} members x {count} assets x {houses} houses (HiGHS)", seconds, TARGETS["allocation"])
    line("  naive greedy with a 6% buffer", seconds_naive)
    ours, theirs = best.report(problem), plain.report(problem)
    print(f"  {'':<28}{'naive':>16}{'optimal':>16}")
    for key, label in (("requirement", "requirement (m USD)"), ("cover", "cover counted (m USD)"),
                       ("excess", "cover above requirement (m)"), ("shortfall", "shortfall (m USD)"),
                       ("pledged_market_value", "market value pledged (m)"), ("cost_annual", "cost a year (m USD)"),
                       ("yield_kept_annual", "yield kept a year (m USD)")):
        print(f"  {label:<28}{theirs[key] / 1e6:>16,.2f}{ours[key] / 1e6:>16,.2f}")
    print(f"  over-provisioning: naive {theirs['excess_share']:.2%}, optimal {ours['excess_share']:.2%}; "
          f"collateral freed {(theirs['pledged_market_value'] - ours['pledged_market_value']) / 1e6:,.1f}m USD; "
          f"cost ratio optimal/naive {ours['cost_annual'] / theirs['cost_annual']:.2f}")


if __name__ == "__main__":
    main()
