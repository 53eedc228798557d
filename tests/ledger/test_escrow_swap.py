"""Bid-bond escrow and the cross-chain HTLC swap (two embedded EVMs, and two anvil nodes)."""

from __future__ import annotations

import hashlib

import pytest

from tests.ledger.conftest import START, USD, make_world
from tokenclear.errors import LedgerError, TransactionReverted
from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import EmbeddedChain, RpcChain
from tokenclear.ledger.ledger import MAX_UINT
from tokenclear.ledger.swap import initiator_lock, new_secret, plan_swap, responder_lock, revealed_secret

TENDER = b"bridge-tender-2026-01".ljust(32, b"\0")


def open_tender(world, close_in: int = 3_600):
    ledger, chain = world.ledger, world.chain
    escrow, usd = ledger.bid_bond, ledger.token("TUSD")
    third = chain.new_account()
    ledger.onboard([third])
    ledger.issue("TUSD", third, 50_000 * USD)
    beneficiary = chain.new_account()
    ledger.onboard([beneficiary])
    escrow.send("open_tender", TENDER, usd.address, 10_000 * USD, chain.timestamp() + close_in, beneficiary,
                sender=ledger.operator)
    for bidder in (world.m1, world.m2, third):
        usd.send("approve", escrow.address, MAX_UINT, sender=bidder)
        escrow.send("bid", TENDER, sender=bidder)
    return escrow, usd, third, beneficiary


def test_bid_bond_holds_the_winners_bond_and_lets_each_loser_take_its_deposit(world):
    ledger, chain = world.ledger, world.chain
    escrow, usd, third, beneficiary = open_tender(world)
    assert usd.call("balanceOf", escrow.address) == 30_000 * USD
    with pytest.raises(TransactionReverted, match="still open"):
        escrow.send("award", TENDER, world.m2, sender=ledger.operator)
    chain.advance_time(3_601)
    with pytest.raises(TransactionReverted, match="closed"):
        escrow.send("bid", TENDER, sender=world.m1)
    with pytest.raises(TransactionReverted, match="missing role"):
        escrow.send("award", TENDER, world.m2, sender=world.m2)
    escrow.send("award", TENDER, world.m2, sender=ledger.operator)
    assert escrow.call("refundable", TENDER, world.m1) and not escrow.call("refundable", TENDER, world.m2)
    with pytest.raises(TransactionReverted, match="nothing to refund"):
        escrow.send("refund", TENDER, world.m2, sender=world.m2)  # the winner's deposit is the bond
    refunds = [escrow.send("refund", TENDER, bidder, sender=bidder) for bidder in (world.m1, third)]
    assert [e.args["bidder"] for r in refunds for e in escrow.events(r, "BidRefunded")] == [world.m1, third]
    with pytest.raises(TransactionReverted, match="nothing to refund"):
        escrow.send("refund", TENDER, world.m1, sender=world.m1)  # once
    assert usd.call("balanceOf", world.m1) == 1_000_000 * USD and usd.call("balanceOf", third) == 50_000 * USD
    assert usd.call("balanceOf", escrow.address) == 10_000 * USD  # the performance bond
    escrow.send("forfeit", TENDER, sender=ledger.operator)
    assert usd.call("balanceOf", beneficiary) == 10_000 * USD
    with pytest.raises(TransactionReverted, match="no bond"):
        escrow.send("complete", TENDER, sender=ledger.operator)


def test_a_frozen_losing_bidder_blocks_neither_the_award_nor_the_other_refunds(world):
    ledger, chain = world.ledger, world.chain
    escrow, usd, third, _ = open_tender(world)
    usd.send("freeze", world.m1, True, b"sanctions-screening".ljust(32, b"\0"), sender=world.agent)
    chain.advance_time(3_601)
    escrow.send("award", TENDER, world.m2, sender=ledger.operator)  # used to revert on the frozen refund
    escrow.send("refund", TENDER, third, sender=ledger.operator)  # anyone may send it; the bidder is paid
    assert usd.call("balanceOf", third) == 50_000 * USD
    with pytest.raises(TransactionReverted):
        escrow.send("refund", TENDER, world.m1, sender=world.m1)  # frozen: its own refund waits, no one else's
    usd.send("freeze", world.m1, False, b"sanctions-screening".ljust(32, b"\0"), sender=world.agent)
    escrow.send("refund", TENDER, world.m1, sender=world.m1)
    assert usd.call("balanceOf", world.m1) == 1_000_000 * USD


def test_a_cancelled_or_never_awarded_tender_refunds_every_bidder(world):
    ledger, chain = world.ledger, world.chain
    escrow, usd, third, _ = open_tender(world)
    with pytest.raises(TransactionReverted, match="nothing to refund"):
        escrow.send("refund", TENDER, world.m1, sender=world.m1)  # open: deposits stay locked
    chain.advance_time(3_601 + escrow.call("AWARD_WINDOW"))
    with pytest.raises(TransactionReverted, match="award window over"):
        escrow.send("award", TENDER, world.m2, sender=ledger.operator)
    for bidder in (world.m1, world.m2, third):
        escrow.send("refund", TENDER, bidder, sender=bidder)
    assert usd.call("balanceOf", escrow.address) == 0
    other = b"tender-cancelled".ljust(32, b"\0")
    escrow.send("open_tender", other, usd.address, 5 * USD, chain.timestamp() + 60, world.m2, sender=ledger.operator)
    escrow.send("bid", other, sender=world.m1)
    with pytest.raises(TransactionReverted, match="missing role"):
        escrow.send("cancel", other, sender=world.m1)
    escrow.send("cancel", other, sender=ledger.operator)
    escrow.send("refund", other, world.m1, sender=world.m1)
    assert usd.call("balanceOf", world.m1) == 1_000_000 * USD


def test_plan_refuses_a_responder_window_that_outlives_the_initiators():
    _, hashlock = new_secret()
    plan = plan_swap(hashlock)
    assert plan.responder_window_s + plan.safety_s <= plan.initiator_window_s
    with pytest.raises(LedgerError, match="unsafe swap"):
        plan_swap(hashlock, initiator_window_s=24 * 3600, responder_window_s=24 * 3600)


def test_the_responder_checks_the_initiators_lock_on_its_own_chain_clock():
    """Chain B's clock runs 20 hours behind A's: comparing the two chains' timestamps used to accept a plan in
    which the responder's lock outlived the initiator's. Each lock is now a duration on its own clock, and the
    responder refuses to lock when A's lock has too little time left, or is not the agreed one."""
    a = make_world(EmbeddedChain(chain_id=1001, start_time=START))
    b = make_world(EmbeddedChain(chain_id=1002, start_time=START - 20 * 3600))
    _, hashlock = new_secret()
    plan = plan_swap(hashlock)
    terms = {"ledger_a": a.ledger, "expect_symbol": "TBILL", "expect_receiver": a.m2, "expect_units": 1_000 * USD}
    lock_a = initiator_lock(a.ledger, plan, "TBILL", a.m1, a.m2, 1_000 * USD)
    a.chain.advance_time(20 * 3600)  # the responder waited: 28 h left on A, fewer than 24 h + 6 h
    with pytest.raises(LedgerError, match="100800 s left"):
        responder_lock(b.ledger, plan, "TUSD", b.m2, b.m1, 990 * USD, lock_a=lock_a, **terms)
    fresh = initiator_lock(a.ledger, plan, "TBILL", a.m1, a.m2, 1_000 * USD)
    with pytest.raises(LedgerError, match="amount"):
        responder_lock(b.ledger, plan, "TUSD", b.m2, b.m1, 990 * USD, lock_a=fresh,
                       **{**terms, "expect_units": 2_000 * USD})
    lock_b = responder_lock(b.ledger, plan, "TUSD", b.m2, b.m1, 990 * USD, lock_a=fresh, **terms)
    timelock_b = b.ledger.htlc.call("locks", lock_b)[5]
    assert timelock_b - b.chain.timestamp() == plan.responder_window_s  # on B's own clock


def swap_across(chain_a, chain_b) -> None:
    """Alice sells 1,000 USD face of T-bill tokens on chain A to Bob for 990 stablecoins on chain B."""
    a, b = make_world(chain_a), make_world(chain_b)
    alice_a, bob_a = a.m1, a.m2  # each party holds a wallet on each chain
    alice_b, bob_b = b.m1, b.m2
    secret, hashlock = new_secret()
    assert hashlib.sha256(secret).digest() == hashlock
    plan = plan_swap(hashlock)
    bill_before = a.ledger.balance("TBILL", bob_a)
    lock_a = initiator_lock(a.ledger, plan, "TBILL", alice_a, bob_a, 1_000 * USD)
    lock_b = responder_lock(b.ledger, plan, "TUSD", bob_b, alice_b, 990 * USD, ledger_a=a.ledger, lock_a=lock_a,
                            expect_symbol="TBILL", expect_receiver=bob_a, expect_units=1_000 * USD)
    with pytest.raises(TransactionReverted, match="wrong secret"):
        b.ledger.htlc.send("claim", lock_b, b"\x01" * 32, sender=alice_b)
    b.ledger.htlc.send("claim", lock_b, secret, sender=alice_b)  # Alice takes the cash, revealing the secret
    learned = revealed_secret(b.ledger.htlc, lock_b)
    assert learned == secret
    a.ledger.htlc.send("claim", lock_a, learned, sender=bob_a)  # Bob uses it on chain A
    assert a.ledger.balance("TBILL", bob_a) == bill_before + 1_000 * USD
    assert b.ledger.balance("TUSD", alice_b) == 1_000_990 * USD
    # refund path: a second swap that Alice abandons; after expiry both sides take their tokens back
    _, hashlock2 = new_secret()
    plan2 = plan_swap(hashlock2)
    lock_a2 = initiator_lock(a.ledger, plan2, "TBILL", alice_a, bob_a, 5 * USD)
    lock_b2 = responder_lock(b.ledger, plan2, "TUSD", bob_b, alice_b, 5 * USD, ledger_a=a.ledger, lock_a=lock_a2,
                             expect_symbol="TBILL", expect_receiver=bob_a, expect_units=5 * USD)
    with pytest.raises(TransactionReverted, match="not expired"):
        a.ledger.htlc.send("refund", lock_a2, sender=alice_a)
    chain_b.advance_time(plan2.responder_window_s)
    with pytest.raises(TransactionReverted, match="expired"):
        b.ledger.htlc.send("claim", lock_b2, b"\x00" * 32, sender=alice_b)
    bob_cash = b.ledger.balance("TUSD", bob_b)
    b.ledger.htlc.send("refund", lock_b2, sender=bob_b)
    assert b.ledger.balance("TUSD", bob_b) == bob_cash + 5 * USD
    chain_a.advance_time(plan2.initiator_window_s)
    a.ledger.htlc.send("refund", lock_a2, sender=alice_a)
    with pytest.raises(TransactionReverted, match="not locked"):
        a.ledger.htlc.send("refund", lock_a2, sender=alice_a)


def test_swap_across_two_embedded_chains():
    swap_across(EmbeddedChain(chain_id=1001, start_time=START), EmbeddedChain(chain_id=1002, start_time=START))


@pytest.mark.anvil
def test_swap_across_two_anvil_nodes():
    with anvil(chain_id=2001, start_time=START) as node_a, anvil(chain_id=2002, start_time=START) as node_b:
        chain_a, chain_b = RpcChain(node_a.url, node_a.funder_key), RpcChain(node_b.url, node_b.funder_key)
        assert (chain_a.chain_id, chain_b.chain_id) == (2001, 2002)
        swap_across(chain_a, chain_b)
