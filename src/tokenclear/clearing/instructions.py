"""Every instruction to the chain, recorded under its idempotency key before it is sent and confirmed
after: a crash at any point leaves it pending in the store, and :meth:`Instructions.recover` sends it
again from its stored parameters; the contracts treat a replayed key as a no-op, so nothing is paid
twice and nothing is lost.

States: ``pending`` (recorded, perhaps sent), ``confirmed`` (mined; its result stored), ``failed`` (the chain
refused it: the revert reason is stored, the key is spent) and ``expired`` (left pending by a crash and found
no longer valid when the process came back: never sent again). A node that cannot be reached leaves the
instruction pending. Before a pending instruction is sent again it is re-validated (``recover``'s ``check``);
an operator lists and resolves the ones that need a decision (``tokenclear instructions``).

Fault injection for the crash tests and the campaign lives here too, at the two instruction boundaries
(before and after the send)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog

from tokenclear.clearing.interfaces import Clock, LedgerPort, StorePort
from tokenclear.errors import TokenclearError, TransactionReverted
from tokenclear.ledger.ledger import Floor, Payment
from tokenclear.store import queries
from tokenclear.store.models import Instruction

log = structlog.get_logger("tokenclear.instructions")

#: What the workflow sends the chain; each kind can be sent again from its stored parameters.
InstructionKind = Literal["set_asset", "settle_payments", "release", "declare_default", "set_requirements",
                          "open_account", "port", "seize", "apply_fund", "dvp"]


PENDING, CONFIRMED, FAILED, EXPIRED = "pending", "confirmed", "failed", "expired"


class WorkflowError(TokenclearError):
    """An instruction the workflow cannot carry out (unknown account, negative amount, ...)."""


class InstructionFailed(WorkflowError):
    """The instruction under this key failed or expired; its reason is stored with it."""


@dataclass(frozen=True)
class Recovery:
    """What :meth:`Instructions.recover` did with the instructions a crash left pending (their keys)."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent)


class Instructions:
    """Record, send, confirm; and recover what a crash left pending."""

    def __init__(self, store: StorePort, ledger: LedgerPort, clock: Clock) -> None:
        self.store, self.ledger, self.clock = store, ledger, clock

    def execute(self, key: str, kind: InstructionKind, params: dict) -> dict:
        """Record, send, confirm. A replay of a confirmed key returns the first result."""
        now = self.clock.now()
        with self.store.session() as session:
            recorded = self.store.record(session, key=key, kind=kind, params=params, now=now)
            status = recorded.instruction.status
            if not recorded.created and status == CONFIRMED:
                return recorded.instruction.result
            if not recorded.created and status in (FAILED, EXPIRED):  # a replay gets the first answer
                raise InstructionFailed(f"instruction '{key}' {status}: {recorded.instruction.result.get('reason')}")
            instruction_id = recorded.instruction.id
        failpoint("before-send", kind)
        try:
            result = self._send(key, kind, params)
        except TransactionReverted as error:  # refused by the chain: terminal, with its reason
            self._close(instruction_id, FAILED, {"reason": str(error)})
            log.warning("instruction failed", key=key, kind=kind, reason=str(error))
            raise InstructionFailed(f"instruction '{key}' failed: {error}") from None
        failpoint("after-send", kind)
        self._close(instruction_id, CONFIRMED, result)
        log.info("instruction confirmed", key=key, kind=kind, **result)
        return result

    def _close(self, instruction_id: int, status: str, result: dict) -> None:
        with self.store.session() as session:
            row = session.get(Instruction, instruction_id)
            row.status, row.result, row.updated_at = status, result, self.clock.now()

    def expire(self, key: str, reason: str) -> None:
        expire(self.store, key, reason, self.clock.now())

    def retry(self, key: str, check: Callable[[Instruction], str | None]) -> dict:
        """Send a failed instruction again once ``check`` finds it still valid (the operator cleared the cause)."""
        with self.store.session() as session:
            row = queries.instruction(session, key)
            if row is None or row.status != FAILED:
                raise WorkflowError(f"no failed instruction '{key}'")
            reason = check(row)
            if reason is not None:
                raise WorkflowError(f"instruction '{key}' is no longer valid: {reason}")
            row.status, row.updated_at = PENDING, self.clock.now()
            kind, params = row.kind, row.params
        return self.execute(key, kind, params)  # type: ignore[arg-type]

    def recover(self, check: Callable[[Instruction], str | None] = lambda _: None) -> Recovery:
        """Every instruction a crash left pending: re-validated by ``check`` (a reason = expire it, unsent), then
        sent again; one the chain refuses is marked failed and the others still go. An unreachable node stops
        the recovery (:class:`ChainUnavailable`), leaving the rest pending for the next restart."""
        done = Recovery()
        for instruction in self.store.in_flight():
            reason = check(instruction)
            if reason is not None:
                self._close(instruction.id, EXPIRED, {"reason": reason})
                log.warning("instruction expired", key=instruction.key, kind=instruction.kind, reason=reason)
                done.expired.append(instruction.key)
                continue
            try:
                self.execute(instruction.key, instruction.kind, instruction.params)  # type: ignore[arg-type]
            except InstructionFailed:
                done.failed.append(instruction.key)
            else:
                done.sent.append(instruction.key)
        return done

    def _send(self, key: str, kind: InstructionKind, params: dict) -> dict:
        ledger = self.ledger
        if kind == "set_asset":
            receipt = ledger.set_asset(params["symbol"], haircut_bps=params["haircut_bps"],
                                       price_e8=params["price_e8"], eligible=params["eligible"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "settle_payments":
            legs = [Payment(payer, receiver, int(units)) for payer, receiver, units in params["legs"]]
            receipts = ledger.settle_payments(key, legs, params.get("symbol", "TUSD"))
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
        if kind == "open_account":  # not keyed on chain: an account already open is the replay
            account = _account(params["onchain_id"])
            if ledger.is_open(account):
                return {"tx": None, "block": ledger.block_number()}
            receipt = ledger.open_account(account, params["wallet"], int(params["segregation"]))
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "port":
            receipt = ledger.port(key, _account(params["onchain_id"]), params["symbol"], int(params["units"]),
                                  _account(params["to_onchain_id"]))
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "seize":
            receipt = ledger.seize(key, _account(params["onchain_id"]), params["symbol"], int(params["units"]),
                                   params["receiver"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "apply_fund":
            receipt = ledger.apply_fund(key, _account(params["onchain_id"]), params["symbol"], int(params["units"]),
                                        _account(params["defaulted_onchain_id"]), params["receiver"])
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "dvp":
            receipt = ledger.dvp(key, params["asset"], params["seller"], int(params["units"]), params["cash"],
                                 params["buyer"], int(params["cash_units"]))
            return {"tx": receipt.tx_hash, "block": receipt.block}
        if kind == "set_requirements":
            floors = [Floor(bytes.fromhex(onchain[2:]), int(floor), bytes.fromhex(committed[2:]))
                      for onchain, floor, committed, _ in params["floors"]]
            receipts = ledger.set_requirements(key, floors)
            return {"tx": [r.tx_hash for r in receipts], "block": receipts[-1].block if receipts else None}
        raise WorkflowError(f"unknown instruction kind '{kind}'")


def _account(onchain_id: str) -> bytes:
    return bytes.fromhex(onchain_id[2:])


def expire(store: StorePort, key: str, reason: str, now) -> None:
    """Close a pending or failed instruction without sending it (again), with the operator's reason."""
    with store.session() as session:
        row = queries.instruction(session, key)
        if row is None or row.status not in (PENDING, FAILED):
            raise WorkflowError(f"no pending or failed instruction '{key}'")
        row.status, row.result, row.updated_at = EXPIRED, {"reason": reason}, now
    log.warning("instruction expired", key=key, reason=reason)


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
