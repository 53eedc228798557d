"""A free loopback port for a throw-away server (an anvil node, a PostgreSQL cluster)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
