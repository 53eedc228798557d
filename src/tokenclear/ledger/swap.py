"""Cross-chain atomic swap with hashed time-locks: asset on chain A against cash on chain B.

The initiator (who knows the secret) locks first with the longer window; the responder locks second with a
shorter one, so that after the initiator claims on B (revealing the secret), the responder still has ``safety_s``
seconds to claim on A. Two chains' clocks need not agree (one may run hours behind), so nothing compares a
timestamp of one chain with one of the other: each window is a duration on its own chain's clock, and before
the responder locks it reads the initiator's lock on A and checks its terms and the time it has left on A's
clock against its own window plus the safety margin.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tokenclear.errors import LedgerError
from tokenclear.ledger.contract import Contract
from tokenclear.ledger.ledger import MAX_UINT, Ledger

LOCKED = 1  # htlc.vy's state of a lock that is neither claimed nor refunded


@dataclass(frozen=True)
class SwapPlan:
    """The two windows (seconds, each on its own chain's clock) and the safety margin between them."""

    hashlock: bytes
    initiator_window_s: int
    responder_window_s: int
    safety_s: int


def plan_swap(hashlock: bytes, *, initiator_window_s: int = 48 * 3600, responder_window_s: int = 24 * 3600,
              safety_s: int = 6 * 3600) -> SwapPlan:
    """The windows of both legs; refuses a responder window that does not end ``safety_s`` before the
    initiator's (durations only: :func:`responder_lock` checks the actual time left on chain A)."""
    if responder_window_s + safety_s > initiator_window_s:
        raise LedgerError(f"unsafe swap: the responder's {responder_window_s} s window does not end {safety_s} s "
                          f"before the initiator's {initiator_window_s} s")
    return SwapPlan(hashlock, initiator_window_s, responder_window_s, safety_s)


def new_secret() -> tuple[bytes, bytes]:
    """(secret, sha256 hashlock)."""
    secret = secrets.token_bytes(32)
    return secret, hashlib.sha256(secret).digest()


def lock(ledger: Ledger, symbol: str, sender: str, receiver: str, units: int, hashlock: bytes,
         window_s: int) -> bytes:
    """Lock ``units`` of ``symbol`` in the ledger's HTLC for ``window_s`` seconds of that chain's own clock;
    returns the lock id."""
    token = ledger.token(symbol)
    token.send("approve", ledger.htlc.address, MAX_UINT, sender=sender)
    timelock = ledger.chain.timestamp() + int(window_s)
    receipt = ledger.htlc.send("lock", token.address, receiver, int(units), hashlock, timelock, sender=sender)
    (event,) = ledger.htlc.events(receipt, "Locked")
    return event.args["lock_id"]


def initiator_lock(ledger_a: Ledger, plan: SwapPlan, symbol: str, sender: str, receiver: str,
                   units: int) -> bytes:
    return lock(ledger_a, symbol, sender, receiver, units, plan.hashlock, plan.initiator_window_s)


def responder_lock(ledger_b: Ledger, plan: SwapPlan, symbol: str, sender: str, receiver: str, units: int, *,
                   ledger_a: Ledger, lock_a: bytes, expect_symbol: str, expect_receiver: str,
                   expect_units: int) -> bytes:
    """The responder's lock on chain B, placed only once the initiator's lock on chain A is checked: locked, on
    the agreed token, receiver, amount and hashlock, with at least the responder's window plus the safety
    margin left on A's own clock."""
    token, _, to, amount, hashlock, timelock, state = ledger_a.htlc.call("locks", lock_a)
    wanted = {"token": ledger_a.token(expect_symbol).address.lower(), "receiver": expect_receiver.lower(),
              "amount": int(expect_units), "hashlock": plan.hashlock}
    found = {"token": str(token).lower(), "receiver": str(to).lower(), "amount": int(amount),
             "hashlock": bytes(hashlock)}
    if int(state) != LOCKED:
        raise LedgerError(f"unsafe swap: the initiator's lock 0x{lock_a.hex()} is not locked (state {state})")
    for name, value in wanted.items():
        if found[name] != value:
            raise LedgerError(f"unsafe swap: the initiator's lock has {name} {found[name]!r}, not {value!r}")
    left_a = int(timelock) - ledger_a.chain.timestamp()
    if left_a < plan.responder_window_s + plan.safety_s:
        raise LedgerError(f"unsafe swap: the initiator's lock has {left_a} s left on its chain, fewer than the "
                          f"responder's {plan.responder_window_s} s window plus {plan.safety_s} s")
    return lock(ledger_b, symbol, sender, receiver, units, plan.hashlock, plan.responder_window_s)


def revealed_secret(htlc: Contract, lock_id: bytes) -> bytes | None:
    """The secret a claim published on this chain, read from its Claimed events."""
    for event in htlc.history("Claimed"):
        if event.args["lock_id"] == lock_id:
            return event.args["secret"]
    return None
