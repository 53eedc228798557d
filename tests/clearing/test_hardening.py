"""Faults a member or a crash can cause: a token outside the book, VM after a crash, a default left half done."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.clearing.test_workflow import run_demo
from tokenclear.clearing import calls, instructions
from tokenclear.clearing.campaign import SimulatedCrash
from tokenclear.clearing.demo import Demo
from tokenclear.clearing.reconciliation import holding_changes
from tokenclear.clearing.system import TOKENS
from tokenclear.ledger.chain import embedded_chain
from tokenclear.settings import Settings
from tokenclear.store import queries
from tokenclear.store.models import Cycle, Holding, Instruction, MarginCall
from tokenclear.store.store import open_store


def test_the_book_tracks_every_token_the_vault_lists_and_a_substitution_into_any_is_booked(tmp_path):
    demo, _ = run_demo(f"sqlite:///{tmp_path / 'book.db'}", members=4)
    workflow, ledger, store = demo.workflow, demo.ledger, demo.store
    assert {token.symbol for token in TOKENS} == set(ledger.specs)  # one asset list (TMMFD included)
    with store.session() as session:
        account = queries.margin_accounts(session)[0]
        tusd = int(session.get(Holding, (account.id, "TUSD")).units)
    wallet = demo.wallets()[int(account.member_id[1:]) - 1]
    ledger.issue("TMMFD", wallet, tusd)
    ledger.substitute("sub:tmmfd", bytes.fromhex(account.onchain_id[2:]), "TUSD", tusd // 2, "TMMFD", tusd // 2,
                      wallet)
    workflow.sync()  # used to raise KeyError: the book did not know TMMFD
    with store.session() as session:
        assert int(session.get(Holding, (account.id, "TMMFD")).units) == tusd // 2
    assert workflow.reconcile() == []


def test_an_event_for_a_token_the_book_does_not_track_is_left_to_reconciliation():
    class Event:
        name = "Substituted"
        args = {"account": b"\x01" * 32, "token_out": "0xAA", "amount_out": 5, "token_in": "0xBB", "amount_in": 7}

    assert holding_changes(Event(), {"0xaa": "TUSD"}) == [("0x" + "01" * 32, "TUSD", -5)]


def vm_totals(store) -> tuple[Decimal, Decimal]:
    with store.session() as session:
        cycles = [c for c in session.scalars(select(Cycle)) if c.kind != "opening"]
        return (sum((Decimal(c.detail.get("vm_paid_by_members", "0")) for c in cycles), Decimal(0)),
                sum((Decimal(c.detail.get("vm_paid_to_members", "0")) for c in cycles), Decimal(0)))


def test_vm_is_not_paid_twice_when_a_cycle_dies_after_its_batch(tmp_path):
    """The crashed cycle is recorded before it sends anything; the next cycle first completes it under its
    own key, then pays VM from its date: the totals are the clean run's to the cent."""
    def demo_at(name: str) -> Demo:
        store = open_store(f"sqlite:///{tmp_path / name}")
        return Demo(settings=Settings(), chain=embedded_chain(), store=store, scenario="svb", members=6)

    clean = demo_at("clean.db")
    clean.setup()
    for day in clean.days[:3]:
        clean.clock.set(clean._at(day))
        clean.workflow.run_cycle(clean._at(day))

    crashed = demo_at("crashed.db")
    crashed.setup()
    crashed.clock.set(crashed._at(crashed.days[0]))
    crashed.workflow.run_cycle(crashed._at(crashed.days[0]))

    def die_after_vm(stage: str, kind: str) -> None:
        if (stage, kind) == ("after-send", "settle_payments"):
            raise SimulatedCrash

    instructions.failpoint_hook = die_after_vm
    try:
        crashed.clock.set(crashed._at(crashed.days[1]))
        with pytest.raises(SimulatedCrash):
            crashed.workflow.run_cycle(crashed._at(crashed.days[1]))
    finally:
        instructions.failpoint_hook = None
    with crashed.store.session() as session:  # recorded before anything was sent, and left open
        crashed_key = f"scheduled:{crashed._at(crashed.days[1]).isoformat()}"
        assert session.scalar(select(Cycle.status).where(Cycle.key == crashed_key)) == "open"
    crashed.clock.set(crashed._at(crashed.days[2]))
    crashed.workflow.run_cycle(crashed._at(crashed.days[2]))  # completes the crashed cycle first
    assert vm_totals(crashed.store) == vm_totals(clean.store)
    assert vm_totals(clean.store)[0] > 0
    with crashed.store.session() as session:
        assert {c.status for c in session.scalars(select(Cycle))} == {"closed"}


def test_a_default_is_recorded_with_the_call_and_sent_after_a_crash(tmp_path, monkeypatch):
    """process_due records the declare_default instruction in the transaction that defaults the call; a crash
    before it is sent leaves it pending, and recover() declares the default on chain."""
    demo, _ = run_demo(f"sqlite:///{tmp_path / 'book.db'}", members=4)
    workflow, store = demo.workflow, demo.store
    with store.session() as session:
        cycle = session.scalar(select(Cycle).order_by(Cycle.at.desc()))
        account = queries.margin_accounts(session)[0]
        session.add(MarginCall(key="call:late", account_id=account.id, cycle_id=cycle.id, amount=Decimal("10.00"),
                               currency="USD", issued_at=demo.clock.now(), deadline=demo.clock.now(),
                               state=calls.ESCALATED, cured_amount=Decimal("0.00")))
    demo.clock.advance(3 * 3600)

    def crash(self, key, kind, params):
        raise SimulatedCrash

    with monkeypatch.context() as patch:
        patch.setattr(instructions.Instructions, "execute", crash)
        with pytest.raises(SimulatedCrash):
            workflow.process_due()
    onchain = bytes.fromhex(account.onchain_id[2:])
    with store.session() as session:
        pending = session.scalar(select(Instruction).where(Instruction.key == f"default:{account.id}"))
        assert pending is not None and pending.status == "pending"
        assert session.scalar(select(MarginCall.state).where(MarginCall.key == "call:late")) == calls.DEFAULTED
    assert not demo.ledger.is_defaulted(onchain)
    assert workflow.recover().sent == [f"default:{account.id}"]
    assert demo.ledger.is_defaulted(onchain)
