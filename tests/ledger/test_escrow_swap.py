"""Bid-bond escrow and the cross-chain HTLC swap (two embedded EVMs, and two anvil nodes)."""

from __future__ import annotations

import hashlib

import pytest

from tests.ledger.conftest import START, USD, make_world
from tokenclear.errors import LedgerError, TransactionReverted
from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import EmbeddedChain, RpcChain
from tokenclear.ledger.ledger import MAX_UINT
from tokenclear.ledger.swap import lock, new_secret, plan_swap, revealed_secret

TENDER = b"bridge-tender-2026-01".ljust(32, b"\0")


def test_bid_bond_refunds_losers_at_award_and_holds_the_winners_bond(world):
    ledger, chain = world.ledger, world.chain
    escrow, usd = ledger.bid_bond, ledger.token("TUSD")
    third = chain.new_account()
    ledger.onboard([third])
    ledger.issue("TUSD", third, 50_000 * USD)
    beneficiary = chain.new_account()
    ledger.onboard([beneficiary])
    escrow.send("open_tender", TENDER, usd.address, 10_000 * USD, chain.timestamp() + 3_600, beneficiary,
                sender=ledger.operator)
    for bidder in (world.m1, world.m2, third):
        usd.send("approve", escrow.address, MAX_UINT, sender=bidder)
        escrow.send("bid", TENDER, sender=bidder)
    assert usd.call("balanceOf", escrow.address) == 30_000 * USD
    with pytest.raises(TransactionReverted, match="still open"):
        escrow.send("award", TENDER, world.m2, sender=ledger.operator)
    chain.advance_time(3_601)
    with pytest.raises(TransactionReverted, match="closed"):
        escrow.send("bid", TENDER, sender=world.m1)
    with pytest.raises(TransactionReverted, match="missing role"):
        escrow.send("award", TENDER, world.m2, sender=world.m2)
    receipt = escrow.send("award", TENDER, world.m2, sender=ledger.operator)
    assert sorted(e.args["bidder"] for e in escrow.events(receipt, "BidRefunded")) == sorted([world.m1, third])
    assert usd.call("balanceOf", world.m1) == 1_000_000 * USD and usd.call("balanceOf", third) == 50_000 * USD
    assert usd.call("balanceOf", escrow.address) == 10_000 * USD  # the performance bond
    escrow.send("forfeit", TENDER, sender=ledger.operator)
    assert usd.call("balanceOf", beneficiary) == 10_000 * USD
    with pytest.raises(TransactionReverted, match="no bond"):
        escrow.send("complete", TENDER, sender=ledger.operator)


def test_plan_refuses_a_responder_lock_that_outlives_the_initiators():
    _, hashlock = new_secret()
    plan = plan_swap(START, START, hashlock)
    assert plan.responder_timelock < plan.initiator_timelock
    with pytest.raises(LedgerError, match="unsafe swap"):
        plan_swap(START, START, hashlock, initiator_window_s=24 * 3600, responder_window_s=24 * 3600)


def swap_across(chain_a, chain_b) -> None:
    """Alice sells 1,000 USD face of T-bill tokens on chain A to Bob for 990 stablecoins on chain B."""
    a, b = make_world(chain_a), make_world(chain_b)
    alice_a, bob_a = a.m1, a.m2  # each party holds a wallet on each chain
    alice_b, bob_b = b.m1, b.m2
    secret, hashlock = new_secret()
    assert hashlib.sha256(secret).digest() == hashlock
    plan = plan_swap(chain_a.timestamp(), chain_b.timestamp(), hashlock)
    bill_before = a.ledger.balance("TBILL", bob_a)
    lock_a = lock(a.ledger, "TBILL", alice_a, bob_a, 1_000 * USD, hashlock, plan.initiator_timelock)
    lock_b = lock(b.ledger, "TUSD", bob_b, alice_b, 990 * USD, hashlock, plan.responder_timelock)
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
    plan2 = plan_swap(chain_a.timestamp(), chain_b.timestamp(), hashlock2)
    lock_a2 = lock(a.ledger, "TBILL", alice_a, bob_a, 5 * USD, hashlock2, plan2.initiator_timelock)
    lock_b2 = lock(b.ledger, "TUSD", bob_b, alice_b, 5 * USD, hashlock2, plan2.responder_timelock)
    with pytest.raises(TransactionReverted, match="not expired"):
        a.ledger.htlc.send("refund", lock_a2, sender=alice_a)
    chain_b.advance_time(plan2.responder_timelock - chain_b.timestamp())
    with pytest.raises(TransactionReverted, match="expired"):
        b.ledger.htlc.send("claim", lock_b2, b"\x00" * 32, sender=alice_b)
    bob_cash = b.ledger.balance("TUSD", bob_b)
    b.ledger.htlc.send("refund", lock_b2, sender=bob_b)
    assert b.ledger.balance("TUSD", bob_b) == bob_cash + 5 * USD
    chain_a.advance_time(plan2.initiator_timelock - chain_a.timestamp())
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
