"""Start and stop a throw-away anvil node (foundry's dev chain, installed by ``npm install``) on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tokenclear.errors import ChainUnavailable
from tokenclear.local_ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def anvil_binary() -> Path:
    """``TOKENCLEAR_ANVIL``, else the checkout's ``node_modules/.bin/anvil``, else anvil on PATH."""
    candidates = [os.environ.get("TOKENCLEAR_ANVIL"), str(REPO_ROOT / "node_modules" / ".bin" / "anvil"),
                  shutil.which("anvil")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise ChainUnavailable("anvil not found: run `npm install` in the checkout (package.json pins "
                           "@foundry-rs/anvil) or set TOKENCLEAR_ANVIL")


@dataclass(frozen=True)
class AnvilNode:
    url: str
    chain_id: int
    funder_key: str  # a development key anvil generated for this run; never logged
    role_keys: tuple[str, ...] = ()  # four more funded development keys (one per other role of a deployment)


@contextmanager
def anvil(chain_id: int = 31337, start_time: int | None = None) -> Iterator[AnvilNode]:
    """A fresh anvil on a free loopback port for the duration of the ``with`` block."""
    binary = anvil_binary()
    with tempfile.TemporaryDirectory(prefix="tokenclear-anvil-") as tmp:
        config = Path(tmp) / "node.json"
        port = free_port()
        args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id),
                "--config-out", str(config), "--silent", "--accounts", "6",
                # keep no past states: without this anvil writes them under ~/.foundry/anvil/tmp (GBs a
                # test session) and a killed node never removes them
                "--prune-history"]
        if start_time is not None:
            args += ["--timestamp", str(start_time)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not (_answers(port) and config.exists() and config.stat().st_size > 0):
                if proc.poll() is not None:
                    raise ChainUnavailable(f"anvil exited: {proc.stderr.read().decode()[-500:]}")
                if time.monotonic() > deadline:
                    raise ChainUnavailable(f"anvil did not answer on port {port} within 30 s")
                time.sleep(0.05)
            keys = json.loads(config.read_text())["private_keys"]
            yield AnvilNode(f"http://127.0.0.1:{port}", chain_id, keys[0], tuple(keys[2:6]))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
