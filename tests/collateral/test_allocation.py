"""Allocation: a worked LP example, the constraints on random books, and LP against naive."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenclear.collateral.allocation import AllocationProblem, naive, optimal
from tokenclear.collateral.limits import resolve_limits

NAMES = ["USD", "USDC", "TMMF", "TBILL", "UST_5_10Y", "ETH", "JPM"]


@pytest.fixture(scope="module")
def setup(reference):
    registry = reference.registry.subset(NAMES)
    return registry, resolve_limits(reference.limits, registry)


def problem(setup, inventory, requirement, haircut=None, eligible=None, excluded=None):
    registry, caps = setup
    houses = np.asarray(requirement).shape[1]
    haircut = np.array([0.0, 0.035, 0.005, 0.005, 0.025, 0.175, 0.085]) if haircut is None else haircut
    return AllocationProblem(
        inventory=np.asarray(inventory, float), requirement=np.asarray(requirement, float),
        haircut=np.repeat(haircut[:, None], houses, axis=1),
        eligible=np.ones((len(NAMES), houses), bool) if eligible is None else eligible,
        yield_annual=registry.column("yield_annual"), yield_pledged=registry.column("yield_pledged"), caps=caps,
        excluded=excluded)


def test_worked_example(setup):
    # one member, one house, requirement 100. Costs a year per unit pledged (funding 4.3%):
    # USD 0.3% (yield 4.3% -> 4.0% pledged); USDC 0 + 3.5% x 4.3% = 0.1505%; TMMF 0 + 0.5% x 4.3% = 0.0215%;
    # ETH 3% staking forgone + 17.5% x 4.3%. TMMF is cheapest but its issuer counts up to 40%; USDC next
    # (Circle up to 40%), but both live on ethereum, which counts up to 75%: USDC covers 35; the rest in cash.
    inventory = [[1_000.0, 1_000.0, 1_000.0, 0.0, 0.0, 1_000.0, 0.0]]
    p = problem(setup, inventory, [[100.0]])
    result = optimal(p)
    pledge = result.pledge[0, :, 0]
    assert pledge[2] == pytest.approx(40 / 0.995)
    assert pledge[1] == pytest.approx(35 / 0.965)
    assert pledge[0] == pytest.approx(25.0)
    assert pledge[5] == pytest.approx(0.0, abs=1e-9)
    assert result.cover[0, 0] == pytest.approx(100.0) and result.shortfall.sum() == pytest.approx(0, abs=1e-9)
    report = result.report(p)
    registry, _ = setup
    usd = registry.get("USD")
    expected_cost = (25 * (usd.yield_annual - usd.yield_pledged) + 35 / 0.965 * 0.035 * p.funding_rate
                     + 40 / 0.995 * 0.005 * p.funding_rate)
    assert report["cost_annual"] == pytest.approx(expected_cost)
    assert report["excess"] == pytest.approx(0.0, abs=1e-7)


def test_naive_posts_cash_first_with_a_six_percent_buffer(setup):
    p = problem(setup, [[1_000.0, 1_000.0, 1_000.0, 0.0, 0.0, 1_000.0, 0.0]], [[100.0]])
    result = naive(p)
    assert result.pledge[0, 0, 0] == pytest.approx(106.0) and result.pledge[0, 1:, 0].sum() == 0  # no cash limit
    assert result.report(p)["excess_share"] == pytest.approx(0.06)


def test_ineligible_and_own_issuer_assets_are_never_pledged(setup):
    eligible = np.ones((len(NAMES), 1), bool)
    eligible[NAMES.index("TMMF"), 0] = False
    excluded = np.zeros((1, len(NAMES)), bool)
    excluded[0, NAMES.index("USDC")] = True
    p = problem(setup, [[10.0, 1_000.0, 1_000.0, 0, 0, 0, 0]], [[100.0]], eligible=eligible, excluded=excluded)
    result = optimal(p)
    assert result.pledge[0, NAMES.index("TMMF"), 0] == 0 and result.pledge[0, NAMES.index("USDC"), 0] == 0
    assert result.shortfall[0, 0] == pytest.approx(90.0)  # only the cash counts


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_random_books_respect_every_constraint_and_beat_naive(setup, seed):
    registry, caps = setup
    rng = np.random.default_rng(seed)
    members, houses = 6, 3
    inventory = rng.lognormal(5, 1, (members, len(NAMES))) * (rng.random((members, len(NAMES))) < 0.8)
    requirement = rng.lognormal(4, 1, (members, houses))
    eligible = rng.random((len(NAMES), houses)) < 0.8
    p = problem(setup, inventory, requirement, eligible=eligible)
    best, greedy = optimal(p), naive(p, buffer=0.0)
    tolerance = 1e-6 * (1 + inventory.sum())
    assert np.all(best.pledge >= -1e-9) and np.all(best.pledge.sum(axis=2) <= inventory + tolerance)
    assert np.all(best.pledge[:, ~eligible] <= 1e-9)
    assert np.all(best.cover + best.shortfall >= requirement - tolerance)
    for one in caps:
        inside = np.einsum("mac,ag,ac->mgc", best.pledge, one.membership, 1 - p.haircut)
        assert np.all(inside <= one.caps[None, :, None] * requirement[:, None, :] + tolerance)
    # at the same (zero) buffer the LP never covers less, and when both cover fully it costs no more
    assert best.shortfall.sum() <= greedy.shortfall.sum() + tolerance
    if greedy.shortfall.sum() < 1e-9:
        assert best.report(p)["cost_annual"] <= greedy.report(p)["cost_annual"] + 1e-9
