"""A member that signs its own transactions: onboarded with a wallet the service holds no key for, it gets the
unsigned pledge from the API, signs it with its own key and relays it; the book follows the vault, a replayed
pledge key does nothing twice, and nobody else can relay for it. On a node (anvil): the embedded chain signs for
any address."""

from __future__ import annotations

import uuid

import httpx
import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from tests.service.conftest import serve
from tests.service.test_restart_and_lease import rpc_settings
from tokenclear.ledger.anvil import anvil
from tokenclear.service.auth import add_client
from tokenclear.settings import Settings

UNITS = 3_000_000  # three T-bill tokens (6 decimals)


def key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def signed(w3: Web3, wallet, transaction: dict, chain_id: int) -> str:
    """``transaction`` ({to, data}) signed by ``wallet`` as its owner would: its own nonce, gas and fees."""
    tx = {"from": wallet.address, "to": Web3.to_checksum_address(transaction["to"]), "data": transaction["data"],
          "value": 0, "chainId": chain_id, "nonce": w3.eth.get_transaction_count(wallet.address, "pending")}
    tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2)
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tx.update(maxFeePerGas=2 * base + 10**9, maxPriorityFeePerGas=10**9)
    del tx["from"]
    return "0x" + wallet.sign_transaction(tx).raw_transaction.hex()


def tbill_units(client: httpx.Client, account: str) -> int:
    rows = client.get("/api/collateral", params={"account": account}).json()["accounts"][0]["tokens"]
    return sum(int(t["units"]) for t in rows if t["symbol"] == "TBILL")


@pytest.mark.anvil
@pytest.mark.integration
def test_a_member_with_its_own_wallet_signs_its_pledge_and_the_book_follows(tmp_path, monkeypatch):
    with anvil() as node:
        for name, value in rpc_settings(node, tmp_path).items():
            monkeypatch.setenv(name, value)
        served, server, thread = serve(Settings(), database=f"sqlite:///{tmp_path / 'book.db'}", rpc_url=node.url,
                                       members=2)
        try:
            w3 = Web3(HTTPProvider(node.url))
            own = Account.create()  # the member's key: never given to the service
            funder = Account.from_key(node.funder_key)
            gas_money = {"to": own.address, "value": 10**18, "gas": 21_000, "chainId": served.service.chain.chain_id,
                         "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
                         "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
            w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(
                funder.sign_transaction(gas_money).raw_transaction))
            with served.client("ccp") as ccp:
                header = key()
                body = {"id": "SELF1", "wallet": own.address.lower()}
                first = ccp.post("/api/members", json=body, headers=header)
                assert first.status_code == 200, first.text
                assert first.json() == {"member": "SELF1", "wallet": own.address, "opened": 2,
                                        "accounts": ["SELF1-HOUSE", "SELF1-CUST"], "signs_own_transactions": True}
                assert ccp.post("/api/members", json=body, headers=header).json() == first.json()  # a replay
                bad = ccp.post("/api/members", json={"id": "SELF2", "wallet": "0x123"}, headers=key())
                assert bad.status_code == 422 and bad.json()["field"] == "wallet"
            served.service.ledger.issue("TBILL", own.address, 10 * UNITS)  # the token's issuer, off the service
            served.secrets["member-SELF1"] = add_client(served.service.store, "member-SELF1", "member", "SELF1")
            pledge = {"account": "SELF1-HOUSE", "symbol": "TBILL", "units": UNITS}
            chain_id = served.service.chain.chain_id
            with served.client("member-SELF1") as me:
                custodial = me.post("/api/instructions/pledge", json=pledge, headers=key())
                assert custodial.status_code == 409 and "/api/chain/unsigned/pledge" in custodial.json()["detail"]
                pledge_key = key()
                unsigned = me.post("/api/chain/unsigned/pledge", json=pledge, headers=pledge_key).json()
                assert unsigned["from"] == own.address and unsigned["chain_id"] == chain_id
                assert [t["purpose"] for t in unsigned["transactions"]] == ["approve the vault to take TBILL",
                                                                             f"pledge {UNITS} TBILL units"]
                for transaction in unsigned["transactions"]:
                    answer = me.post("/api/chain/transactions", headers=key(),
                                     json={"raw": signed(w3, own, transaction, chain_id)})
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["from"] == own.address
                assert tbill_units(me, "SELF1-HOUSE") == UNITS
                vault = served.service.ledger.held(bytes.fromhex(me.get("/api/accounts/SELF1-HOUSE").json()
                                                                 ["onchain_id"][2:]), "TBILL")
                assert vault == UNITS  # book == chain
                # the same pledge again (the replay of its key) is signed and sent anew: the vault does it once
                again = me.post("/api/chain/unsigned/pledge", json=pledge, headers=pledge_key)
                assert again.headers["Idempotent-Replayed"] == "true"
                replayed = me.post("/api/chain/transactions", headers=key(),
                                   json={"raw": signed(w3, own, again.json()["transactions"][-1], chain_id)})
                assert replayed.status_code == 200 and tbill_units(me, "SELF1-HOUSE") == UNITS
                # only this system's contracts
                elsewhere = me.post("/api/chain/transactions", headers=key(), json={"raw": signed(
                    w3, own, {"to": funder.address, "data": "0x"}, chain_id)})
                assert elsewhere.status_code == 422 and "not to a contract" in elsewhere.json()["detail"]
                garbage = me.post("/api/chain/transactions", headers=key(), json={"raw": "0x1234"})
                assert garbage.status_code == 422 and garbage.json()["field"] == "raw"
            second = unsigned["transactions"][-1]
            with served.client("member-M01") as other:  # another member cannot relay SELF1's transactions
                refused = other.post("/api/chain/transactions", headers=key(),
                                     json={"raw": signed(w3, own, second, chain_id)})
                assert refused.status_code == 422 and "not by a wallet of yours" in refused.json()["detail"]
            assert served.service.workflow.reconcile() == []
        finally:
            server.should_exit = True
            thread.join(10)
