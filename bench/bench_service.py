"""Load on ``tokenclear serve`` over loopback for 60 s (bounded; it stops by itself): 200 simulated members post
pledges (each sent twice under its Idempotency-Key, as a client retrying after a lost answer would), answer their
margin calls and read their calls and accounts, while a price feed posts quotes every second; the replay clock
runs through a midnight cycle during the run. Prints p50/p99 latency per endpoint and requests per second, then
checks that no instruction was lost or applied twice (each account's T-bill units in the book moved by exactly
what its accepted pledges and cures sent) and that the book equals the chain. Then the what-if margin p99 for a
100-position portfolio. Run: make bench (or python bench/bench_service.py [members] [seconds]).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

from tokenclear.local_ports import free_port, wait_serving

MEMBERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
ROOT = Path(__file__).resolve().parents[1]
PLEDGE_UNITS = 1_000_000  # one T-bill token (6 decimals): small, so no member runs out
WHAT_IF_TARGET_S = 0.100


def start_server(folder: Path, port: int) -> subprocess.Popen:
    executable = Path(sys.executable).with_name("tokenclear")
    # the book opens at 23:59 and the replay runs a minute a second: the midnight cycle falls inside the run
    args = [str(executable), "serve", "--port", str(port), "--members", str(MEMBERS), "--clock", "replay",
            "--from", "2023-03-11T23:59:00Z", "--speed", "60", "--tick", "0.5"]
    return subprocess.Popen(args, cwd=folder, env={**os.environ, "TOKENCLEAR_WORK_DIR": str(folder)},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def token(url: str, client: str, secret: str) -> str:
    answer = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": client,
                                                    "client_secret": secret})
    answer.raise_for_status()
    return answer.json()["access_token"]


class Load:
    def __init__(self, url: str) -> None:
        self.url = url
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.sent: dict[str, int] = defaultdict(int)  # account -> T-bill units of accepted pledges and cures
        self.replays_differing = 0

    async def timed(self, client: httpx.AsyncClient, name: str, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.perf_counter()
        answer = await client.request(method, path, **kwargs)
        self.latency[name].append(time.perf_counter() - started)
        if answer.status_code >= 500:
            self.errors[name] += 1
        return answer

    async def member(self, client: httpx.AsyncClient, account: str, stop: float, rng: random.Random) -> None:
        while time.monotonic() < stop:
            await self.timed(client, "GET /api/calls", "GET", "/api/calls", params={"state": "issued"})
            calls = (await self.timed(client, "GET /api/calls", "GET", "/api/calls",
                                      params={"account": account})).json()
            for call in calls:
                if call["state"] in ("issued", "acknowledged", "partially_cured", "escalated"):
                    answer = await self.timed(client, "POST /api/calls/{key}/answer", "POST",
                                              f"/api/calls/{call['key']}/answer", json={"symbol": "TBILL"},
                                              headers={"Idempotency-Key": uuid.uuid4().hex})
                    if answer.status_code == 200 and answer.json().get("pledged"):
                        self.sent[account] += int(answer.json()["pledged"]["units"])
            if rng.random() < 0.5:
                await self.timed(client, "GET /api/accounts", "GET", "/api/accounts")
            key = {"Idempotency-Key": uuid.uuid4().hex}
            body = {"account": account, "symbol": "TBILL", "units": PLEDGE_UNITS}
            first = await self.timed(client, "POST /api/instructions/pledge", "POST", "/api/instructions/pledge",
                                     json=body, headers=key)
            again = await self.timed(client, "POST /api/instructions/pledge (replay)", "POST",
                                     "/api/instructions/pledge", json=body, headers=key)
            if first.status_code == 200:
                self.sent[account] += PLEDGE_UNITS
                if again.json() != first.json():
                    self.replays_differing += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5))

    async def feed(self, client: httpx.AsyncClient, stop: float, rng: random.Random) -> None:
        levels = {"eth_usd": 1480.0, "btc_usd": 20600.0, "usdc_usd": 0.97}
        while time.monotonic() < stop:
            quotes = [{"series": name, "price": f"{level * (1 + rng.uniform(-0.002, 0.002)):.6f}"}
                      for name, level in levels.items()]
            await self.timed(client, "POST /api/prices", "POST", "/api/prices", json={"quotes": quotes},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
            await asyncio.sleep(1.0)


async def run(url: str, clients: dict, accounts: dict[str, str]) -> tuple[Load, float, int]:
    load = Load(url)
    limits = httpx.Limits(max_connections=MEMBERS + 10)
    members = [m for m in sorted(accounts)]
    sessions = {}
    for m in members:
        access = token(url, f"member-{m}", clients[f"member-{m}"]["secret"])
        sessions[m] = httpx.AsyncClient(base_url=url, timeout=120, limits=limits,
                                        headers={"Authorization": f"Bearer {access}"})
    feed = httpx.AsyncClient(base_url=url, timeout=120,
                             headers={"Authorization": f"Bearer {token(url, 'feed', clients['feed']['secret'])}"})
    started = time.monotonic()
    stop = started + SECONDS
    tasks = [load.member(sessions[m], accounts[m], stop, random.Random(i)) for i, m in enumerate(members)]
    await asyncio.gather(load.feed(feed, stop, random.Random(7)), *tasks)
    elapsed = time.monotonic() - started
    for client in [*sessions.values(), feed]:
        await client.aclose()
    return load, elapsed, sum(len(v) for v in load.latency.values())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        opened = time.perf_counter()
        server = start_server(folder, port)
        try:
            wait_serving(url, server)
            print(f"{MEMBERS} members: book opened and serving in {time.perf_counter() - opened:.1f} s")
            clients = json.loads(next(folder.glob("*.credentials.json")).read_text())["clients"]
            ccp = httpx.Client(base_url=url, timeout=300,
                               headers={"Authorization": f"Bearer {token(url, 'ccp', clients['ccp']['secret'])}"})
            houses = {a["member"]: a["id"] for a in ccp.get("/api/accounts").json() if a["segregation"] == "HOUSE"}
            before = tbills(ccp)
            load, elapsed, requests = asyncio.run(run(url, clients, houses))
            print(f"\n{requests:,} requests in {elapsed:.1f} s: {requests / elapsed:,.1f} requests per second "
                  f"(one uvicorn worker, 2 cores shared with the load)")
            print(f"{'endpoint':<42}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'5xx':>6}")
            for name, values in sorted(load.latency.items()):
                print(f"{name:<42}{len(values):>8,}{1000 * statistics.median(values):>10.1f}"
                      f"{1000 * percentile(values, 0.99):>10.1f}{load.errors[name]:>6}")
            status = ccp.get("/api/status").json()
            print(f"\nservice clock at the end {status['now']}; cycles run {status['schedule']['cycles_run']}; "
                  f"last cycle {status['last_cycle']['key']}; scheduler error: {status['schedule']['last_error']}")
            after = tbills(ccp)
            lost = doubled = 0
            for account in set(before) | set(after):
                moved = after.get(account, 0) - before.get(account, 0)
                sent = load.sent.get(account, 0)
                lost += moved < sent
                doubled += moved > sent
            reconciled = ccp.post("/api/chain/reconcile", headers={"Idempotency-Key": "bench-end"}).json()
            pledges = sum(1 for _ in load.latency["POST /api/instructions/pledge"])
            print(f"pledges sent {pledges:,} (each replayed once under its key; {load.replays_differing} replays "
                  f"answered differently); accounts with units lost: {lost}, applied twice: {doubled}; "
                  f"book == chain: {reconciled['clean']} ({len(reconciled['breaks'])} breaks)")
            what_if(ccp)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def tbills(ccp: httpx.Client) -> dict[str, int]:
    out = {}
    for account in ccp.get("/api/collateral").json()["accounts"]:
        out[account["account"]] = sum(int(t["units"]) for t in account["tokens"] if t["symbol"] == "TBILL")
    return out


def what_if(ccp: httpx.Client) -> None:
    instruments = ["BTCZ23", "ETHZ23", "ESZ23", "MBTZ23"]
    rows = [{"instrument": instruments[i % 4], "quantity": (i % 7) - 3} for i in range(100)]
    ccp.post("/api/margin/what-if", json={"positions": rows}).raise_for_status()  # the scenarios, built once
    times = []
    for _ in range(200):
        started = time.perf_counter()
        ccp.post("/api/margin/what-if", json={"positions": rows}).raise_for_status()
        times.append(time.perf_counter() - started)
    p99 = percentile(times, 0.99)
    print(f"what-if margin, 100 positions over HTTP: p50 {1000 * statistics.median(times):.1f} ms, "
          f"p99 {1000 * p99:.1f} ms (target {1000 * WHAT_IF_TARGET_S:.0f} ms: {p99 / WHAT_IF_TARGET_S:.2f}x)")


if __name__ == "__main__":
    main()
