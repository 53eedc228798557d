"""``tokenclear demo --json`` against an outside node: anyone can check the chain against the book."""

from __future__ import annotations

import pytest

from tests.test_cli import contract, tokenclear, tokenclear_env
from tokenclear.ledger.abi import Abi
from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import RpcChain
from tokenclear.ledger.contract import Contract, artifact

pytestmark = pytest.mark.integration


@pytest.mark.anvil
def test_demo_json_over_json_rpc_lets_an_outside_client_check_the_book(tmp_path):
    with anvil() as node:
        done = tokenclear_env(["demo", "--rpc-url", node.url, "--members", "8", "--json",
                               "--database", f"sqlite:///{tmp_path / 'book.db'}"],
                              {"TOKENCLEAR_PRIVATE_KEY": node.funder_key})
        assert done.returncode == 0, done.stderr
        body = contract(done.stdout, "demo")
        assert body["chain"]["chain_id"] == node.chain_id and body["reconciliation"]["clean"]
        outside = RpcChain(node.url, node.funder_key)
        contracts = body["chain"]["contracts"]
        vault = Contract(outside, contracts["vault"], Abi(artifact("vault")["abi"]), "vault")
        for symbol, units in body["book_totals_units"].items():
            assert vault.call("total_held", contracts[f"token:{symbol}"]) == int(units)
        assert [row["as_of"] for row in body["rows"]] == ["2023-03-10", "2023-03-11", "2023-03-12", "2023-03-13"]
        assert body["rows"][1]["usdc"] == pytest.approx(0.9715)
        for row in body["rows"]:  # a matched book: every long has its short among the members
            assert row["vm_paid_by_members"] == row["vm_paid_to_members"]


def test_demo_other_scenario_and_bad_options(tmp_path):
    done = tokenclear("demo", "--scenario", "ftx", "--members", "5", "--json",
                      "--database", f"sqlite:///{tmp_path / 'ftx.db'}")
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "demo")
    assert body["rows"][0]["as_of"] == "2022-11-07" and len(body["rows"]) == 5
    assert body["reconciliation"]["clean"]
    again = tokenclear("demo", "--scenario", "ftx", "--members", "5", "--database", f"sqlite:///{tmp_path / 'ftx.db'}")
    message = " ".join(again.stderr.split())
    assert again.returncode == 2 and "already holds a clearing system" in message, again.stderr
    assert len(again.stderr.strip().splitlines()) <= 3  # one error, no traceback
    refused = tmp_path / "refused.db"
    bad = tokenclear("demo", "--scenario", "lehman", "--database", f"sqlite:///{refused}")
    assert bad.returncode == 2 and "unknown scenario 'lehman'" in bad.stderr
    assert not refused.exists()  # nothing created when the run is refused
    down = tokenclear_env(["demo", "--rpc-url", "http://127.0.0.1:9", "--members", "3"],
                          {"TOKENCLEAR_PRIVATE_KEY": "0x" + "11" * 32})
    assert down.returncode == 2 and "no EVM node answers" in down.stderr
