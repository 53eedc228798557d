"""Margin calls in the book: issued from a cycle's coverage, moved by the member's collateral and its
ISO 20022 answers, escalated at the deadline and defaulted after the grace period (the default declared
on chain). The lifecycle's rules are the pure :mod:`tokenclear.clearing.calls`."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import select

from tokenclear.clearing import calls, coverage, drivers
from tokenclear.clearing.collateral_count import CollateralCount
from tokenclear.clearing.coverage import CENT
from tokenclear.clearing.instructions import Instructions, WorkflowError
from tokenclear.clearing.interfaces import Clock, StorePort
from tokenclear.clearing.iso20022 import (
    CallMessage,
    margin_call_request,
    message_id,
    read_answer,
)
from tokenclear.store import queries
from tokenclear.store.models import Account, CallEvent, Cycle, MarginCall, Requirement
from tokenclear.store.queries import utc

log = structlog.get_logger("tokenclear.calls")


class CallDesk:
    def __init__(self, *, store: StorePort, clock: Clock, instructions: Instructions, count: CollateralCount,
                 threshold_usd: Decimal, deadline: timedelta, grace: timedelta, vault_address: str) -> None:
        self.store, self.clock, self.instructions, self.count = store, clock, instructions, count
        self.threshold_usd, self.deadline, self.grace = threshold_usd, deadline, grace
        self.vault_address = vault_address

    def issue(self, session, cycle: Cycle, at: datetime, account_id: str, cover: Decimal,
              why: dict[str, Decimal] | None = None) -> Decimal | None:
        """Call ``account_id``'s shortfall (``cover`` < 0, USD) unless it is below the threshold, the account
        already has an open call or is in default, or the cycle already called it; ``why``: the shortfall's
        change by driver, written with the call. Returns the amount called."""
        amount = coverage.call_amount(cover, self.threshold_usd)
        if amount is None or queries.open_call(session, account_id) is not None or queries.in_default(session,
                                                                                                    account_id):
            return None
        key = f"call:{cycle.key}:{account_id}"
        if queries.call_by_key(session, key) is not None:
            return None
        call = MarginCall(key=key, account_id=account_id, cycle_id=cycle.id, amount=amount, currency="USD",
                          issued_at=at, deadline=at + self.deadline, state=calls.ISSUED, cured_amount=Decimal("0.00"),
                          message_id=message_id(key))
        session.add(call)
        session.flush()
        detail = f"shortfall {amount} USD" + ("; drivers not measured: no previous cycle" if why is None else "")
        if why is not None:
            named = ", ".join(f"{name} {value:+}" for name, value in why.items() if value)
            detail += f"; main driver: {drivers.main_driver(why)} (since the last cycle: {named or 'no change'})"
        session.add(CallEvent(call_id=call.id, at=at, source="", target=calls.ISSUED, detail=detail))
        log.info("margin call issued", key=key, account=account_id, amount=str(amount))
        return amount

    def on_collateral(self, account_id: str) -> str | None:
        """After a member pledged (the book already synced): move the account's open call by its coverage."""
        now = self.clock.now()
        with self.store.session() as session:
            call = queries.open_call(session, account_id)
            if call is None:
                return None
            account = session.get(Account, account_id)
            required = session.get(Requirement, (call.cycle_id, account_id)).requirement
            cover = self.count.counted(session, [account], {account_id: required})[account_id] - required
            target = calls.apply(call.state, calls.payment_event(cover))
            call.cured_amount = max(call.amount + cover, Decimal("0.00")).quantize(CENT)
            if target == calls.CURED:
                call.cured_amount = call.amount
                call.settled_at = now
            session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=target,
                                  detail=f"coverage {cover} USD"))
            log.info("margin call moved", key=call.key, account=account_id, source=call.state, target=target)
            call.state = target
            return target

    def process_due(self) -> list[tuple[str, str]]:
        """Escalate calls past their deadline, default those past the grace (declared on chain); returns
        (call key, new state) for each call moved."""
        now = self.clock.now()
        moved, defaults = [], []
        with self.store.session() as session:
            for call in session.scalars(select(MarginCall).where(MarginCall.state.in_(calls.OPEN_STATES))):
                event = calls.due_event(call.state, issued_at=utc(call.issued_at), now=now, deadline=self.deadline,
                                        grace=self.grace)
                if event is None:
                    continue
                target = calls.apply(call.state, event)
                session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=target, detail=event))
                call.state = target
                moved.append((call.key, target))
                if target == calls.DEFAULTED:  # the instruction is recorded with the state, in one transaction:
                    account = session.get(Account, call.account_id)  # a crash before it is sent leaves it
                    params = {"onchain_id": account.onchain_id}  # pending, and recover() sends it
                    self.store.record(session, key=f"default:{account.id}", kind="declare_default", params=params,
                                      now=now)
                    defaults.append((f"default:{account.id}", params))
        for key, params in defaults:
            self.instructions.execute(key, "declare_default", params)
        return moved

    def call_message(self, key: str, *, clearing_house: str = "tokenclear CCP") -> bytes:
        return call_message(self.store, key, vault_address=self.vault_address, clearing_house=clearing_house)

    def receive_answer(self, data: bytes, *, source: str = "answer") -> str:
        return receive_answer(self.store, self.clock.now(), data, source=source)


def call_message(store: StorePort, key: str, *, vault_address: str, clearing_house: str = "tokenclear CCP") -> bytes:
    """The colr.003.001.05 MarginCallRequest of the call ``key`` (the collateral held at ``vault_address``)."""
    with store.session() as session:
        call = queries.call_by_key(session, key)
        if call is None:
            raise WorkflowError(f"no margin call '{key}'")
        if call.message_id is None:  # a call written to the book by another tool than the call desk
            call.message_id = message_id(call.key)
        account = session.get(Account, call.account_id)
        return margin_call_request(CallMessage(call.message_id, clearing_house, account.member_id, account.id,
                                               account.segregation, vault_address, utc(call.issued_at),
                                               utc(call.deadline), call.amount, call.currency))


def receive_answer(store: StorePort, now: datetime, data: bytes, *, source: str = "answer") -> str:
    """A member's answer: a colr.004 agreeing an amount acknowledges the call (an amount short of the call is
    recorded as such); a colr.009 dispute is recorded with the resolution asked for, and the call keeps running
    to its deadline. Returns the call's state."""
    answer = read_answer(data, source=source)
    with store.session() as session:
        call = session.scalar(select(MarginCall).where(MarginCall.message_id == answer.call_id))
        if call is None:
            raise WorkflowError(f"{source}: answers unknown margin call '{answer.call_id}'")
        if answer.account is not None and answer.account != call.account_id:
            raise WorkflowError(f"{source}: names account '{answer.account}', the call is on '{call.account_id}'")
        if answer.disputed is not None:
            session.add(CallEvent(call_id=call.id, at=now, source=call.state, target=call.state,
                                  detail=f"disputed {answer.disputed} {call.currency} ({answer.message} "
                                         f"{answer.transaction_id}): {answer.reason or 'no resolution given'}"))
            return call.state
        short = "" if answer.agreed >= call.amount else f", {call.amount - answer.agreed} short of the call"
        session.add(CallEvent(call_id=call.id, at=now, source=call.state,
                              target=calls.ACKNOWLEDGED if call.state == calls.ISSUED else call.state,
                              detail=f"agreed {answer.agreed} {call.currency}{short} ({answer.message} "
                                     f"{answer.transaction_id})"))
        if call.state == calls.ISSUED:
            call.state = calls.apply(call.state, "acknowledge")
        return call.state
