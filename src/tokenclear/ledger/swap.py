"""Cross-chain atomic swap with hashed time-locks: asset on chain A against cash on chain B.

The initiator (who knows the secret) locks first with the longer timelock; the responder locks
second with a shorter one, so that after the initiator claims on B (revealing the secret), the
responder still has ``safety_s`` seconds to claim on A. A plan whose ordering breaks this is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tokenclear.errors import LedgerError
from tokenclear.ledger.contract import Contract
from tokenclear.ledger.ledger import MAX_UINT, Ledger


@dataclass(frozen=True)
class SwapPlan:
    initiator_timelock: int  # unix seconds, on the initiator's lock (chain A)
    responder_timelock: int  # unix seconds, on the responder's lock (chain B)
    hashlock: bytes


def plan_swap(now_a: int, now_b: int, hashlock: bytes, *, initiator_window_s: int = 48 * 3600,
              responder_window_s: int = 24 * 3600, safety_s: int = 6 * 3600) -> SwapPlan:
    """Timelocks for both legs; refuses a responder window that does not end ``safety_s`` before the
    initiator's (clocks of the two chains taken as they are)."""
    plan = SwapPlan(now_a + initiator_window_s, now_b + responder_window_s, hashlock)
    if plan.responder_timelock + safety_s > plan.initiator_timelock:
        raise LedgerError(f"unsafe swap: the responder's lock expires at {plan.responder_timelock}, less than "
                          f"{safety_s} s before the initiator's at {plan.initiator_timelock}")
    return plan


def new_secret() -> tuple[bytes, bytes]:
    """(secret, sha256 hashlock)."""
    secret = secrets.token_bytes(32)
    return secret, hashlib.sha256(secret).digest()


def lock(ledger: Ledger, symbol: str, sender: str, receiver: str, units: int, hashlock: bytes,
         timelock: int) -> bytes:
    """Lock ``units`` of ``symbol`` in the ledger's HTLC; returns the lock id."""
    token = ledger.token(symbol)
    token.send("approve", ledger.htlc.address, MAX_UINT, sender=sender)
    receipt = ledger.htlc.send("lock", token.address, receiver, int(units), hashlock, int(timelock), sender=sender)
    (event,) = ledger.htlc.events(receipt, "Locked")
    return event.args["lock_id"]


def revealed_secret(htlc: Contract, lock_id: bytes) -> bytes | None:
    """The secret a claim published on this chain, read from its Claimed events."""
    for event in htlc.history("Claimed"):
        if event.args["lock_id"] == lock_id:
            return event.args["secret"]
    return None
