"""Vault (pledge, release, substitution, default), idempotency, DvP and all-or-nothing batches."""

from __future__ import annotations

import pytest

from tests.ledger.conftest import BTC, ETH, SALT, USD
from tokenclear.errors import TransactionReverted
from tokenclear.ledger.ledger import Payment
from tokenclear.ledger.privacy import commitment, floor_bucket, verify_commitment


def eth_value(units: int, price_usd: int = 1_500, haircut_bps: int = 3_000) -> int:
    """Post-haircut micro-USD of ETH base units, computed independently of the contract."""
    return units * price_usd * (10_000 - haircut_bps) * USD // (ETH * 10_000)


def test_pledge_is_recorded_per_account_and_segregated(world):
    ledger = world.ledger
    receipt = ledger.pledge("p1", world.m1_house, "WETH", 2 * ETH, world.m1)
    (event,) = ledger.vault.events(receipt, "Pledged")
    assert event.args["account"] == world.m1_house and event.args["amount"] == 2 * ETH
    ledger.pledge("p2", world.m1_customer, "TUSD", 500 * USD, world.m1)
    assert ledger.held(world.m1_house, "WETH") == 2 * ETH
    assert ledger.held(world.m1_customer, "WETH") == 0
    assert ledger.held(world.m1_customer, "TUSD") == 500 * USD
    assert ledger.collateral_value(world.m1_house) == eth_value(2 * ETH) == 2_100 * USD
    assert ledger.balance("WETH", ledger.vault.address) == ledger.total_held("WETH") == 2 * ETH
    with pytest.raises(TransactionReverted, match="only the account's member"):
        ledger.pledge("p3", world.m1_house, "WETH", ETH, world.m2)


def test_replayed_key_has_no_second_effect_and_reused_key_reverts(world):
    ledger = world.ledger
    first = ledger.pledge("call-42/pledge", world.m1_house, "TUSD", 100 * USD, world.m1)
    replay = ledger.pledge("call-42/pledge", world.m1_house, "TUSD", 100 * USD, world.m1)
    assert ledger.vault.events(first, "Pledged") and not ledger.vault.events(replay, "Pledged")
    assert ledger.vault.events(replay, "InstructionReplayed")
    assert ledger.held(world.m1_house, "TUSD") == 100 * USD
    assert ledger.balance("TUSD", world.m1) == 999_900 * USD
    with pytest.raises(TransactionReverted, match="reused with other parameters"):
        ledger.pledge("call-42/pledge", world.m1_house, "TUSD", 101 * USD, world.m1)


def test_release_only_by_operator_and_never_below_the_floor(world):
    ledger = world.ledger
    ledger.pledge("p", world.m1_house, "TUSD", 1_000 * USD, world.m1)
    ledger.set_requirement(world.m1_house, 600 * USD, commitment(600 * USD, SALT))
    with pytest.raises(TransactionReverted, match="missing role"):
        ledger.vault.send("release", b"r".ljust(32, b"\0"), world.m1_house, ledger.token("TUSD").address, 1,
                          sender=world.m1)
    with pytest.raises(TransactionReverted, match="breach the requirement"):
        ledger.release("r1", world.m1_house, "TUSD", 400 * USD + 1)
    ledger.release("r2", world.m1_house, "TUSD", 400 * USD)
    assert ledger.held(world.m1_house, "TUSD") == 600 * USD
    assert ledger.balance("TUSD", world.m1) == 999_400 * USD


def test_substitution_accepted_only_when_the_new_asset_covers_the_old(world):
    ledger = world.ledger
    ledger.pledge("p", world.m1_house, "TUSD", 3_000 * USD, world.m1)
    ledger.set_requirement(world.m1_house, 3_000 * USD, commitment(3_000 * USD, SALT))
    # 2 ETH at 1,500 less 30% = 2,100 USD: does not cover 2,101 USD of cash
    with pytest.raises(TransactionReverted, match="does not cover"):
        ledger.substitute("s1", world.m1_house, "TUSD", 2_101 * USD, "WETH", 2 * ETH, world.m1)
    ledger.substitute("s2", world.m1_house, "TUSD", 2_100 * USD, "WETH", 2 * ETH, world.m1)
    assert ledger.held(world.m1_house, "TUSD") == 900 * USD
    assert ledger.held(world.m1_house, "WETH") == 2 * ETH
    assert ledger.collateral_value(world.m1_house) == 3_000 * USD
    # a price move of the replacement changes what it covers: haircuts and prices live on chain
    ledger.set_prices({"WETH": 1_000 * 10**8})
    assert ledger.collateral_value(world.m1_house) == 900 * USD + eth_value(2 * ETH, 1_000)


def test_seize_only_by_default_manager_and_only_after_default(world):
    ledger = world.ledger
    ledger.pledge("p", world.m1_house, "WBTC", BTC, world.m1)
    with pytest.raises(TransactionReverted, match="not in default"):
        ledger.seize("z1", world.m1_house, "WBTC", BTC, ledger.operator)
    with pytest.raises(TransactionReverted, match="missing role"):
        ledger.vault.send("declare_default", world.m1_house, sender=world.m2)
    ledger.declare_default(world.m1_house)
    with pytest.raises(TransactionReverted, match="missing role"):
        ledger.vault.send("seize", b"z".ljust(32, b"\0"), world.m1_house, ledger.token("WBTC").address, BTC,
                          world.m2, sender=world.m2)
    with pytest.raises(TransactionReverted, match="in default"):
        ledger.release("r", world.m1_house, "WBTC", BTC)
    ledger.seize("z2", world.m1_house, "WBTC", BTC, ledger.operator)
    assert ledger.balance("WBTC", ledger.operator) == BTC
    assert ledger.held(world.m1_house, "WBTC") == 0
    with pytest.raises(TransactionReverted, match="not in default"):  # the customer account is untouched
        ledger.seize("z3", world.m1_customer, "WBTC", 1, ledger.operator)


def test_requirement_commitment_opens_only_with_the_salt(world):
    ledger = world.ledger
    requirement = 1_234_567_891
    salt = b"member-regulator-salt".ljust(32, b"\0")
    floor = floor_bucket(requirement, 1_000 * USD)
    assert floor == 1_000 * USD  # 1,234.567891 USD rounded down: a floor never exceeds the requirement
    ledger.set_requirement(world.m1_house, floor, commitment(requirement, salt))
    assert ledger.vault.call("verify_requirement", world.m1_house, requirement, salt)
    assert not ledger.vault.call("verify_requirement", world.m1_house, requirement + 1, salt)
    assert verify_commitment(ledger.vault.call("commitment", world.m1_house), requirement, salt)
    assert ledger.vault.call("required_floor", world.m1_house) == floor


def test_dvp_moves_both_legs_or_neither(world):
    ledger = world.ledger
    ledger.dvp("d1", "TBILL", world.m1, 1_000 * USD, "TUSD", world.m2, 990 * USD)
    assert ledger.balance("TBILL", world.m2) == 1_001_000 * USD
    assert ledger.balance("TUSD", world.m1) == 1_000_990 * USD
    with pytest.raises(TransactionReverted, match="exceeds"):  # buyer cannot pay: the asset does not move
        ledger.dvp("d2", "TBILL", world.m1, 1_000 * USD, "TUSD", world.m2, 10_000_000 * USD)
    assert ledger.balance("TBILL", world.m2) == 1_001_000 * USD
    with pytest.raises(TransactionReverted, match="missing role"):
        ledger.settlement.send("dvp", b"d".ljust(32, b"\0"), ledger.token("TBILL").address, world.m1, 1,
                               ledger.token("TUSD").address, world.m2, 1, sender=world.m2)


def test_batch_is_all_or_nothing(world):
    ledger = world.ledger
    usd, eth = ledger.token("TUSD").address, ledger.token("WETH").address
    legs = [(usd, world.m1, world.m2, 10 * USD), (eth, world.m2, world.m1, ETH),
            (usd, world.m2, world.outsider, 1)]  # last leg: receiver off the allow-list
    with pytest.raises(TransactionReverted, match="allow-list"):
        ledger.settlement.send("settle_batch", b"b1".ljust(32, b"\0"), legs, sender=ledger.operator)
    assert ledger.balance("TUSD", world.m1) == ledger.balance("TUSD", world.m2) == 1_000_000 * USD
    ledger.settlement.send("settle_batch", b"b2".ljust(32, b"\0"), legs[:2], sender=ledger.operator)
    assert ledger.balance("TUSD", world.m2) == 1_000_010 * USD and ledger.balance("WETH", world.m1) == 101 * ETH


def test_variation_margin_both_ways_in_one_batch_and_a_rerun_pays_nothing_twice(world):
    ledger, op = world.ledger, world.ledger.operator
    payments = [Payment(world.m1, op, 250 * USD), Payment(op, world.m2, 200 * USD), Payment(world.m2, op, 1)]
    ledger.issue("TUSD", op, 1_000 * USD)
    receipts = ledger.settle_payments("vm-2023-03-10", payments)
    assert len(receipts) == 1
    expected = {world.m1: 999_750 * USD, world.m2: 1_000_200 * USD - 1, op: 1_050 * USD + 1}
    assert {who: ledger.balance("TUSD", who) for who in expected} == expected
    ledger.settle_payments("vm-2023-03-10", payments)  # crash-and-rerun: same key, no effect
    assert {who: ledger.balance("TUSD", who) for who in expected} == expected
    bad = [Payment(world.m1, op, 1), Payment(world.m2, op, 10_000_000 * USD)]
    with pytest.raises(TransactionReverted, match="token: amount exceeds the balance"):
        ledger.settle_payments("vm-2", bad)
    assert ledger.balance("TUSD", world.m1) == 999_750 * USD


def test_asset_parameters_update_in_place(world):
    ledger = world.ledger
    count = ledger.vault.call("assets_count")
    ledger.set_asset("WETH", haircut_bps=3_000, price_e8=1_500 * 10**8, eligible=False)
    ledger.set_asset("WETH", haircut_bps=3_500, price_e8=1_400 * 10**8)
    assert ledger.vault.call("assets_count") == count
    with pytest.raises(TransactionReverted, match="haircut must be below 100%"):
        ledger.set_asset("WETH", haircut_bps=10_000, price_e8=1)
    with pytest.raises(TransactionReverted, match="missing role"):
        ledger.vault.send("set_asset", ledger.token("WETH").address, True, 0, 1, False, sender=world.m1)
    ledger.pledge("p", world.m1_house, "WETH", ETH, world.m1)
    assert ledger.collateral_value(world.m1_house) == 1_400 * USD * 65 // 100


def test_asset_parameters_read_once_per_head_are_never_stale(world):
    """The ledger keeps the vault's terms per chain head: a transaction (a new block) or a clock move shows at
    once, and what it returns equals what the vault and the token say at that moment."""
    ledger, chain = world.ledger, world.chain

    def on_chain(symbol):
        eligible, decimals, haircut, price, from_token, _, _ = ledger.vault.call("assets", ledger.token(symbol).address)
        return bool(eligible), int(decimals), int(haircut), int(ledger.token(symbol).call("price_e8") if from_token
                                                               else price)

    def cached(symbol):
        a = ledger.asset_parameters(symbol)
        return a.eligible, a.decimals, a.haircut_bps, a.price_e8

    before = ledger.assets_parameters(["WETH", "TBILL"])
    assert cached("WETH") == on_chain("WETH") and cached("TBILL") == on_chain("TBILL")
    ledger.set_asset("WETH", haircut_bps=3_100, price_e8=1_234 * 10**8)  # a transaction: a new head
    assert cached("WETH") == on_chain("WETH") == (True, 18, 3_100, 1_234 * 10**8)
    chain.advance_time(30 * 86_400)  # the bill accretes with the clock, with no transaction
    assert cached("TBILL") == on_chain("TBILL") and cached("TBILL")[3] > before["TBILL"].price_e8


def test_a_replay_is_a_no_op_whatever_changed_since(world):
    """The key is claimed before any other check: a replay after the asset became ineligible, the account
    defaulted or the price moved returns without effect instead of reverting (the workflow's recovery
    resends everything it has not seen confirmed)."""
    ledger = world.ledger
    ledger.pledge("k1", world.m1_house, "WETH", ETH, world.m1)
    ledger.pledge("k2", world.m1_house, "TUSD", 3_000 * USD, world.m1)
    ledger.release("r1", world.m1_house, "TUSD", 100 * USD)
    ledger.substitute("s1", world.m1_house, "TUSD", 100 * USD, "TBILL", 200 * USD, world.m1)
    held = {s: ledger.held(world.m1_house, s) for s in ("WETH", "TUSD", "TBILL")}
    ledger.set_asset("WETH", haircut_bps=3_000, price_e8=0, eligible=False)
    ledger.set_asset("TBILL", haircut_bps=100, price_e8=0, eligible=False)
    ledger.set_prices({"TUSD": 99_000_000})
    ledger.declare_default(world.m1_house)
    for send in (lambda: ledger.pledge("k1", world.m1_house, "WETH", ETH, world.m1),
                 lambda: ledger.release("r1", world.m1_house, "TUSD", 100 * USD),
                 lambda: ledger.substitute("s1", world.m1_house, "TUSD", 100 * USD, "TBILL", 200 * USD, world.m1)):
        receipt = send()
        assert ledger.vault.events(receipt, "InstructionReplayed")
    assert {s: ledger.held(world.m1_house, s) for s in held} == held
    ledger.seize("z1", world.m1_house, "WETH", ETH, ledger.operator)
    ledger.declare_default(world.m1_house)  # declaring again is a no-op too
    receipt = ledger.seize("z1", world.m1_house, "WETH", ETH, ledger.operator)
    assert ledger.vault.events(receipt, "InstructionReplayed") and ledger.held(world.m1_house, "WETH") == 0
    # a new key still meets every check
    with pytest.raises(TransactionReverted, match="vault: asset not eligible"):
        ledger.pledge("k3", world.m1_house, "WETH", ETH, world.m1)
    with pytest.raises(TransactionReverted, match="vault: account in default"):
        ledger.release("r2", world.m1_house, "TUSD", 1)


def test_set_prices_refuses_zero_unlisted_and_self_priced_assets(world):
    ledger = world.ledger
    vault, op = ledger.vault, ledger.roles.parameter
    with pytest.raises(TransactionReverted, match="vault: price must be positive"):
        ledger.set_prices({"WETH": 0})
    with pytest.raises(TransactionReverted, match="vault: asset not listed"):
        vault.send("set_prices", [world.m1], [10**8], sender=op)
    with pytest.raises(TransactionReverted, match="vault: asset prices itself"):
        vault.send("set_prices", [ledger.token("TMMF").address], [10**8], sender=op)
    ledger.set_asset("WETH", haircut_bps=3_000, price_e8=0, eligible=False)
    receipt = ledger.set_prices({"WETH": 1_200 * 10**8})  # an ineligible asset keeps a price, and says so
    (event,) = vault.events(receipt, "AssetParameters")
    assert event.args["eligible"] is False and event.args["price_e8"] == 1_200 * 10**8
    assert ledger.asset_parameters("WETH").price_e8 == 1_200 * 10**8


def test_floors_post_in_keyed_chunks_and_a_replay_changes_nothing(world):
    from tokenclear.ledger.ledger import Floor

    ledger = world.ledger
    accounts = [world.m1_house, world.m1_customer, world.m2_house]
    first = [Floor(a, (i + 1) * 100 * USD, commitment((i + 1) * 100 * USD, SALT)) for i, a in enumerate(accounts)]
    receipts = ledger.set_requirements("cycle-1:floors", first, chunk=2)
    assert len(receipts) == 2
    assert [ledger.required_floor(a) for a in accounts] == [100 * USD, 200 * USD, 300 * USD]
    later = [Floor(a, 50 * USD, commitment(50 * USD, SALT)) for a in accounts]
    ledger.set_requirements("cycle-2:floors", later, chunk=2)
    replay = ledger.set_requirements("cycle-1:floors", first, chunk=2)  # a late resend of cycle 1
    assert all(ledger.vault.events(r, "InstructionReplayed") for r in replay)
    assert [ledger.required_floor(a) for a in accounts] == [50 * USD] * 3
    with pytest.raises(TransactionReverted, match="reused with other parameters"):
        ledger.set_requirements("cycle-1:floors", later, chunk=2)
    with pytest.raises(TransactionReverted, match="vault: unknown account"):
        ledger.set_requirements("cycle-3:floors", [Floor(b"\x01" * 32, 1, b"\x00" * 32)])


def test_batch_sizes_stay_within_the_contracts_bounds(world):
    from tokenclear.ledger.ledger import FLOOR_CHUNK, VM_CHUNK

    assert world.ledger.vault.call("MAX_FLOORS") == FLOOR_CHUNK
    assert VM_CHUNK <= world.ledger.settlement.call("MAX_BATCH")


def test_bulk_views_read_the_whole_book_as_the_single_views_do(world):
    """collateral_values and holdings (a cycle's valuation and reconciliation in a few calls) give what
    collateral_value and held give account by account, in order, across the MAX_VIEW chunks."""
    from tokenclear.ledger.ledger import MAX_VIEW

    ledger = world.ledger
    ledger.pledge("b1", world.m1_house, "WETH", 2 * ETH, world.m1)
    ledger.pledge("b2", world.m1_customer, "TUSD", 700 * USD, world.m1)
    accounts = [world.m1_house, world.m1_customer, world.m2_house] * (MAX_VIEW // 2 + 5)  # three chunks
    values = ledger.collateral_values(accounts)
    assert len(values) == len(accounts) and values[:3] == [eth_value(2 * ETH), 700 * USD, 0]
    assert values == [ledger.collateral_value(one) for one in accounts[:3]] * (MAX_VIEW // 2 + 5)
    symbols = ["TUSD", "WETH"]
    held = ledger.holdings(accounts, symbols)
    assert held[:3] == [[0, 2 * ETH], [700 * USD, 0], [0, 0]]
    assert held == [[ledger.held(one, symbol) for symbol in symbols] for one in accounts]
    assert ledger.collateral_values([]) == [] and ledger.holdings([], symbols) == []
