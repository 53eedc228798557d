"""Refused instructions fail cleanly (issue 14, high 4): a revert is a failed instruction with its reason, never
re-sent by itself; a pending one is re-validated before it is sent after a restart (a release that has become
unsafe expires unsent; one the vault already carried out is confirmed); an operator lists, retries and expires
them. And keys are bound to caller and function on chain (medium 6): a member cannot squat the CCP's key."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.clearing.test_workflow import run_demo
from tokenclear.clearing import calls, instructions
from tokenclear.clearing.campaign import SimulatedCrash
from tokenclear.clearing.instructions import InstructionFailed
from tokenclear.errors import TransactionReverted
from tokenclear.store.models import Account, Cycle, Holding, Instruction, MarginCall, Requirement

FROZEN = b"sanctions-screening".ljust(32, b"\0")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    demo, _ = run_demo(f"sqlite:///{tmp_path_factory.mktemp('states') / 'book.db'}", members=6)
    return demo


def covered_account(demo) -> tuple[Account, int]:
    """An account with more than 1,000 USD of cover, no open call, and its TMMF units."""
    with demo.store.session() as session:
        latest = {}
        for row in session.scalars(select(Requirement).order_by(Requirement.cycle_id.desc())):
            latest.setdefault(row.account_id, row)
        busy = {c.account_id for c in session.scalars(select(MarginCall)) if c.state != calls.CURED}
        rich = next(r for r in latest.values() if r.coverage > 1000 and r.account_id not in busy)
        account = session.get(Account, rich.account_id)
        session.expunge(account)
        return account, int(session.get(Holding, (account.id, "TMMF")).units)


def status(demo, key: str) -> tuple[str, dict]:
    with demo.store.session() as session:
        row = session.scalar(select(Instruction).where(Instruction.key == key))
        return row.status, row.result


def wallet_of(demo, account: Account) -> str:
    return demo.wallets()[int(account.member_id[1:]) - 1]


def test_a_release_the_chain_refuses_fails_with_its_reason_and_recovery_goes_on(demo):
    workflow, ledger = demo.workflow, demo.ledger
    account, _ = covered_account(demo)
    wallet = wallet_of(demo, account)
    ledger.token("TMMF").send("freeze", wallet, True, FROZEN, sender=ledger.roles.token_agent)
    try:
        with pytest.raises(InstructionFailed, match="frozen"):
            workflow.request_release("rel:frozen", account.id, "TMMF", 10**6)
        state, result = status(demo, "rel:frozen")
        assert state == "failed" and "frozen" in result["reason"]
        with pytest.raises(InstructionFailed, match="failed"):  # a replay gets the first answer, sends nothing
            workflow.request_release("rel:frozen", account.id, "TMMF", 10**6)
        assert len(workflow.recover()) == 0  # a failed instruction is not pending: a restart does not raise
        with pytest.raises(instructions.WorkflowError, match="no failed instruction"):
            workflow.retry("rel:none")
    finally:
        ledger.token("TMMF").send("freeze", wallet, False, FROZEN, sender=ledger.roles.token_agent)
    held = ledger.held(bytes.fromhex(account.onchain_id[2:]), "TMMF")
    workflow.retry("rel:frozen")  # the operator cleared the cause: re-validated, then sent
    assert status(demo, "rel:frozen")[0] == "confirmed"
    assert ledger.held(bytes.fromhex(account.onchain_id[2:]), "TMMF") == held - 10**6
    assert workflow.reconcile() == []


def crash_in_release(workflow, key: str, account: Account, units: int, stage: str = "before-send") -> None:
    """The process dies at ``stage`` of the release (before-send: recorded, not sent; after-send: mined)."""
    def die(at: str, kind: str) -> None:
        if (at, kind) == (stage, "release"):
            raise SimulatedCrash

    instructions.failpoint_hook = die
    try:
        with pytest.raises(SimulatedCrash):
            workflow.request_release(key, account.id, "TMMF", units)
    finally:
        instructions.failpoint_hook = None


def test_a_pending_release_that_became_unsafe_expires_unsent_on_recovery(demo):
    workflow, ledger = demo.workflow, demo.ledger
    account, tmmf = covered_account(demo)
    onchain = bytes.fromhex(account.onchain_id[2:])
    crash_in_release(workflow, "rel:stale", account, 10**6)
    assert status(demo, "rel:stale")[0] == "pending"
    with demo.store.session() as session:  # while the process was down the account got a margin call
        cycle = session.scalar(select(Cycle).order_by(Cycle.at.desc()))
        session.add(MarginCall(key="call:meanwhile", account_id=account.id, cycle_id=cycle.id,
                               amount=Decimal("50.00"), currency="USD", issued_at=demo.clock.now(),
                               deadline=demo.clock.now(), state=calls.ISSUED, cured_amount=Decimal("0.00")))
    held = ledger.held(onchain, "TMMF")
    done = workflow.recover()
    assert done.expired == ["rel:stale"] and done.sent == []
    state, result = status(demo, "rel:stale")
    assert state == "expired" and "open margin call" in result["reason"]
    assert ledger.held(onchain, "TMMF") == held  # never sent
    assert not ledger.carried_out("rel:stale", "release")
    with demo.store.session() as session:
        session.get(MarginCall, session.scalar(select(MarginCall.id).where(MarginCall.key == "call:meanwhile")))\
            .state = calls.CURED
    assert tmmf >= held


def test_a_release_the_vault_carried_out_before_the_crash_is_confirmed_not_expired(demo):
    workflow, ledger = demo.workflow, demo.ledger
    account, _ = covered_account(demo)
    onchain = bytes.fromhex(account.onchain_id[2:])

    crash_in_release(workflow, "rel:mined", account, 10**6, stage="after-send")
    held = ledger.held(onchain, "TMMF")
    assert ledger.carried_out("rel:mined", "release") and status(demo, "rel:mined")[0] == "pending"
    with demo.store.session() as session:  # a call now would refuse a new release, not this one: it happened
        cycle = session.scalar(select(Cycle).order_by(Cycle.at.desc()))
        session.add(MarginCall(key="call:after", account_id=account.id, cycle_id=cycle.id, amount=Decimal("5.00"),
                               currency="USD", issued_at=demo.clock.now(), deadline=demo.clock.now(),
                               state=calls.ISSUED, cured_amount=Decimal("0.00")))
    assert workflow.recover().sent == ["rel:mined"]
    assert status(demo, "rel:mined")[0] == "confirmed" and ledger.held(onchain, "TMMF") == held  # once
    with demo.store.session() as session:
        session.get(MarginCall, session.scalar(select(MarginCall.id).where(MarginCall.key == "call:after")))\
            .state = calls.CURED
    assert workflow.reconcile() == []


def test_an_operator_expires_a_stuck_instruction(demo):
    workflow = demo.workflow
    account, _ = covered_account(demo)
    crash_in_release(workflow, "rel:operator", account, 10**6)
    workflow.expire("rel:operator", "member withdrew the request")
    assert status(demo, "rel:operator") == ("expired", {"reason": "member withdrew the request"})
    assert len(workflow.recover()) == 0
    with pytest.raises(InstructionFailed, match="expired: member withdrew"):
        workflow.request_release("rel:operator", account.id, "TMMF", 10**6)
    with pytest.raises(instructions.WorkflowError, match="no pending or failed"):
        workflow.expire("rel:operator", "again")


def test_a_member_cannot_squat_the_key_the_ccp_will_use(demo):
    """Keys are bound to caller and function on chain: the member claims, in its own pledge, the key the CCP
    will release under; the CCP's release under that key still goes through. The same caller reusing a key in
    the same function with other parameters is still refused, and the same call again is a no-op replay."""
    workflow, ledger = demo.workflow, demo.ledger
    account, _ = covered_account(demo)
    wallet = wallet_of(demo, account)
    onchain = bytes.fromhex(account.onchain_id[2:])
    ledger.issue("TMMF", wallet, 2 * 10**6)
    ledger.pledge("rel:squat", onchain, "TMMF", 10**6, wallet)  # the member squats the key first
    assert ledger.carried_out("rel:squat", "pledge", wallet) and not ledger.carried_out("rel:squat", "release")
    held = ledger.held(onchain, "TMMF")
    workflow.request_release("rel:squat", account.id, "TMMF", 10**6)
    assert ledger.held(onchain, "TMMF") == held - 10**6 and status(demo, "rel:squat")[0] == "confirmed"
    with pytest.raises(TransactionReverted, match="key reused with other parameters"):
        ledger.pledge("rel:squat", onchain, "TMMF", 2 * 10**6, wallet)
    ledger.pledge("rel:squat", onchain, "TMMF", 10**6, wallet)  # the same pledge again: nothing moves
    assert ledger.held(onchain, "TMMF") == held - 10**6
    assert workflow.reconcile() == []
