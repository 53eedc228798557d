"""The margin-call state machine: every allowed path, every refused event, deadlines to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tokenclear.clearing import calls

T0 = datetime(2023, 3, 11, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize("path, final", [
    (["cure"], calls.CURED),
    (["acknowledge", "partial", "partial", "cure"], calls.CURED),
    (["escalate", "partial", "cure"], calls.CURED),
    (["acknowledge", "escalate", "default"], calls.DEFAULTED),
])
def test_paths_through_the_lifecycle(path, final):
    state = calls.ISSUED
    for event in path:
        state = calls.apply(state, event)
    assert state == final


@pytest.mark.parametrize("state, event", [
    (calls.CURED, "partial"), (calls.DEFAULTED, "cure"), (calls.ISSUED, "default"), (calls.ESCALATED, "acknowledge"),
])
def test_refused_events(state, event):
    with pytest.raises(calls.CallStateError, match=f"cannot take '{event}'"):
        calls.apply(state, event)


def test_deadline_then_grace_around_the_clock():
    saturday = T0  # 2023-03-11 is a Saturday: deadlines run on weekends too
    assert calls.due_event(calls.ISSUED, issued_at=saturday, now=saturday + timedelta(minutes=59)) is None
    assert calls.due_event(calls.ISSUED, issued_at=saturday, now=saturday + timedelta(hours=1)) == "escalate"
    assert calls.due_event(calls.ESCALATED, issued_at=saturday, now=saturday + timedelta(hours=1)) is None
    assert calls.due_event(calls.ESCALATED, issued_at=saturday, now=saturday + timedelta(hours=2)) == "default"
    assert calls.due_event(calls.CURED, issued_at=saturday, now=saturday + timedelta(days=1)) is None
    with pytest.raises(ValueError):
        calls.due_event(calls.ISSUED, issued_at=saturday, now=datetime(2023, 3, 12))


def test_payment_event():
    assert calls.payment_event(Decimal("0.00")) == "cure" and calls.payment_event(Decimal("-0.01")) == "partial"
