"""Idempotent writes (the store's semantics, after Stripe and the IETF Idempotency-Key draft): every write carries
an ``Idempotency-Key``; the first request under a key (per client) runs and its answer is stored with the
sha256 of its method, path and body; a replay gets that same answer back (``Idempotent-Replayed: true``), the same
key on another request is refused (422), and a replay while the first is still running waits for it (409 if it
does not finish; one left unanswered by a crash is taken over after two minutes). A request that failed inside
the service (5xx) stores nothing, so its retry runs again: every chain instruction under it is keyed, and the
chain ignores a replayed key."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tokenclear.store.models import ApiRequest
from tokenclear.store.queries import utc
from tokenclear.store.store import Store

MAX_KEY = 100
WAIT_S = 30.0
ABANDONED = timedelta(minutes=2)  # a request still unanswered after this was cut off by a crash: its retry runs


class KeyProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def body_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise KeyProblem(400, "header Idempotency-Key is required on every write (a unique string per request, "
                              "reused only to retry the same request)")
    if len(key) > MAX_KEY or not key.isprintable():
        raise KeyProblem(400, f"header Idempotency-Key: at most {MAX_KEY} printable characters")
    return key


def stored_answer(store: Store, *, actor: str, key: str, method: str, path: str,
                  body: bytes) -> tuple[int, dict] | None:
    """The answer stored under ``key`` for this very request, if there is one (a replay is answered without
    waiting for a turn to write); 422 when the key was used for another request; None when it must run (or is
    still running: :func:`run_once` waits for it)."""
    with store.session() as session:
        found = session.scalar(select(ApiRequest).where(ApiRequest.actor == actor, ApiRequest.key == key))
        if found is None:
            return None
        if found.body_hash != body_hash(method, path, body):
            raise KeyProblem(422, f"Idempotency-Key '{key}' was first used for {found.method} {found.path} with "
                                  "another body: use a new key for a new request")
        return None if found.status_code is None else (found.status_code, found.response)


def run_once(store: Store, *, actor: str, key: str, method: str, path: str, body: bytes,
             handler: Callable[[], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """(status, answer, replayed): ``handler``'s answer the first time, the stored one after."""
    digest = body_hash(method, path, body)
    deadline = time.monotonic() + WAIT_S
    while True:
        with store.session() as session:
            found = session.scalar(select(ApiRequest).where(ApiRequest.actor == actor, ApiRequest.key == key))
            if found is None:
                try:
                    with session.begin_nested():
                        session.add(ApiRequest(actor=actor, key=key, method=method, path=path, body_hash=digest,
                                               created_at=datetime.now(UTC)))
                except IntegrityError:  # the same key arrived at once twice: look again
                    continue
                break
            if found.body_hash != digest:
                raise KeyProblem(422, f"Idempotency-Key '{key}' was first used for {found.method} {found.path} with "
                                      "another body: use a new key for a new request")
            if found.status_code is not None:
                return found.status_code, found.response, True
            if utc(found.created_at) < datetime.now(UTC) - ABANDONED:  # its process died before it answered
                session.delete(found)
                continue
        if time.monotonic() > deadline:
            raise KeyProblem(409, f"the first request under Idempotency-Key '{key}' is still running: retry later")
        time.sleep(0.05)
    try:
        status, answer = handler()
    except BaseException:
        with store.session() as session:
            session.execute(delete(ApiRequest).where(ApiRequest.actor == actor, ApiRequest.key == key))
        raise
    with store.session() as session:
        row = session.scalar(select(ApiRequest).where(ApiRequest.actor == actor, ApiRequest.key == key))
        row.status_code, row.response = status, answer
    return status, answer, False
