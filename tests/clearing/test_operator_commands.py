"""The operator's path without the demo: accounts and positions files into the book and onto the vault,
a cycle, the calls, reconciliation; on anvil, each command a separate process."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.test_cli import tokenclear_env
from tokenclear.clearing import system
from tokenclear.clearing.coverage import units_for
from tokenclear.clearing.iso20022 import REQUEST_NS, answer_call, parse
from tokenclear.errors import TransactionReverted
from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import RpcChain
from tokenclear.store.models import Account
from tokenclear.store.store import open_store

pytestmark = [pytest.mark.anvil, pytest.mark.integration]
START = 1_678_406_400  # 2023-03-10 00:00 UTC


def test_book_load_cycle_calls_reconcile(tmp_path):
    with anvil(start_time=START) as node:
        url = f"sqlite:///{tmp_path / 'book.db'}"
        env = {"TOKENCLEAR_PRIVATE_KEY": node.funder_key, "TOKENCLEAR_RPC_URL": node.url,
               "TOKENCLEAR_DATABASE_URL": url}
        chain = RpcChain(node.url, node.funder_key)
        alice, bob = chain.new_account(), chain.new_account()
        accounts = tmp_path / "accounts.csv"
        accounts.write_text(f"account,member,segregation,wallet\nA-HOUSE,ALICE,HOUSE,{alice}\n"
                            f"B-HOUSE,BOB,house,{bob}\nB-CLIENT,BOB,CUSTOMER,{bob}\n")
        positions = tmp_path / "positions.csv"
        positions.write_text("account,instrument,quantity\nA-HOUSE,BTCZ23,3\nB-HOUSE,ESZ23,-2\nB-CLIENT,ETHZ23,4\n")

        done = tokenclear_env(["book", "load", "--accounts", str(accounts), "--positions", str(positions)], env)
        assert done.returncode == 0, done.stderr
        assert "accounts opened: 3 (of 3 in the file); positions loaded: 3" in done.stdout
        again = tokenclear_env(["book", "load", "--accounts", str(accounts), "--positions", str(positions)], env)
        assert "accounts opened: 0 (of 3 in the file)" in again.stdout, again.stderr

        # members authorise the vault and post collateral: ALICE posts plenty, BOB a little
        store = open_store(url)
        ledger = system.attach_ledger(store, chain)
        with store.session() as session:
            ids = {a.id: bytes.fromhex(a.onchain_id[2:]) for a in session.query(Account)}
        for wallet in (alice, bob):
            ledger.authorise(wallet)
            ledger.issue("TUSD", wallet, 10_000_000 * 10**6)
            ledger.issue("TBILL", wallet, 10_000_000 * 10**6)
        # T-bills: no issuer limit (a stablecoin counts for at most half a requirement)
        ledger.pledge("p-a", ids["A-HOUSE"], "TBILL", 5_000_000 * 10**6, alice)
        ledger.pledge("p-b", ids["B-HOUSE"], "TUSD", 1_000 * 10**6, bob)

        done = tokenclear_env(["cycle", "--at", "2023-03-11T00:00:00Z", "--format", "json"], env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)["metadata"]
        assert summary["calls_issued"] == 2  # both of BOB's accounts are short, ALICE is covered
        rerun = tokenclear_env(["cycle", "--at", "2023-03-11T00:00:00Z", "--format", "json"], env)
        assert json.loads(rerun.stdout)["metadata"]["calls_issued"] == 0, rerun.stderr  # the same cycle: no call twice

        listed = tokenclear_env(["calls", "--format", "json"], env)
        calls = json.loads(listed.stdout)["rows"]
        assert sorted(c["account"] for c in calls) == ["B-CLIENT", "B-HOUSE"]
        assert sum(Decimal(c["amount"]) for c in calls) == Decimal(summary["called"])
        requirement = {}
        with store.session() as session:
            from tokenclear.store.models import Requirement

            for row in session.query(Requirement):
                requirement[row.account_id] = row.requirement
        for account, onchain in ids.items():  # the floors the cycle posted are the requirements
            assert ledger.required_floor(onchain) == int(requirement[account] * 10**6)
        assert Decimal(summary["requirement"]) == sum(requirement.values())

        # the call goes out as colr.003, BOB's agreement comes back as colr.004
        first = calls[0]
        request = tmp_path / "call.xml"
        done = tokenclear_env(["call-message", first["key"], "--out", str(request)], env)
        assert done.returncode == 0, done.stderr
        sent = parse(request.read_bytes(), REQUEST_NS).mrgn_call_req
        assert sent.tx_id == first["message_id"] and sent.oblgtn.blck_chain_adr_or_wllt.id == ledger.vault.address
        reply = tmp_path / "answer.xml"
        reply.write_bytes(answer_call(request.read_bytes(), transaction_id="BOB-1", agreed=Decimal(first["amount"])))
        done = tokenclear_env(["answer", str(reply)], env)
        assert done.returncode == 0 and "the call is acknowledged" in done.stdout, done.stderr

        # the next day's cycle first escalates BOB's unanswered calls, then defaults them (past deadline and grace)
        later = tokenclear_env(["cycle", "--at", "2023-03-12T00:00:00Z", "--format", "json"], env)
        moved = json.loads(later.stdout)["calls_moved"]
        assert [one["state"] for one in moved] == ["escalated", "escalated", "defaulted", "defaulted"], later.stderr
        assert all(ledger.is_defaulted(ids[account]) for account in ("B-HOUSE", "B-CLIENT"))

        clean = tokenclear_env(["reconcile"], env)
        assert clean.returncode == 0 and "clean" in clean.stdout, clean.stderr
        # the chain holds ALICE to her floor: a release one micro-USD beyond her excess is refused
        excess = ledger.collateral_value(ids["A-HOUSE"]) - ledger.required_floor(ids["A-HOUSE"])
        tbill = ledger.asset_parameters("TBILL")
        units = units_for(excess + 1, price_e8=tbill.price_e8, haircut_bps=tbill.haircut_bps, decimals=tbill.decimals)
        assert 0 < units <= ledger.held(ids["A-HOUSE"], "TBILL")
        with pytest.raises(TransactionReverted, match="breach the requirement"):
            ledger.release("too-much", ids["A-HOUSE"], "TBILL", units)


def test_operator_commands_need_a_book_and_a_node(tmp_path):
    bad = tmp_path / "accounts.csv"
    bad.write_text("account,member,segregation,wallet\nA,ALICE,SOMETIMES,0x0000000000000000000000000000000000000001\n")
    done = tokenclear_env(["book", "load", "--accounts", str(bad)], {"TOKENCLEAR_DATABASE_URL": ""})
    assert done.returncode == 2 and "TOKENCLEAR_DATABASE_URL" in done.stderr
    done = tokenclear_env(["cycle", "--database", f"sqlite:///{tmp_path / 'b.db'}"], {"TOKENCLEAR_RPC_URL": ""})
    assert done.returncode == 2 and "TOKENCLEAR_RPC_URL" in done.stderr
    with anvil() as node:
        env = {"TOKENCLEAR_PRIVATE_KEY": node.funder_key, "TOKENCLEAR_RPC_URL": node.url,
               "TOKENCLEAR_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
        done = tokenclear_env(["book", "load", "--accounts", str(bad)], env)
        message = " ".join(done.stderr.split())  # rich wraps long lines
        assert done.returncode == 2 and "accounts.csv line 2 field 'segregation'" in message, done.stderr
