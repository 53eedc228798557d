"""Crash recovery: the process is killed (SIGKILL) in the middle of a settlement batch, on a real
JSON-RPC node whose state outlives it; the restart attaches to the recorded deployment, completes the
instruction in flight, pays nothing twice and reconciles clean."""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import select

from tests.test_cli import tokenclear_env
from tokenclear.clearing.demo import Demo
from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import RpcChain
from tokenclear.ledger.ledger import instruction_key
from tokenclear.settings import Settings
from tokenclear.store.models import Instruction
from tokenclear.store.store import open_store

pytestmark = [pytest.mark.anvil, pytest.mark.integration]


@pytest.mark.parametrize("stage", ["after-send", "before-send"])
def test_sigkill_mid_settlement_then_restart_converges(tmp_path, stage):
    with anvil() as node:
        url = f"sqlite:///{tmp_path / 'book.db'}"
        done = tokenclear_env(["demo", "--rpc-url", node.url, "--database", url, "--members", "6", "--json"],
                              {"TOKENCLEAR_PRIVATE_KEY": node.funder_key,
                               "TOKENCLEAR_FAILPOINT": f"{stage}:settle_payments"})
        assert done.returncode == -signal.SIGKILL, done.stderr
        store = open_store(url)
        pending = store.in_flight()
        assert [one.kind for one in pending] == ["settle_payments"]
        key = pending[0].key
        chain = RpcChain(node.url, node.funder_key)
        demo = Demo(settings=Settings(), chain=chain, store=store, scenario="svb", members=6)

        def batches() -> tuple[int, int]:
            events = demo.ledger.settlement.history()
            wanted = instruction_key(f"{key}#0")
            settled = sum(1 for e in events if e.name == "BatchSettled" and bytes(e.args["key"]) == wanted)
            replayed = sum(1 for e in events if e.name == "InstructionReplayed" and bytes(e.args["key"]) == wanted)
            return settled, replayed

        workflow, completed = demo.resume()
        assert completed == 1
        settled, replayed = batches()
        assert settled == 1  # paid exactly once, whether the kill came before or after the send
        assert replayed == (1 if stage == "after-send" else 0)
        with store.session() as session:
            row = session.scalar(select(Instruction).where(Instruction.key == key))
            assert row.status == "confirmed"
        assert workflow.reconcile() == []
        again, completed_again = demo.resume()
        assert completed_again == 0 and batches() == (settled, replayed)
        assert os.path.exists(tmp_path / "book.db")
