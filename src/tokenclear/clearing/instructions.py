"""Every instruction to the chain, recorded under its idempotency key before it is sent and confirmed
after: a crash at any point leaves it pending in the store, and :meth:`Instructions.recover` sends it
again from its stored parameters; the contracts treat a replayed key as a no-op, so nothing is paid
twice and nothing is lost.

Fault injection for the crash tests and the campaign lives here too, at the two instruction boundaries
(before and after the send)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Literal

import structlog

from tokenclear.clearing.interfaces import Clock, LedgerPort, StorePort
from tokenclear.errors import TokenclearError
from tokenclear.ledger.ledger import Floor, Payment
from tokenclear.store.models import Instruction

log = structlog.get_logger("tokenclear.instructions")

#: What the workflow sends the chain; each kind can be sent again from its stored parameters.
InstructionKind = Literal["set_asset", "settle_payments", "release", "declare_default", "set_requirements"]


class WorkflowError(TokenclearError):
    """An instruction the workflow cannot carry out (unknown account, negative amount, ...)."""


class Instructions:
    """Record, send, confirm; and recover what a crash left pending."""

    def __init__(self, store: StorePort, ledger: LedgerPort, clock: Clock) -> None:
        self.store, self.ledger, self.clock = store, ledger, clock

    def execute(self, key: str, kind: InstructionKind, params: dict) -> dict:
        """Record, send, confirm. A replay of a confirmed key returns the first result."""
        now = self.clock.now()
        with self.store.session() as session:
            recorded = self.store.record(session, key=key, kind=kind, params=params, now=now)
            if not recorded.created and recorded.instruction.status == "confirmed":
                return recorded.instruction.result
            instruction_id = recorded.instruction.id
        failpoint("before-send", kind)
        result = self._send(key, kind, params)
        failpoint("after-send", kind)
        with self.store.session() as session:
            row = session.get(Instruction, instruction_id)
            row.status, row.result, row.updated_at = "confirmed", result, self.clock.now()
        log.info("instruction confirmed", key=key, kind=kind, **result)
        return result

    def recover(self) -> int:
        """Send again every instruction left pending by a crash; returns how many."""
        pending = self.store.in_flight()
        for instruction in pending:
            self.execute(instruction.key, instruction.kind, instruction.params)
        return len(pending)

    def _send(self, key: str, kind: InstructionKind, params: dict) -> dict:
        ledger = self.ledger
        if kind == "set_asset":
            receipt = ledger.set_asset(params["symbol"], haircut_bps=params["haircut_bps"],
                                       price_e8=params["price_e8"], eligible=params["eligible"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "settle_payments":
            legs = [Payment(payer, receiver, int(units)) for payer, receiver, units in params["legs"]]
            receipts = ledger.settle_payments(key, legs)
            return {"tx": [r.tx_hash for r in receipts], "block": receipts[-1].block if receipts else None}
        if kind == "release":
            receipt = ledger.release(key, bytes.fromhex(params["onchain_id"][2:]), params["symbol"], params["units"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "declare_default":
            account = bytes.fromhex(params["onchain_id"][2:])
            if ledger.is_defaulted(account):  # already declared: replay
                return {"tx": None, "block": ledger.block_number()}
            receipt = ledger.declare_default(account)
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "set_requirements":
            floors = [Floor(bytes.fromhex(onchain[2:]), int(floor), bytes.fromhex(committed[2:]))
                      for onchain, floor, committed, _ in params["floors"]]
            receipts = ledger.set_requirements(key, floors)
            return {"tx": [r.tx_hash for r in receipts], "block": receipts[-1].block if receipts else None}
        raise WorkflowError(f"unknown instruction kind '{kind}'")


FAILPOINT_ENV = "TOKENCLEAR_FAILPOINT"
#: Fault injection in process (the crash campaign): called at every instruction boundary.
failpoint_hook: Callable[[str, str], None] | None = None
_boundaries = 0


def failpoint(stage: str, kind: str) -> None:
    """Fault injection for crash tests: ``TOKENCLEAR_FAILPOINT=after-send:settle_payments`` kills the process
    (SIGKILL, no clean-up) at that point of that instruction kind; ``TOKENCLEAR_FAILPOINT=at:N`` at the N-th
    instruction boundary (before or after a send) of any kind."""
    wanted = os.environ.get(FAILPOINT_ENV)
    if wanted is not None:
        if wanted.startswith("at:"):
            global _boundaries
            _boundaries += 1
            if _boundaries == int(wanted[3:]):
                os.kill(os.getpid(), signal.SIGKILL)
        elif wanted == f"{stage}:{kind}":
            os.kill(os.getpid(), signal.SIGKILL)
    if failpoint_hook is not None:
        failpoint_hook(stage, kind)
