"""Reentrancy through a malicious token, stale artefacts, and conservation of tokens and of the
vault's books across random instruction sequences (hypothesis, embedded chain)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ledger.conftest import START, USD, make_world
from tokenclear.errors import TransactionReverted
from tokenclear.ledger import build
from tokenclear.ledger.chain import EmbeddedChain
from tokenclear.ledger.contract import deploy
from tokenclear.ledger.ledger import HOUSE, Payment
from tokenclear.ledger.privacy import account_id

EVIL = Path(__file__).parent / "contracts" / "reentrant_token.vy"


def test_reentrancy_through_a_malicious_token_is_blocked(world):
    ledger = world.ledger
    evil = deploy(world.chain, "reentrant_token", sender=ledger.operator, built=build.compile_file(EVIL))
    ledger.vault.send("set_asset", evil.address, True, 0, 10**8, False, sender=ledger.operator)
    account = account_id(b"x" * 32, "EVIL", "HOUSE")
    ledger.open_account(account, evil.address, HOUSE)
    evil.send("arm", ledger.vault.address, account, sender=ledger.operator)
    with pytest.raises(TransactionReverted):
        evil.send("attack", 10**18, sender=ledger.operator)
    assert ledger.vault.call("held", account, evil.address) == 0
    assert evil.call("armed")  # the whole attack was rolled back


def test_artifacts_are_built_from_the_current_sources():
    assert build.stale_sources() == [], "contracts changed without a rebuild: run `make contracts`"


def test_artifacts_are_reproducible_from_source():
    shipped = build.load_artifacts()
    for name in ("settlement", "vault"):
        assert build.compile_file(build.CONTRACTS_DIR / f"{name}.vy")["bytecode"] == \
            shipped["contracts"][name]["bytecode"], name


OPS = st.lists(st.tuples(st.sampled_from(["pledge", "release", "dvp", "substitute", "seize", "vm", "replay",
                                          "freeze", "reprice", "ineligible", "default"]),
                         st.integers(0, 2), st.sampled_from(["TUSD", "WETH", "TBILL"]),
                         st.integers(1, 3_000)), min_size=4, max_size=18)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_supply_and_vault_books_are_conserved(ops):
    """Random instructions with state changes between them (freezes, repricing, ineligibility, defaults):
    supply and the vault's books are conserved, and replaying any instruction that went through is a
    no-op that neither reverts nor moves a unit, whatever happened since."""
    w = make_world(EmbeddedChain(start_time=START))
    ledger = w.ledger
    accounts = [(w.m1_house, w.m1), (w.m1_customer, w.m1), (w.m2_house, w.m2)]
    holders = [w.m1, w.m2, ledger.operator, ledger.vault.address, ledger.settlement.address]
    supply = {s: ledger.token(s).call("totalSupply") for s in ledger.tokens}
    done: list = []  # instructions that went through: each may be replayed later
    for n, (op, who, symbol, size) in enumerate(ops):
        account, member = accounts[who]
        units = size * 10 ** ledger.specs[symbol].decimals // 100
        args = (ledger, w, f"k{n}", account, member, symbol, units)
        before = snapshot(ledger, accounts, holders)
        try:
            if op in SENDS:
                SENDS[op](*args)
                done.append((op, args))
            elif op == "replay":
                if done:
                    first, first_args = done[size % len(done)]
                    SENDS[first](*first_args)  # must not revert
                    assert snapshot(ledger, accounts, holders) == before
            elif op == "freeze":
                ledger.token("TUSD").send("freeze", member, size % 2 == 0, b"test".ljust(32, b"\0"),
                                          sender=ledger.operator)
            elif op == "reprice" and symbol != "TBILL":
                ledger.set_prices({symbol: size * 10**8})
            elif op == "ineligible":
                ledger.set_asset(symbol, haircut_bps=100, price_e8=size * 10**8, eligible=size % 2 == 1)
            elif op == "default":
                ledger.declare_default(account)
        except TransactionReverted:
            assert op != "replay", "a replay reverted"
            assert snapshot(ledger, accounts, holders) == before  # a refused instruction leaves no trace
        for s, token in ledger.tokens.items():
            assert token.call("totalSupply") == supply[s]
            assert sum(token.call("balanceOf", h) for h in holders) == supply[s]
            in_vault = token.call("balanceOf", ledger.vault.address)
            assert ledger.total_held(s) == in_vault == sum(ledger.held(a, s) for a, _ in accounts)


SENDS = {
    "pledge": lambda ledger, w, key, account, member, symbol, units: ledger.pledge(key, account, symbol, units, member),
    "release": lambda ledger, w, key, account, member, symbol, units: ledger.release(key, account, symbol, units),
    "dvp": lambda ledger, w, key, account, member, symbol, units: ledger.dvp(key, symbol, w.m1, units, "TUSD", w.m2,
                                                                            units // 2 + 1),
    "substitute": lambda ledger, w, key, account, member, symbol, units: ledger.substitute(
        key, account, symbol, units, "TUSD", units, member),
    "seize": lambda ledger, w, key, account, member, symbol, units: ledger.seize(key, account, symbol, units,
                                                                                ledger.operator),
    "vm": lambda ledger, w, key, account, member, symbol, units: ledger.settle_payments(
        key, [Payment(w.m1, w.m2, units), Payment(w.m2, ledger.operator, 1)], symbol),
}


def snapshot(ledger, accounts, holders) -> dict:
    return {(s, h): ledger.token(s).call("balanceOf", h) for s in ledger.tokens for h in holders} | \
        {(s, a): ledger.held(a, s) for s in ledger.tokens for a, _ in accounts}


@pytest.mark.anvil
def test_embedded_gas_matches_the_node_exactly(anvil_node):
    """Each embedded call is metered as its own transaction (cold access, original storage, refunds), so
    execution gas is equal on both chains; without that a gap is 2,800 per dirty SSTORE. (Totals also
    differ by the calldata bytes of the two chains' different random addresses, 12 gas a zero byte.)"""
    from bench.bench_ledger import gas_receipts
    from tokenclear.ledger.chain import RpcChain

    embedded = gas_receipts(EmbeddedChain(start_time=START))
    node = gas_receipts(RpcChain(anvil_node.url, anvil_node.funder_key))
    assert {op: r.execution_gas for op, r in embedded.items()} == {op: r.execution_gas for op, r in node.items()}


@pytest.mark.parametrize("holder", ["vault", "settlement", "htlc", "bid_bond"])
def test_no_agent_can_freeze_or_force_a_transfer_out_of_a_protocol_contract(world, holder):
    """A token agent used to forced_transfer the vault's tokens away (the vault's books still held them, so
    another member's release reverted) or freeze the vault or an escrow. Their balances are held for others
    and booked by the contract: a freeze, a partial freeze, a forced transfer and a wallet recovery against
    them are refused; against a member's wallet they still work."""
    ledger = world.ledger
    usd, target = ledger.token("TUSD"), getattr(ledger, holder).address
    reason = b"court-order".ljust(32, b"\0")
    ledger.pledge("p", world.m1_house, "TUSD", 1_000 * USD, world.m1)
    for fn, args in (("freeze", (target, True, reason)), ("freeze_partial", (target, 1, reason)),
                     ("forced_transfer", (target, world.m2, 1, reason)), ("recover", (target, world.m2, reason))):
        with pytest.raises(TransactionReverted, match="protocol contract"):
            usd.send(fn, *args, sender=ledger.operator)
    usd.send("freeze", target, False, reason, sender=ledger.operator)  # lifting a freeze is always allowed
    usd.send("forced_transfer", world.m1, world.m2, USD, reason, sender=ledger.operator)
    ledger.release("r", world.m1_house, "TUSD", 1_000 * USD)
    assert ledger.held(world.m1_house, "TUSD") == 0
