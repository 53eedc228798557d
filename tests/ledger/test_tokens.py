"""Permissioned collateral tokens: allow-list, freeze, pause, forced transfer, recovery, fund NAV, bill."""

from __future__ import annotations

import pytest

from tests.ledger.conftest import ETH, USD
from tokenclear.errors import TransactionReverted

REASON = b"court-order-2023-117".ljust(32, b"\0")


def test_transfer_to_address_off_the_allow_list_reverts_with_its_code(world):
    usd = world.ledger.token("TUSD")
    assert usd.call("detectTransferRestriction", world.m1, world.outsider, 5) == 3
    assert usd.call("messageForTransferRestriction", 3) == "receiver is not on the allow-list"
    with pytest.raises(TransactionReverted, match="receiver is not on the allow-list"):
        usd.send("transfer", world.outsider, 5, sender=world.m1)
    assert usd.call("balanceOf", world.outsider) == 0
    assert usd.call("detectTransferRestriction", world.m1, world.m2, 5) == 0
    usd.send("transfer", world.m2, 5, sender=world.m1)
    assert usd.call("balanceOf", world.m2) == 1_000_000 * USD + 5


def test_frozen_wallet_and_frozen_part_cannot_move(world):
    usd, op = world.ledger.token("TUSD"), world.agent
    with pytest.raises(TransactionReverted, match="token: reason code required"):
        usd.send("freeze", world.m1, True, b"\0" * 32, sender=op)
    receipt = usd.send("freeze", world.m1, True, REASON, sender=op)
    assert usd.events(receipt, "Frozen")[0].args["reason"] == REASON
    assert usd.call("detectTransferRestriction", world.m1, world.m2, 1) == 4
    assert usd.call("detectTransferRestriction", world.m2, world.m1, 1) == 5
    with pytest.raises(TransactionReverted, match="sender wallet is frozen"):
        usd.send("transfer", world.m2, 1, sender=world.m1)
    usd.send("freeze", world.m1, False, REASON, sender=op)
    usd.send("freeze_partial", world.m1, 999_000 * USD, REASON, sender=op)
    usd.send("transfer", world.m2, 1_000 * USD, sender=world.m1)  # exactly the free part
    assert usd.call("detectTransferRestriction", world.m1, world.m2, 1) == 6
    with pytest.raises(TransactionReverted, match="unfrozen balance"):
        usd.send("transfer", world.m2, 1, sender=world.m1)
    with pytest.raises(TransactionReverted, match="unfrozen balance"):  # not through the settlement path either
        world.ledger.dvp("d1", "WETH", world.m2, ETH, "TUSD", world.m1, 1)


def test_pause_stops_transfers(world):
    usd = world.ledger.token("TUSD")
    receipt = usd.send("pause", REASON, sender=world.agent)
    (event,) = usd.events(receipt, "PauseChanged")
    assert event.args["paused"] is True and event.args["reason"] == REASON
    assert usd.call("detectTransferRestriction", world.m1, world.m2, 1) == 1
    with pytest.raises(TransactionReverted, match="token: token is paused"):
        usd.send("transfer", world.m2, 1, sender=world.m1)
    usd.send("unpause", REASON, sender=world.agent)
    usd.send("transfer", world.m2, 1, sender=world.m1)


def test_forced_transfer_moves_frozen_units_with_reason_and_only_by_the_agent(world):
    usd, op = world.ledger.token("TUSD"), world.agent
    usd.send("freeze_partial", world.m1, 1_000_000 * USD, REASON, sender=op)
    with pytest.raises(TransactionReverted, match="missing role"):
        usd.send("forced_transfer", world.m1, world.m2, 10 * USD, REASON, sender=world.m2)
    receipt = usd.send("forced_transfer", world.m1, world.m2, 10 * USD, REASON, sender=op)
    (event,) = usd.events(receipt, "ForcedTransfer")
    assert event.args["reason"] == REASON and event.args["amount"] == 10 * USD
    assert usd.call("frozen_amount", world.m1) == 999_990 * USD
    assert usd.call("balanceOf", world.m2) == 1_000_010 * USD
    with pytest.raises(TransactionReverted, match="allow-list"):
        usd.send("forced_transfer", world.m1, world.outsider, 1, REASON, sender=op)


def test_wallet_recovery_moves_balance_and_freeze_state(world):
    usd, op, ledger = world.ledger.token("TUSD"), world.agent, world.ledger
    replacement = world.chain.new_account()
    ledger.onboard([replacement])
    usd.send("freeze_partial", world.m1, 7 * USD, REASON, sender=op)
    with pytest.raises(TransactionReverted, match="missing role"):
        usd.send("recover", world.m1, replacement, REASON, sender=world.m2)
    usd.send("recover", world.m1, replacement, REASON, sender=op)
    assert usd.call("balanceOf", world.m1) == 0
    assert usd.call("balanceOf", replacement) == 1_000_000 * USD
    assert usd.call("frozen_amount", replacement) == 7 * USD


def test_only_the_issuer_mints_and_only_to_allow_listed_holders(world):
    usd = world.ledger.token("TUSD")
    with pytest.raises(TransactionReverted, match="missing role"):
        usd.send("mint", world.m1, 1, sender=world.m1)
    with pytest.raises(TransactionReverted, match="allow-list"):
        usd.send("mint", world.outsider, 1, sender=world.agent)
    supply = usd.call("totalSupply")
    usd.send("redeem", world.m1, 5 * USD, sender=world.agent)
    assert usd.call("totalSupply") == supply - 5 * USD


def test_fund_nav_updates_are_bounded_and_flow_into_collateral_value(world):
    fund, ledger = world.ledger.token("TMMF"), world.ledger
    assert fund.call("max_move_bps") == 50
    ledger.pledge("p", world.m1_house, "TMMF", 1_000 * USD, world.m1)
    before = ledger.collateral_value(world.m1_house)
    assert before == 1_000 * USD * 98 // 100  # NAV 1.00, haircut 2%
    fund.send("set_nav", 100_500_000, sender=world.agent)  # +0.50%: on the bound
    assert ledger.collateral_value(world.m1_house) == 1_005 * USD * 98 // 100
    with pytest.raises(TransactionReverted, match="NAV move exceeds the daily bound"):
        fund.send("set_nav", 101_100_000, sender=world.agent)  # +0.597%
    with pytest.raises(TransactionReverted, match="missing role"):
        fund.send("set_nav", 100_600_000, sender=world.m1)


def test_fund_nav_moves_at_most_its_bound_per_day_however_many_updates(world):
    """40 updates of +0.20% each used to walk the NAV +8.3%; within a UTC day it now stays within 0.50% of the
    day's opening NAV (two steps: +0.40%), and the next day opens a new 0.50%."""
    fund, chain = world.ledger.token("TMMF"), world.chain
    nav, moved = 10**8, 0
    for _ in range(40):
        try:
            fund.send("set_nav", nav * 10_020 // 10_000, sender=world.agent)
        except TransactionReverted as error:
            assert "daily bound" in error.reason
        else:
            nav, moved = nav * 10_020 // 10_000, moved + 1
    assert moved == 2 and fund.call("nav_e8") == 10**8 * 10_020 // 10_000 * 10_020 // 10_000
    chain.advance_time(86_400)
    fund.send("set_nav", nav * 10_050 // 10_000, sender=world.agent)  # a new day: +0.50% from its opening
    with pytest.raises(TransactionReverted, match="daily bound"):
        fund.send("set_nav", nav * 10_051 // 10_000, sender=world.agent)
    fund.send("set_nav", nav * 9_950 // 10_000, sender=world.agent)  # down within the day's band is allowed


def test_dividend_fund_pays_income_in_new_units(world):
    fund = world.ledger.token("TMMFD")
    with pytest.raises(TransactionReverted, match="NAV is fixed"):
        fund.send("set_nav", 100_010_000, sender=world.agent)
    world.ledger.issue("TMMFD", world.m1, 1_000_000 * USD)
    daily = 1_000_000 * USD * 4 // 100 // 365  # 4% a year, one day, in units
    receipt = fund.send("pay_dividend", [world.m1], [daily], 20230310, sender=world.agent)
    assert [e.args["units"] for e in fund.events(receipt, "DividendPaid")] == [daily]
    assert fund.call("balanceOf", world.m1) == 1_000_000 * USD + daily
    assert fund.call("price_e8") == 10**8


def test_bill_accretes_to_par_in_a_straight_line(world):
    bill = world.ledger.token("TBILL")
    issue = bill.call("issue_price_e8")
    maturity, start = bill.call("maturity"), bill.call("issue_time")
    # at issue, or the seconds since (a node's clock runs on while the world is deployed)
    assert bill.call("price_e8") == issue + (10**8 - issue) * (world.chain.timestamp() - start) // (maturity - start)
    half = (maturity - start) // 2
    world.chain.advance_time(half)
    elapsed = world.chain.timestamp() - start
    expected = issue + (10**8 - issue) * elapsed // (maturity - start)
    assert bill.call("price_e8") == expected
    world.chain.advance_time(maturity - start)
    assert bill.call("price_e8") == 10**8


def test_the_bulk_restriction_check_gives_each_transfer_the_single_check(world):
    """transfer_restrictions (a VM batch's pre-check in one call) gives what transfer_restriction gives leg by
    leg: a wallet the registry does not know is refused, with the token's own message."""
    ledger = world.ledger
    stranger = "0x" + "ab" * 20
    transfers = [(world.m1, world.m2, 10), (stranger, world.m2, 10), (world.m1, stranger, 10), (world.m2, world.m1, 0)]
    together = ledger.transfer_restrictions("TUSD", transfers * 200)  # two calls of RESTRICTION_CHUNK
    alone = [ledger.transfer_restriction("TUSD", *one) for one in transfers]
    assert together == alone * 200 and alone[0] is None and alone[1] is not None and alone[2] is not None
