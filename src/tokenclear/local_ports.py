"""A free loopback port for a throw-away server (an anvil node, a PostgreSQL cluster, the service), and a wait
until a started service answers."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_serving(url: str, process, seconds: float = 300.0) -> None:
    """Wait until the service started as ``process`` (a ``subprocess.Popen``) answers at ``url``; raises
    RuntimeError if it exits first (with the end of its stderr, when piped) or does not answer in time."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = process.stderr.read()[-3000:] if process.stderr else ""
            raise RuntimeError(f"the service exited with {process.returncode}: {tail}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service did not answer at {url} within {seconds:.0f} s")
