"""Yield accrual: both fund models and the bill raise the collateral value by the yield."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenclear.collateral.accrual import accrued_nav, bill_price, rebased_units
from tokenclear.collateral.valuation import value_collateral

YIELD = Decimal("0.04")


def test_accruing_nav_compounds_daily():
    assert accrued_nav(Decimal("1"), YIELD, 0) == Decimal("1.00000000")
    assert accrued_nav(Decimal("1"), YIELD, 1) == Decimal("1.00010958")  # 1 + 0.04 / 365, rounded down
    year = accrued_nav(Decimal("1"), YIELD, 365)
    assert Decimal("1.04080") < year < Decimal("1.04081")  # (1 + 0.04/365)**365 = 1.040808...


@settings(max_examples=100, deadline=None)
@given(units=st.integers(10**6, 10**15), days=st.integers(0, 400))
def test_accruing_and_rebasing_shares_are_worth_the_same(units, days):
    """Price-accruing: balance fixed, NAV up. Rebasing: NAV 1.00, balance up. Same value to a unit."""
    nav = accrued_nav(Decimal("1"), YIELD, days)
    accruing_value = units * nav
    rebasing_value = Decimal(rebased_units(units, YIELD, days))
    assert abs(accruing_value - rebasing_value) <= 1 + units * Decimal("1e-8")
    assert rebased_units(units, YIELD, days) >= units


def test_bill_accretes_linearly_to_par():
    prices = [bill_price(Decimal(100), Decimal("0.042"), days) for days in (91, 60, 30, 0)]
    assert prices[-1] == Decimal("100.00000000")
    assert prices[0] == Decimal("98.93833333")  # 100 x (1 - 0.042 x 91 / 360), rounded down
    steps = [b - a for a, b in zip(prices, prices[1:], strict=False)]
    assert abs(steps[1] - steps[2]) <= Decimal("1e-8")  # 30 days each: the same accretion
    with pytest.raises(ValueError):
        bill_price(Decimal(100), Decimal("0.042"), -1)


def test_collateral_value_rises_with_the_accrual_without_any_instruction():
    units = 1_000_000.0  # whole shares; the token has 6 decimals
    day_0 = value_collateral(np.array([[units, units]]), price=np.array([1.0, 1.0]), fx=np.ones(2),
                             haircut=np.array([0.005, 0.005]), eligible=np.ones(2, bool), requirement=np.zeros(1))
    nav_30 = float(accrued_nav(Decimal(1), YIELD, 30))
    rebased_30 = rebased_units(int(units * 10**6), YIELD, 30) / 10**6
    day_30 = value_collateral(np.array([[units, rebased_30]]), price=np.array([nav_30, 1.0]), fx=np.ones(2),
                              haircut=np.array([0.005, 0.005]), eligible=np.ones(2, bool), requirement=np.zeros(1))
    gain = day_30.post_haircut[0] - day_0.post_haircut[0]
    assert gain == pytest.approx([units * 0.995 * (nav_30 - 1)] * 2, rel=1e-6)
    assert gain[0] == pytest.approx(1_000_000 * 0.995 * 0.04 * 30 / 365, rel=0.01)
