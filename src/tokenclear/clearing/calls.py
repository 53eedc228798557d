"""The margin-call lifecycle (pure): states, the events that move them, deadlines.

    issued -> acknowledged -> partially_cured -> cured
       \\            \\               \\
        +------------+---------------+--> escalated (deadline passed) -> cured | defaulted

A call is cured when the account's coverage is back at or above zero; a payment that leaves a
shortfall makes it partially cured. At the deadline (default one hour after issue, around the
clock) an uncured call is escalated; at the end of the grace period an escalated call defaults.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, get_args

from tokenclear.errors import TokenclearError

CallState = Literal["issued", "acknowledged", "partially_cured", "cured", "escalated", "defaulted"]
ISSUED, ACKNOWLEDGED, PARTIALLY_CURED, CURED, ESCALATED, DEFAULTED = get_args(CallState)
STATES = get_args(CallState)
OPEN_STATES = (ISSUED, ACKNOWLEDGED, PARTIALLY_CURED, ESCALATED)
FINAL_STATES = (CURED, DEFAULTED)
DEADLINE = timedelta(hours=1)
GRACE = timedelta(hours=1)

TRANSITIONS: dict[str, dict[str, str]] = {
    ISSUED: {"acknowledge": ACKNOWLEDGED, "partial": PARTIALLY_CURED, "cure": CURED, "escalate": ESCALATED},
    ACKNOWLEDGED: {"partial": PARTIALLY_CURED, "cure": CURED, "escalate": ESCALATED},
    PARTIALLY_CURED: {"partial": PARTIALLY_CURED, "cure": CURED, "escalate": ESCALATED},
    ESCALATED: {"partial": ESCALATED, "cure": CURED, "default": DEFAULTED},
    CURED: {},
    DEFAULTED: {},
}


class CallStateError(TokenclearError):
    """An event that the call's state does not allow (e.g. curing a defaulted call)."""


def apply(state: str, event: str) -> str:
    """The state after ``event``; :class:`CallStateError` if the state does not allow it."""
    try:
        allowed = TRANSITIONS[state]
    except KeyError:
        raise CallStateError(f"unknown call state '{state}'") from None
    if event not in allowed:
        choices = ", ".join(allowed) or "none (final)"
        raise CallStateError(f"a call that is {state} cannot take '{event}' (allowed: {choices})")
    return allowed[event]


def payment_event(coverage_after: Decimal) -> str:
    """``cure`` when the payment brings coverage (USD) to zero or above, else ``partial``."""
    return "cure" if coverage_after >= 0 else "partial"


def due_event(state: str, *, issued_at: datetime, now: datetime, deadline: timedelta = DEADLINE,
              grace: timedelta = GRACE) -> str | None:
    """``escalate`` once the deadline has passed, ``default`` once the grace has too; else None."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if state in (ISSUED, ACKNOWLEDGED, PARTIALLY_CURED) and now >= issued_at + deadline:
        return "escalate"
    if state == ESCALATED and now >= issued_at + deadline + grace:
        return "default"
    return None
