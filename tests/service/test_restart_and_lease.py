"""Who runs the schedule, and what a restart does: the lease lets one instance of the service at a time run the
cycle (SQLite and PostgreSQL, tested with racing threads and with two services on one book); ``tokenclear serve``
killed (SIGKILL) in the middle of a cycle's settlement and started again on the same book and node completes the
instruction in flight, pays nothing twice and reconciles clean; an embedded book cannot be served twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.db import database_url  # noqa: F401  (fixture)
from tests.service.conftest import START, serve
from tokenclear.errors import ConfigurationError, InputError
from tokenclear.ledger.anvil import anvil
from tokenclear.local_ports import free_port, wait_serving
from tokenclear.service.app import build
from tokenclear.service.clock import ReplayClock
from tokenclear.service.lease import Leases
from tokenclear.settings import Settings
from tokenclear.store.models import Cycle, Instruction
from tokenclear.store.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def test_one_instance_holds_the_lease_until_it_expires(database_url):  # noqa: F811
    store = open_store(database_url)
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    a, b = (Leases(store, name, ttl=timedelta(seconds=10), now=lambda: now[0]) for name in ("a", "b"))
    assert a.acquire() and not b.acquire()
    now[0] += timedelta(seconds=6)
    assert a.acquire() and not b.acquire()  # renewed
    now[0] += timedelta(seconds=11)  # a stopped renewing
    assert b.acquire() and not a.acquire()
    b.release()
    assert a.acquire()


def test_racing_instances_take_the_lease_once(database_url):  # noqa: F811
    store = open_store(database_url)
    start = threading.Barrier(6)
    won = []

    def race(name: str) -> None:
        leases = Leases(store, name)
        start.wait()
        if leases.acquire():
            won.append(name)

    threads = [threading.Thread(target=race, args=(f"i{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


def test_an_embedded_book_is_not_served_twice_nor_given_new_members(tmp_path):
    settings = Settings(work_dir=tmp_path)
    one, server, thread = serve(settings, members=3)
    server.should_exit = True
    thread.join(10)
    with pytest.raises(ConfigurationError, match="embedded EVM"):
        build(settings, database=one.service.database, rpc_url=None, clock=ReplayClock(START, 1.0), schedule=False)
    with pytest.raises(InputError, match="--members"):  # a book that has its members is not given others
        build(settings, database=one.service.database, rpc_url=None, clock=ReplayClock(START, 1.0), members=4,
              schedule=False)


def rpc_settings(node, folder: Path) -> dict[str, str]:
    keys = dict(zip(("TOKENCLEAR_ADMIN_KEY", "TOKENCLEAR_PARAMETER_KEY", "TOKENCLEAR_DEFAULT_MANAGER_KEY",
                     "TOKENCLEAR_TOKEN_AGENT_KEY"), node.role_keys, strict=True))
    return {"TOKENCLEAR_PRIVATE_KEY": node.funder_key, "TOKENCLEAR_WORK_DIR": str(folder), **keys}


@pytest.mark.anvil
@pytest.mark.integration
def test_two_services_on_one_book_run_each_cycle_once(tmp_path, monkeypatch):
    with anvil() as node:
        for name, value in rpc_settings(node, tmp_path).items():
            monkeypatch.setenv(name, value)
        url = f"sqlite:///{tmp_path / 'book.db'}"
        first, server, thread = serve(Settings(), database=url, rpc_url=node.url, members=3)
        try:
            clock = ReplayClock(START, 1.0)
            _, second, second_scheduler = build(Settings(), database=url, rpc_url=node.url, clock=clock,
                                                schedule=False)
            assert second.recovered == 0 and second.warnings == []  # the custodian's keys sign for every member
            due = START + timedelta(days=1, seconds=5)
            first.clock.hold(due)
            clock.hold(due)
            results = {}
            go = threading.Barrier(2)

            def tick(name, scheduler):
                go.wait()
                results[name] = scheduler.tick()

            threads = [threading.Thread(target=tick, args=("first", first.scheduler)),
                       threading.Thread(target=tick, args=("second", second_scheduler))]
            for one in threads:
                one.start()
            for one in threads:
                one.join()
            ran = [name for name, done in results.items() if done["cycles"]]
            assert len(ran) == 1, results
            with first.service.store.session() as session:
                keys = [c.key for c in session.scalars(select(Cycle).where(Cycle.kind == "scheduled"))]
            assert keys == ["scheduled:2023-03-11T00:00:00+00:00"]
            # the other instance, attached to the same book, serves members with the keys it derived
            with first.client("member-M01") as m01:
                account = m01.get("/api/accounts").json()[1]["id"]
            assert second.workflow.reconcile() == []
            assert account.startswith("M01")
        finally:
            server.should_exit = True
            thread.join(10)


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    executable = Path(sys.executable).with_name("tokenclear")
    return subprocess.Popen([str(executable), "serve", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.anvil
@pytest.mark.integration
def test_serve_killed_mid_settlement_resumes_on_restart(tmp_path):
    with anvil() as node:
        env = rpc_settings(node, tmp_path)
        url = f"sqlite:///{tmp_path / 'book.db'}"
        common = ["--database", url, "--rpc-url", node.url, "--clock", "replay"]
        # the book opens at 23:59:50 and the clock runs an hour a second: the first cycle (midnight) is due at
        # once, and the process is killed (SIGKILL) just after its variation-margin batch was sent
        killed = _serve([*common, "--members", "3", "--from", "2023-03-10T23:59:50Z", "--speed", "3600", "--port",
                         str(free_port())],
                        {**env, "TOKENCLEAR_FAILPOINT": "after-send:settle_payments"})
        assert killed.wait(timeout=300) == -signal.SIGKILL, killed.stderr.read()[-3000:]
        store = open_store(url)
        assert [one.kind for one in store.in_flight()] == ["settle_payments"]
        port = free_port()
        again = _serve([*common, "--from", "2023-03-10T23:59:50Z", "--speed", "1", "--port", str(port)], env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_serving(base, again)
            secrets = json.loads(next(tmp_path.glob("*.credentials.json")).read_text())["clients"]
            token = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials", "client_id": "ccp",
                                                            "client_secret": secrets["ccp"]["secret"]}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            deadline = time.monotonic() + 120
            while True:  # the scheduler's first tick completes the cycle the kill left open
                status = httpx.get(f"{base}/api/status", headers=headers).json()
                if status["last_cycle"]["kind"] == "scheduled" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status["recovered_instructions"] >= 1
            assert status["last_cycle"]["key"] == "scheduled:2023-03-11T00:00:00+00:00", status
            assert status["schedule"]["last_error"] is None
            assert store.in_flight() == []
            with store.session() as session:
                batches = [i for i in session.scalars(select(Instruction).where(Instruction.kind == "settle_payments"))]
            assert len(batches) == 1 and batches[0].status == "confirmed"
            done = httpx.post(f"{base}/api/chain/reconcile", headers={**headers, "Idempotency-Key": "after-restart"})
            assert done.json() == {"clean": True, "breaks": []}
        finally:
            again.send_signal(signal.SIGTERM)
            again.wait(timeout=60)


@pytest.mark.parametrize(("args", "named"), [
    (["--clock", "wall", "--speed", "10"], "--speed"),
    (["--clock", "wall", "--from", "2023-03-10T00:00Z"], "--from"),
    (["--clock", "replay"], "--from"),
    (["--clock", "replay", "--from", "2023-03-10"], "--from"),
    (["--clock", "hourly"], "--clock"),
    (["--clock", "wall"], "--clock"),  # the shipped prices end 2023-08-29: no closes for yesterday
])
def test_serve_refuses_settings_it_cannot_honour(tmp_path, args, named):
    done = subprocess.run([str(Path(sys.executable).with_name("tokenclear")), "serve", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TOKENCLEAR_WORK_DIR": str(tmp_path)})
    assert done.returncode != 0 and f"error: {named}:" in done.stderr, done.stderr
    assert not list(tmp_path.glob("*.db"))  # refused before anything was made

