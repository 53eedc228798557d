"""The depeg spiral (tokenclear.default.spiral): one round worked by hand, the forced sales never rise when the
haircut policy is less procyclical (property), the diversification limit caps what is sold, and the command
compares the three policies on the shipped SVB data."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.test_cli import tokenclear
from tokenclear.default.spiral import Policy, SpiralBook, SpiralMarket, simulate


def test_one_round_worked_by_hand():
    # one account: requirement 1,000; 520 counted in bills; 500 / 0.98 coins at 1.00 (haircut 2%); 5 USD of bills
    # and 100 coins outside the CCP
    book = SpiralBook(np.array([1000.0]), np.array([520.0]), np.array([500 / 0.98]), np.array([5.0]),
                      np.array([100.0]))
    market = SpiralMarket(1.0, np.array([0.97, 0.97]), np.array([1e6, 1e6]), 0.02, 0.02, bill_haircut=0.005)
    out = simulate(book, market, Policy("spot"), threshold=0.0)
    haircut = 0.02 + (1 - 0.97)  # the fresh discount weighs fully
    counted = 500 / 0.98 * 0.97 * (1 - haircut)
    gap = 1000 - 520 - counted
    sold_units = (gap - 5 * 0.995) / (0.97 * 0.995)  # bills first, then coins sold for cash posted as bills
    assert out.haircut[0] == pytest.approx(haircut)
    assert out.called[0] == pytest.approx(gap)
    assert out.sold[0] == pytest.approx(sold_units * 0.97)
    assert 0 < sold_units < 100 and out.defaults[0] == 0
    impact = 0.02 * math.sqrt(sold_units / 1e6)  # the volume in coins at the calm price 1.00
    assert out.price[1] == pytest.approx(0.97 * (1 - impact))  # the sale moves the next round's price


def test_a_member_that_cannot_cover_is_defaulted_and_its_coins_sold():
    book = SpiralBook(np.array([1000.0]), np.array([0.0]), np.array([1000 / 0.98]), np.array([0.0]),
                      np.array([50.0]))
    market = SpiralMarket(1.0, np.array([0.5]), np.array([1e9]), 0.02, 0.02)
    out = simulate(book, market, Policy("spot"), threshold=0.0)
    # at 0.50 with a 52% haircut the account is short 1,000 - 1020.4 x 0.5 x 0.48 = 755; its 50 coins bring 24.9
    assert out.defaults[0] == 1
    assert out.sold_units[0] == pytest.approx(50 + 1000 / 0.98)  # its own sale, then the CCP's of its pledge
    posted = 50 * 0.5 * 0.995
    assert out.fund[0] == pytest.approx(1000 - posted - 1000 / 0.98 * 0.5 * 0.995)


books = st.integers(min_value=1, max_value=40).flatmap(lambda n: st.tuples(
    st.lists(st.floats(1e3, 1e7), min_size=n, max_size=n), st.lists(st.floats(0, 1), min_size=n, max_size=n),
    st.lists(st.floats(0, 0.2), min_size=n, max_size=n), st.lists(st.floats(0, 2), min_size=n, max_size=n)))


#: hypothesis found it (fresh-clone run, 2026-12-03): one large account, a price moved 0.2% by the sales, and the
#: smoothed policy sells 0.003% more coins, called over 11 rounds instead of 3 at the lower price earlier sales left
_LATER_AT_A_LOWER_PRICE = ([1000.0] * 6 + [380035.0] + [1000.0] * 15, [0.0] * 6 + [1.0] + [0.0] * 15, [0.0] * 22,
                           [0.0] * 6 + [2.0] + [0.0] * 15)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None)
@given(books, st.floats(0.5, 0.999), st.floats(1e8, 1e11), st.floats(0, 1), st.floats(0, 1), st.floats(0.1, 1),
       st.floats(0.1, 1))
@example(_LATER_AT_A_LOWER_PRICE, 0.5, 1e8, 0.0, 0.5, 1.0, 1.0)
def test_forced_sales_never_rise_when_the_policy_is_less_procyclical(book, low, volume, s1, s2, k1, k2):
    """A haircut lower at every round (more smoothing, less of the discount) after a shock that lands at once: no
    more defaults, and no more coins sold but for up to 0.1% (so a price lower by under 0.01%): a member called
    later sells at the lower price earlier sales left (a day's volume of at least 1e8 coins against at most 4e8
    USD of requirements). Hypothesis found books with the price down over 90% and, with a price moved only 0.2%, one
    that sells 0.003% more: docs/default.md."""
    requirement, share, buffer, treasury = (np.array(x) for x in book)
    base = 0.02
    units = requirement * 1.05 * share / (1 - base)
    spiral = SpiralBook(requirement, requirement * 1.05 * (1 - share), units, requirement * buffer, units * treasury)
    path = np.full(12, low)  # the shock lands at once: what follows is the spiral's own feedback
    market = SpiralMarket(1.0, path, np.full(path.size, volume), 0.03, base)
    calm, stormy = (max(s1, s2), min(s1, s2)), (min(k1, k2), max(k1, k2))  # more smoothing, less of the spot
    less = simulate(spiral, market, Policy("less", smoothing=calm[0], procyclicality=stormy[0]))
    more = simulate(spiral, market, Policy("more", smoothing=calm[1], procyclicality=stormy[1]))
    assert less.forced_units <= more.forced_units * (1 + 1e-3) + 1e-6
    assert less.defaults.sum() <= more.defaults.sum()
    assert less.price.min() >= more.price.min() * (1 - 1e-4)  # 0.1% more coins move the price 0.05% more


def test_the_command_compares_the_three_policies_on_the_svb_weekend():
    done = tokenclear("spiral", "--scenario", "usdc_low", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    a, b, c = out["policies"]
    assert [a["policy"][0], b["policy"][0], c["policy"][0]] == ["a", "b", "c"]
    assert c["forced_sales"] <= b["forced_sales"] and c["defaults"] <= b["defaults"]
    assert out["metadata"]["window"] == "2023-03-10..2023-03-13"
    low = min(row["price"] for row in out["rows"] if row["policy"] == a["policy"])
    assert low == pytest.approx(0.87, abs=0.002)  # the intraday low the scenario sets, moved a little by sales
    assert any("assumption" in w for w in out["warnings"])
    for fmt in ("table", "csv"):
        shown = tokenclear("spiral", "--scenario", "usdc_low", "--format", fmt)
        assert shown.returncode == 0 and "assumption" in shown.stdout + shown.stderr
