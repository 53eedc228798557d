"""The clearing workflow's pure parts, without a chain or a database: counted collateral, calls, floors,
the inverse of the vault's valuation, the risk state's round trip, the VM batch and the book-vs-chain diff."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenclear.clearing import coverage
from tokenclear.clearing.coverage import Holdings, Limits, RiskState
from tokenclear.clearing.reconciliation import Break, compare
from tokenclear.clearing.vm_batch import paid, token_units, vm_batch
from tokenclear.collateral.limits import GroupCaps

SYMBOLS = ["TUSD", "WETH"]


def holdings(tusd: float, weth: float) -> Holdings:
    # TUSD at 1.00 with a 2% haircut, WETH at 1,500 with 30%
    return Holdings(["A"], SYMBOLS, np.array([[tusd, weth]]), np.array([1.0, 1_500.0]), np.array([0.02, 0.30]),
                    np.array([True, True]))


def test_counted_takes_off_the_stablecoin_cap_and_wrong_way_risk_by_hand():
    vault = [Decimal("98000.00") + Decimal("10500.00")]  # 100,000 TUSD x 0.98 + 10 WETH x 1,500 x 0.70
    cap = GroupCaps("kind", ["stablecoin"], np.array([[1.0], [0.0]]), np.array([0.5]))  # stablecoins <= 50%
    plain = coverage.counted(vault, holdings(100_000, 10), [Decimal("60000.00")], RiskState(), Limits([]))
    assert plain == vault
    capped = coverage.counted(vault, holdings(100_000, 10), [Decimal("60000.00")], RiskState(), Limits([cap]))
    assert capped == [Decimal("30000.00") + Decimal("10500.00")]  # 98,000 of TUSD counts up to 30,000
    # WETH correlated 0.6 with the account's P&L: its haircut grows by 0.6 x the 25% market haircut
    risk = RiskState(tuple(SYMBOLS), (0.01, 0.25), {"A": (0.0, 0.6)})
    wrong = coverage.counted(vault, holdings(100_000, 10), [Decimal("60000.00")], risk, Limits([]))
    assert wrong == [vault[0] - Decimal("2250.00")]  # 10 x 1,500 x 0.6 x 0.25
    excluded = RiskState(tuple(SYMBOLS), (0.01, 0.25), {"A": (0.0, 0.85)})  # 0.8 or more: WETH counts nothing
    assert coverage.counted(vault, holdings(100_000, 10), [Decimal("60000.00")], excluded, Limits([])) == \
        [Decimal("98000.00")]


def test_calls_floors_and_money_conversions():
    assert coverage.call_amount(Decimal("-100.00"), Decimal("100.00")) is None  # at the threshold: no call
    assert coverage.call_amount(Decimal("-100.01"), Decimal("100.00")) == Decimal(101)  # up to the whole USD
    assert coverage.floor_micro(Decimal("1234.57")) == 1_234_570_000
    assert coverage.floor_micro(Decimal("1234.57"), Decimal("1000")) == 1_000_000_000  # privacy: rounded down
    assert coverage.usd(1_234_567_891) == Decimal("1234.56")  # down to the cent
    with pytest.raises(ValueError, match="micro-USD"):
        coverage.micro(Decimal("0.0000001"))


@given(value=st.integers(1, 10**15), price=st.integers(1, 10**14), haircut=st.integers(0, 9_999),
       decimals=st.sampled_from([6, 8, 18]))
def test_units_for_is_the_least_that_covers_a_value(value, price, haircut, decimals):
    def vault_value(units: int) -> int:  # vault._value, written again
        return units * price * (10_000 - haircut) // (10 ** (decimals + 2) * 10_000)

    units = coverage.units_for(value, price_e8=price, haircut_bps=haircut, decimals=decimals)
    assert vault_value(units) >= value and (units == 0 or vault_value(units - 1) < value)


def test_risk_state_round_trips_exactly_through_json():
    state = RiskState(("TUSD", "WETH"), (0.1 + 0.2, 1 / 3), {"A": (0.7071067811865476, -1e-17)})
    back = RiskState.from_json(json.loads(json.dumps(state.to_json())))
    assert back == state
    assert back.correlations(["A", "B"], ["WETH", "WBTC"]).tolist() == [[-1e-17, 0.0], [0.0, 0.0]]


@dataclass
class Row:
    account: str
    vm: Decimal


def test_vm_batch_leaves_refused_legs_out_and_says_why():
    rows = [Row("A", Decimal("12.34")), Row("B", Decimal("-5.00")), Row("C", Decimal("7.00")), Row("D", Decimal(0))]
    wallets = {"A": "0xa", "B": "0xb", "C": "0xc", "D": "0xd"}
    def restrictions(transfers: list[tuple[str, str, int]]) -> list[str | None]:
        return ["sender wallet is frozen" if payer == "0xc" else None for payer, _, _ in transfers]

    params = vm_batch(rows, wallets, "0xccp", restrictions)
    assert params["legs"] == [["0xa", "0xccp", 12_340_000], ["0xccp", "0xb", 5_000_000]]
    assert params["blocked"] == [
        {"account": "C", "units": 7_000_000, "usd": "7.00", "reason": "sender wallet is frozen"}]
    assert paid(params) == (Decimal("12.34"), Decimal("5"))


def test_vm_is_paid_in_the_stablecoin_at_its_market_price():
    """USDC at 0.9715 (the close of 2023-03-11): a member owed 1,000 USD receives 1,000 / 0.9715 tokens, and one
    that owes 1,000 USD pays as many; the USD figures stay the VM."""
    rows = [Row("A", Decimal("1000.00")), Row("B", Decimal("-1000.00"))]
    params = vm_batch(rows, {"A": "0xa", "B": "0xb"}, "0xccp", lambda transfers: [None] * len(transfers),
                      price_e8=97_150_000)
    tokens = (Decimal("1000") / Decimal("0.9715") * 10**6).quantize(Decimal(1))  # 1,029,336,078 units
    assert params["legs"] == [["0xa", "0xccp", int(tokens)], ["0xccp", "0xb", int(tokens)]]
    assert token_units(Decimal("1000.00"), 97_150_000) == 1_029_336_078
    assert paid(params) == (Decimal("1000.00"), Decimal("1000.00"))
    old = {"accounts": [["A", 12_340_000], ["B", -5_000_000]]}  # a batch stored before the USD was kept
    assert paid(old) == (Decimal("12.34"), Decimal("5"))


def test_reconciliation_names_every_difference():
    book = {("A", "TUSD"): 10, ("B", "TUSD"): 5}
    chain = {("A", "TUSD"): 10, ("B", "TUSD"): 4, ("A", "WETH"): 0, ("B", "WETH"): 1}
    breaks = compare(book, chain, {"TUSD": 20, "WETH": 1}, ["A", "B"], ["TUSD", "WETH"])
    assert breaks == [
        Break("B", "TUSD", 5, 4, "book holds units the vault does not"),
        Break("B", "WETH", 0, 1, "vault holds units the book has not recorded"),
        Break("*", "TUSD", 15, 20, "vault total differs from the book's (an account the book does not know)"),
        Break("*", "WETH", 0, 1, "vault total differs from the book's (an account the book does not know)")]
