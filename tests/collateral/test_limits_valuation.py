"""Concentration limits, wrong-way risk and valuation: worked examples and invariants."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tokenclear.collateral.limits import (
    Limit,
    apply_caps,
    own_issuer,
    portfolio_correlation,
    resolve_limits,
    wrong_way,
)
from tokenclear.collateral.valuation import post_haircut_micro, value_collateral

NAMES = ["USD", "USDC", "USDT", "TMMF", "BTC", "ETH", "JPM"]


@pytest.fixture(scope="module")
def small(reference):
    registry = reference.registry.subset(NAMES)
    return registry, resolve_limits(reference.limits, registry)


def test_worked_example_of_concentration_caps(small):
    registry, caps = small
    # requirement 1,000: stablecoins count up to 50% (500), any one issuer up to 40% (400),
    # crypto up to 25% (250), equity 20% (200), ethereum 75% (750)
    value = np.array([[0.0, 450.0, 150.0, 0.0, 100.0, 300.0, 500.0]])
    counted = apply_caps(value, np.array([1000.0]), caps)[0]
    # issuer: Circle 450 -> 400, JPMorgan 500 -> 400; kind: stablecoins 400 + 150 = 550 -> 500 pro rata,
    # crypto 400 -> 250 pro rata, equity 400 -> 200; chain: ethereum holds USDC, USDT, ETH (= 1000 x
    # shares below) and is then within 750? USDC 363.64 + USDT 136.36 + ETH 187.5 = 687.5 <= 750
    usdc, usdt = 400 * 500 / 550, 150 * 500 / 550
    btc, eth = 100 * 250 / 400, 300 * 250 / 400
    assert counted == pytest.approx([0.0, usdc, usdt, 0.0, btc, eth, 200.0])
    kinds = {"stablecoin": counted[1] + counted[2], "crypto": counted[4] + counted[5], "equity": counted[6]}
    assert kinds == pytest.approx({"stablecoin": 500.0, "crypto": 250.0, "equity": 200.0})


@settings(max_examples=60, deadline=None)
@given(value=arrays(np.float64, (4, len(NAMES)), elements=st.floats(0, 1e7)),
       requirement=arrays(np.float64, 4, elements=st.floats(0, 1e7)))
def test_caps_never_raise_a_value_and_every_limit_holds(small, value, requirement):
    registry, caps = small
    counted = apply_caps(value, requirement, caps)
    assert np.all(counted <= value * (1 + 1e-12) + 1e-9) and np.all(counted >= 0)
    for one in caps:
        finite = np.isfinite(one.caps)
        sums = counted @ one.membership[:, finite]
        allowed = one.caps[finite][None, :] * requirement[:, None]
        assert np.all(sums <= allowed * (1 + 1e-9) + 1e-6)


def test_correlation_matches_numpy_and_wrong_way_rules(reference):
    rng = np.random.default_rng(5)
    returns = rng.normal(0, 0.02, (300, 3))
    returns[:, 2] = 0.0  # cash: no co-movement
    pnl = np.stack([5e6 * returns[:, 0] + rng.normal(0, 1e4, 300),  # long the asset it posts
                    -3e6 * returns[:, 1], rng.normal(0, 1e5, 300)])
    corr = portfolio_correlation(pnl, returns)
    for i in range(3):
        for j in range(2):
            assert corr[i, j] == pytest.approx(np.corrcoef(pnl[i], returns[:, j])[0, 1], abs=1e-12)
    assert np.all(corr[:, 2] == 0)
    market = np.array([0.15, 0.20, 0.0])
    result = wrong_way(corr, market, threshold=0.5, exclude_above=0.8)
    assert result.excluded[0, 0] and not result.excluded[1, 1]  # long BTC posting BTC: excluded
    assert result.extra_haircut[1, 1] == 0  # short ETH posting ETH: right-way, no credit either way
    mid = wrong_way(np.array([[0.6]]), np.array([0.2]))
    assert mid.extra_haircut[0, 0] == pytest.approx(0.12) and not mid.excluded[0, 0]


def test_collateral_issued_by_the_members_group_is_excluded(reference):
    registry = reference.registry.subset(NAMES)
    mask = own_issuer(["JPMorgan Chase", "Other Bank", "Circle"], registry)
    assert mask[0].tolist() == [name == "JPM" for name in NAMES]
    assert not mask[1].any() and mask[2, NAMES.index("USDC")]
    assert not mask[:, NAMES.index("BTC")].any()  # no issuer, no specific wrong-way


def test_valuation_worked_example_and_exact_boundary(small):
    registry, caps = small
    quantity = np.array([[1_000_000.0, 0, 0, 200_000.0, 2.0, 0, 0],
                         [0, 0, 0, 0, 0, 0, 10_000.0]])
    price = np.array([1.0, 1.0, 1.0, 1.0234, 26_000.0, 1_650.0, 145.0])
    haircut = np.array([0.0, 0.035, 0.015, 0.005, 0.14, 0.18, 0.085])
    eligible = np.array([True, True, False, True, True, True, True])
    result = value_collateral(quantity, price=price, fx=np.ones(7), haircut=haircut, eligible=eligible,
                              requirement=np.array([1_200_000.0, 1_000_000.0]), caps=caps)
    tmmf = 200_000 * 1.0234 * 0.995
    btc = 2 * 26_000 * 0.86
    assert result.collateral[0] == pytest.approx(1_000_000 + tmmf + btc)
    assert result.collateral[1] == pytest.approx(200_000)  # equity counts up to 20% of the requirement
    assert result.over_limits[1] == pytest.approx(10_000 * 145 * 0.915 - 200_000)
    collateral, requirement, coverage = result.exact(0)
    assert isinstance(collateral, Decimal) and collateral == Decimal(str(1_000_000 + tmmf + btc)).quantize(
        Decimal("0.01"), rounding="ROUND_FLOOR")
    assert coverage == collateral - Decimal("1200000.00")


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(0, 10**27), price_e8=st.integers(1, 10**14), bps=st.integers(0, 9_999),
       decimals=st.sampled_from([0, 6, 8, 18]))
def test_exact_value_matches_decimal_arithmetic(amount, price_e8, bps, decimals):
    exact = (Decimal(amount) / Decimal(10) ** decimals * Decimal(price_e8) / Decimal(10**8)
             * (1 - Decimal(bps) / 10_000) * 10**6)
    from decimal import ROUND_FLOOR, localcontext

    with localcontext() as context:
        context.prec = 80
        exact = (Decimal(amount) * price_e8 * (10_000 - bps) * 10**6
                 / (Decimal(10) ** decimals * 10**8 * 10_000)).to_integral_value(rounding=ROUND_FLOOR)
    assert post_haircut_micro(amount, price_e8=price_e8, haircut_bps=bps, decimals=decimals) == int(exact)


def test_limits_file_default_group(reference):
    caps = {one.dimension: one for one in resolve_limits([Limit("issuer", "*", 0.3), Limit("issuer", "Circle", 0.6)],
                                                           reference.registry)}
    issuer = caps["issuer"]
    assert issuer.caps[issuer.groups.index("Circle")] == 0.6 and issuer.caps[issuer.groups.index("Tether")] == 0.3
    assert "" not in issuer.groups  # BTC has no issuer: outside the issuer dimension
    assert np.isinf(caps["kind"].caps).all()
    counted = apply_caps(np.array([[5.0] * len(reference.registry)]), np.zeros(1), list(caps.values()))
    assert np.isfinite(counted).all()
