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
from tokenclear.ledger.chain import EmbeddedChain, RevmChain
from tokenclear.ledger.contract import deploy
from tokenclear.ledger.ledger import HOUSE, Ledger, Payment
from tokenclear.ledger.privacy import account_id

EVIL = Path(__file__).parent / "contracts" / "reentrant_token.vy"


def test_reentrancy_through_a_malicious_token_is_blocked(world):
    ledger = world.ledger
    evil = deploy(world.chain, "reentrant_token", sender=ledger.operator, built=build.compile_file(EVIL))
    ledger.vault.send("set_asset", evil.address, True, 0, 10**8, False, sender=ledger.roles.parameter)
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
                                          sender=ledger.roles.token_agent)
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
    """Each py-evm call is metered as its own transaction (cold access, original storage, refunds), so
    execution gas is equal on both chains; without that a gap is 2,800 per dirty SSTORE. (Totals also
    differ by the calldata bytes of the two chains' different random addresses, 12 gas a zero byte.)
    revm in process keeps one journal open (what it touched stays warm), so its gas is at most the node's."""
    from bench.bench_ledger import gas_receipts
    from tokenclear.ledger.chain import RpcChain

    node = {op: r.execution_gas for op, r in gas_receipts(RpcChain(anvil_node.url, anvil_node.funder_key)).items()}
    exact = gas_receipts(EmbeddedChain(start_time=START))
    assert {op: r.execution_gas for op, r in exact.items()} == node
    revm = {op: r.execution_gas for op, r in gas_receipts(RevmChain(start_time=START)).items()}
    assert revm.keys() == node.keys() and all(0 < revm[op] <= node[op] for op in node)
    assert any(revm[op] < node[op] for op in node)  # the open journal is visible: exact gas needs py-evm


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
            usd.send(fn, *args, sender=world.agent)
    usd.send("freeze", target, False, reason, sender=world.agent)  # lifting a freeze is always allowed
    usd.send("forced_transfer", world.m1, world.m2, USD, reason, sender=world.agent)
    ledger.release("r", world.m1_house, "TUSD", 1_000 * USD)
    assert ledger.held(world.m1_house, "TUSD") == 0


def test_each_role_has_its_own_key_and_no_other_power(world):
    """A deployment hands each power to its own key (the admin keeps only the power to grant): the operator
    cannot mint, freeze, set a price or seize; the token agent cannot release; the parameter key cannot move
    collateral; the record carries the roles and a restart attaches with them."""
    ledger, roles = world.ledger, world.ledger.roles
    assert not roles.shared
    usd, reason = ledger.token("TUSD"), b"test".ljust(32, b"\0")
    ledger.pledge("p", world.m1_house, "TUSD", 10 * USD, world.m1)
    refused = [
        (usd, "mint", (world.m1, 1), roles.operator), (usd, "freeze", (world.m1, True, reason), roles.operator),
        (ledger.vault, "set_prices", ([usd.address], [10**8]), roles.operator),
        (ledger.vault, "release", (b"r".ljust(32, b"\0"), world.m1_house, usd.address, 1), roles.token_agent),
        (ledger.vault, "declare_default", (world.m1_house,), roles.parameter),
        (ledger.vault, "set_prices", ([usd.address], [10**8]), roles.admin),
        (usd, "mint", (world.m1, 1), roles.admin),
        (ledger.vault, "open_account", (b"x".ljust(32, b"\0"), world.m1, 1), roles.admin),
    ]
    for contract, fn, args, sender in refused:
        with pytest.raises(TransactionReverted, match="missing role"):
            contract.send(fn, *args, sender=sender)
    ledger.set_prices({"TUSD": 10**8})  # each through its own key
    ledger.issue("TUSD", world.m1, 1)
    ledger.release("r", world.m1_house, "TUSD", USD)
    again = Ledger.attach(world.chain, ledger.record())
    assert again.roles == roles
    again.declare_default(world.m1_house)
    again.seize("z", world.m1_house, "TUSD", USD, again.operator)
    assert again.balance("TUSD", again.operator) == USD


@pytest.mark.anvil
def test_a_json_rpc_deployment_takes_each_role_key_from_the_settings(anvil_node):
    """Over JSON-RPC a key made in the process would be lost on restart, so each role signs with the key the
    settings name; with only TOKENCLEAR_PRIVATE_KEY one key holds every role, and the deployment says so."""
    from tokenclear.ledger.connect import deployment_roles, open_chain
    from tokenclear.settings import Settings

    one = Settings(rpc_url=anvil_node.url, private_key=anvil_node.funder_key)
    roles, warnings = deployment_roles(one, open_chain(one))
    assert roles.shared and "TOKENCLEAR_PARAMETER_KEY" in warnings[0]
    admin, parameter, manager, agent = anvil_node.role_keys
    apart = Settings(rpc_url=anvil_node.url, private_key=anvil_node.funder_key, admin_key=admin,
                     parameter_key=parameter, default_manager_key=manager, token_agent_key=agent)
    chain = open_chain(apart)
    roles, warnings = deployment_roles(apart, chain)
    assert not roles.shared and warnings == []
    ledger = Ledger.deploy(chain, roles=roles)
    restarted = open_chain(apart)  # a new process: the keys come from the settings again
    again = Ledger.attach(restarted, ledger.record())
    again.set_prices({"WETH": 1_600 * 10**8})
    assert again.asset_parameters("WETH").price_e8 == 1_600 * 10**8


@pytest.mark.anvil
def test_a_node_killed_mid_run_is_a_chain_unavailable_error_not_a_connection_traceback():
    from tokenclear.errors import ChainUnavailable
    from tokenclear.ledger.anvil import anvil
    from tokenclear.ledger.chain import RpcChain

    with anvil(start_time=START) as node:
        chain = RpcChain(node.url, node.funder_key, timeout_s=5)
        ledger = Ledger.deploy(chain)
    # the node is gone: every kind of request names the node and the step
    for attempt, step in ((lambda: ledger.set_prices({"WETH": 10**8}), "gas estimation"),
                          (lambda: ledger.total_held("TUSD"), "a call"),
                          (lambda: ledger.block_number(), "reading the block number"),
                          (lambda: ledger.vault_events(), "reading the block number")):
        with pytest.raises(ChainUnavailable, match=f"the node stopped answering during {step}"):
            attempt()


@pytest.mark.anvil
def test_two_processes_sharing_the_operator_key_both_get_their_transactions_mined(anvil_node):
    from tokenclear.ledger.chain import RpcChain

    first = RpcChain(anvil_node.url, anvil_node.funder_key)
    ledger = Ledger.deploy(first, operator=first.funder)
    other = Ledger.attach(RpcChain(anvil_node.url, anvil_node.funder_key), ledger.record())
    for i in range(6):  # each side's cached nonce goes stale after every send of the other
        (ledger if i % 2 else other).set_prices({"WETH": (1_500 + i) * 10**8})
    assert ledger.asset_parameters("WETH").price_e8 == 1_505 * 10**8
