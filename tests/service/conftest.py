"""A served book on a real HTTP server (uvicorn on a loopback port, in a thread of the test process), its
scheduler driven tick by tick on a replay clock the tests move; clients logged in with the credentials the
service wrote."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from tests.db import postgres_server  # noqa: F401  (fixture)
from tokenclear.local_ports import free_port
from tokenclear.service.app import build
from tokenclear.service.clock import ReplayClock
from tokenclear.settings import Settings

START = datetime(2023, 3, 10, tzinfo=UTC)
MEMBERS = 6


@dataclass
class Served:
    url: str
    service: object
    scheduler: object
    clock: ReplayClock
    secrets: dict[str, str]
    _tokens: dict

    def client(self, client_id: str) -> httpx.Client:
        """An HTTP client holding ``client_id``'s access token."""
        if client_id not in self._tokens:
            answer = httpx.post(f"{self.url}/oauth/token", data={"grant_type": "client_credentials",
                                                                 "client_id": client_id,
                                                                 "client_secret": self.secrets[client_id]})
            answer.raise_for_status()
            self._tokens[client_id] = answer.json()["access_token"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self._tokens[client_id]}"},
                            timeout=60)

    def run_to(self, moment: datetime) -> dict:
        """Move the clock to ``moment`` and run everything due."""
        self.clock.hold(moment)
        return self.scheduler.tick()

    def token(self, client_id: str) -> str:
        self.client(client_id).close()
        return self._tokens[client_id]


def serve(settings: Settings, *, database: str | None = None, rpc_url: str | None = None, members: int = MEMBERS):
    clock = ReplayClock(START, 1.0)
    app, service, scheduler = build(settings, database=database, rpc_url=rpc_url, clock=clock, members=members,
                                    schedule=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    clients = json.loads(service.credentials.read_text())["clients"] if service.credentials else {}
    served = Served(f"http://127.0.0.1:{port}", service, scheduler, clock,
                    {client: entry["secret"] for client, entry in clients.items()}, {})
    return served, server, thread


@pytest.fixture(scope="session")
def _books():
    """The served books of this test process, one per test module, kept to the end of the session (xdist may
    interleave modules, which would tear a module-scoped book down and build it again)."""
    books: dict[str, tuple] = {}
    yield books
    for _, server, thread in books.values():
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(request, _books, tmp_path_factory):
    """A new book of six members at 2023-03-10, run through the SVB weekend's cycles to Monday 2023-03-13; M05's
    positions tripled before Monday's cycle, which calls it. One book per test module; its tests may run in any
    order (and on any xdist worker): each makes the state it needs."""
    name = request.module.__name__
    if name not in _books:
        one, server, thread = serve(Settings(work_dir=tmp_path_factory.mktemp("served")))
        for day in (11, 12):
            one.run_to(START.replace(day=day) + timedelta(seconds=5))
        grow(one, "M05-HOUSE", 3)
        one.run_to(START.replace(day=13) + timedelta(seconds=5))
        _books[name] = (one, server, thread)
    return _books[name][0]


def grow(one: Served, account: str, factor: int) -> None:
    """The clearing house multiplies an account's positions by ``factor`` (they count from the next cycle)."""
    with one.client("ccp") as ccp:
        rows = [{"account": account, "instrument": p["instrument"], "quantity": factor * p["quantity"]}
                for p in ccp.get("/api/positions", params={"account": account}).json()]
        answer = ccp.post("/api/positions", json={"positions": rows}, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 200, answer.text


def cycle_now(one: Served) -> str:
    """An end-of-day cycle run now on the operator's order (``POST /api/cycles``); its key."""
    with one.client("ccp") as ccp:
        answer = ccp.post("/api/cycles", json={"kind": "scheduled"}, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 200, answer.text
        return answer.json()["key"]
