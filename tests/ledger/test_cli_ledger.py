"""``tokenclear ledger`` end to end: embedded deploy, deploy over JSON-RPC, a node that is down."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import contract, tokenclear, tokenclear_env
from tokenclear.ledger.abi import Abi
from tokenclear.ledger.chain import RpcChain
from tokenclear.ledger.contract import Contract, artifact
from tokenclear.local_ports import free_port

pytestmark = pytest.mark.integration


def test_deploy_on_the_embedded_chain_lists_every_contract_and_says_it_is_gone(tmp_path):
    record = tmp_path / "deployment.json"
    done = tokenclear("ledger", "deploy", "--format", "json", "--out", str(record))
    assert done.returncode == 0, done.stderr
    out = contract(done.stdout, "ledger deploy")
    assert out["metadata"]["chain"] == "embedded" and out["metadata"]["evm"] == "revm"
    contracts = {row["contract"]: row["address"] for row in out["rows"]}
    assert {"registry", "vault", "settlement", "htlc", "bid_bond", "token:TUSD", "token:WETH"} <= set(contracts)
    assert any("lives only as long as this command" in warning for warning in out["warnings"])
    assert json.loads(record.read_text())["addresses"] == contracts  # the record `book load --deployment` takes
    table = tokenclear("ledger", "deploy")
    assert "lives only as long as this command" in " ".join(table.stderr.split())
    assert "deployed on embedded (revm)" in table.stdout


def test_the_embedded_evm_is_chosen_by_the_setting_and_a_wrong_one_is_named():
    """TOKENCLEAR_EVM=py-evm deploys the same contracts on titanoboa's py-evm; an unknown engine is refused
    naming the setting and the engines there are."""
    done = tokenclear_env(["ledger", "deploy", "--format", "json"], {"TOKENCLEAR_EVM": "py-evm"})
    assert done.returncode == 0, done.stderr
    out = contract(done.stdout, "ledger deploy")
    assert (out["metadata"]["chain"], out["metadata"]["evm"]) == ("embedded", "py-evm")
    wrong = tokenclear_env(["ledger", "deploy"], {"TOKENCLEAR_EVM": "geth"})
    assert wrong.returncode != 0 and "TOKENCLEAR_EVM" in wrong.stderr.upper() and "revm" in wrong.stderr


@pytest.mark.anvil
def test_deploy_over_json_rpc_puts_code_on_the_node(anvil_node, monkeypatch):
    monkeypatch.setenv("TOKENCLEAR_PRIVATE_KEY", anvil_node.funder_key)
    done = tokenclear("ledger", "deploy", "--json", "--rpc-url", anvil_node.url)
    assert done.returncode == 0, done.stderr
    assert anvil_node.funder_key not in done.stdout + done.stderr
    out = contract(done.stdout, "ledger deploy")
    assert out["metadata"]["chain"] == "json-rpc" and out["metadata"]["chain_id"] == anvil_node.chain_id
    (warning,) = out["warnings"]  # one key holds every role: said, with the variables that would separate them
    assert "holds several roles" in warning and "TOKENCLEAR_TOKEN_AGENT_KEY" in warning
    assert set(out["metadata"]["roles"].values()) == {out["metadata"]["operator"]}
    chain = RpcChain(anvil_node.url, anvil_node.funder_key)
    contracts = {row["contract"]: row["address"] for row in out["rows"]}
    usd = Contract(chain, contracts["token:TUSD"], Abi(artifact("collateral_token")["abi"]), "TUSD")
    assert usd.call("symbol") == "TUSD" and usd.call("decimals") == 6


def test_a_node_that_is_down_gets_a_clear_error(monkeypatch):
    monkeypatch.setenv("TOKENCLEAR_PRIVATE_KEY", "0x" + "11" * 32)
    done = tokenclear("ledger", "deploy", "--rpc-url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "no EVM node answers" in done.stderr and "11" * 32 not in done.stderr


def test_artifacts_check_passes_on_the_shipped_build():
    done = tokenclear("ledger", "build", "--check")
    assert done.returncode == 0, done.stderr


@pytest.mark.anvil
def test_deploy_signs_with_a_keystore_file_and_rejects_a_wrong_password(anvil_node, monkeypatch, tmp_path):
    from eth_account import Account

    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(anvil_node.funder_key, "s3cret", iterations=2)))
    monkeypatch.setenv("TOKENCLEAR_KEYSTORE", str(keystore))
    monkeypatch.setenv("TOKENCLEAR_KEYSTORE_PASSWORD", "wrong")
    done = tokenclear("ledger", "deploy", "--rpc-url", anvil_node.url)
    assert done.returncode == 2 and "cannot decrypt the keystore" in done.stderr
    monkeypatch.setenv("TOKENCLEAR_KEYSTORE_PASSWORD", "s3cret")
    done = tokenclear("ledger", "deploy", "--json", "--rpc-url", anvil_node.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metadata"]["chain_id"] == anvil_node.chain_id
