"""The margin cycle end to end on the embedded EVM, with the book on SQLite and on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tokenclear.clearing import calls
from tokenclear.clearing.demo import Demo
from tokenclear.ledger.chain import EmbeddedChain
from tokenclear.settings import Settings
from tokenclear.store.models import CallEvent, Holding, Instruction, MarginCall
from tokenclear.store.store import open_store


def run_demo(url: str, members: int = 12):
    store = open_store(url)
    demo = Demo(settings=Settings(), chain=EmbeddedChain(), store=store, scenario="svb", members=members)
    return demo, demo.run()


def test_svb_weekend_end_to_end(database_url):
    demo, result = run_demo(database_url)
    ledger, store = demo.ledger, demo.store
    assert result.reconciliation == {"clean": True, "breaks": []}
    # the book's holdings are the vault's, token by token and in total
    for symbol, units in result.book_totals_units.items():
        assert ledger.total_held(symbol) == units
    # USDC's haircut widened when it depegged on Saturday
    usdc = [step["haircuts_bps"]["TUSD"] for step in result.steps]
    assert usdc[0] < usdc[1] and result.steps[1]["prices"]["USDC"] == pytest.approx(0.9715)
    with store.session() as session:
        every = list(session.scalars(select(MarginCall)))
        assert every, "the replay issues margin calls"
        for call in every:
            assert call.state in calls.FINAL_STATES  # every call ends cured or defaulted
            history = [e.target for e in session.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                                          .order_by(CallEvent.id))]
            assert history[0] == calls.ISSUED and history[-1] == call.state
        defaulted = {call.account_id for call in every if call.state == calls.DEFAULTED}
        assert defaulted  # the unresponsive members
        pending = session.scalars(select(Instruction).where(Instruction.status != "confirmed")).all()
        assert pending == []
    for account in defaulted:
        onchain = bytes.fromhex(demo.store_account(account)[2:])
        assert ledger.vault.call("accounts", onchain)[2] is True  # declared in default on chain


def test_a_cycle_rerun_sends_nothing_twice(tmp_path):
    demo, result = run_demo(f"sqlite:///{tmp_path / 'book.db'}", members=6)
    workflow, ledger, store = demo.workflow, demo.ledger, demo.store
    last = demo.clock.now()
    balances = {wallet: ledger.balance("TUSD", wallet) for wallet in demo.wallets()}
    with store.session() as session:
        instructions = len(session.scalars(select(Instruction)).all())
        call_count = len(session.scalars(select(MarginCall)).all())
    from datetime import datetime
    again = workflow.run_cycle(datetime.fromisoformat(result.steps[-1]["at"]))
    assert again.calls_issued == 0
    with store.session() as session:
        assert len(session.scalars(select(Instruction)).all()) == instructions
        assert len(session.scalars(select(MarginCall)).all()) == call_count
    assert {wallet: ledger.balance("TUSD", wallet) for wallet in demo.wallets()} == balances
    assert demo.clock.now() == last


def test_reconciliation_lists_each_break_with_its_cause(tmp_path):
    demo, _ = run_demo(f"sqlite:///{tmp_path / 'book.db'}", members=4)
    store, workflow = demo.store, demo.workflow
    with store.session() as session:
        holding = session.scalars(select(Holding).where(Holding.asset == "TUSD")).first()
        holding.units = Decimal(holding.units) + 7
        account = holding.account_id
    breaks = workflow.reconcile()
    assert [(b.account, b.asset, b.book_units - b.chain_units) for b in breaks if b.account != "*"] == [
        (account, "TUSD", 7)]
    assert "book holds units the vault does not" in breaks[0].cause
    assert any(b.account == "*" for b in breaks)  # the totals disagree too


def test_a_call_goes_out_as_colr003_and_an_answer_comes_back_as_colr004(tmp_path):
    from xml.etree import ElementTree

    from tokenclear.clearing.iso20022 import REQUEST_NS, RESPONSE_NS
    from tokenclear.store.models import Account, Cycle, Requirement

    demo, _ = run_demo(f"sqlite:///{tmp_path / 'book.db'}", members=4)
    store, workflow = demo.store, demo.workflow
    with store.session() as session:
        cycle = session.scalar(select(Cycle).order_by(Cycle.id.desc()))
        account = session.scalar(select(Account))
        session.add(MarginCall(key="call:test", account_id=account.id, cycle_id=cycle.id, amount=Decimal("1500.00"),
                               currency="USD", issued_at=cycle.at, deadline=cycle.at, state=calls.ISSUED))
        assert session.get(Requirement, (cycle.id, account.id)) is not None
    document = ElementTree.fromstring(workflow.call_message("call:test"))
    amount = document.find(f"{{{REQUEST_NS}}}MrgnCallReq/{{{REQUEST_NS}}}MrgnCallRslt/{{{REQUEST_NS}}}MrgnCallAmt/"
                           f"{{{REQUEST_NS}}}DlvrMrgnAmt")
    assert amount.text == "1500.00"

    def answer(body: str) -> bytes:
        return (f'<Document xmlns="{RESPONSE_NS}"><MrgnCallRspn><TxId>a1</TxId><CallDtls><MrgnCallReqId>call:test'
                f"</MrgnCallReqId></CallDtls><RspnDtls>{body}</RspnDtls></MrgnCallRspn></Document>").encode()

    assert workflow.receive_answer(answer("<DsptdAmt>500.00</DsptdAmt><DsptRsn>price</DsptRsn>")) == calls.ISSUED
    assert workflow.receive_answer(answer("<AgrdAmt>1500.00</AgrdAmt>")) == calls.ACKNOWLEDGED
    with store.session() as session:
        call = session.scalar(select(MarginCall).where(MarginCall.key == "call:test"))
        details = [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.call_id == call.id))]
    assert any("disputed 500.00 USD: price" in d for d in details) and any("agreed 1500.00" in d for d in details)
