"""A throw-away PostgreSQL cluster on a loopback port (tests, demos): Debian's server binaries,
``initdb`` into a temporary folder, ``pg_ctl`` start, removed on exit. As root, the cluster runs
as the ``postgres`` system user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tokenclear.errors import ConfigurationError
from tokenclear.local_ports import free_port

START_TIMEOUT_S = 60


def server_bin() -> Path:
    """Folder of ``initdb`` and ``pg_ctl`` (newest installed major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise ConfigurationError("PostgreSQL server binaries not found under /usr/lib/postgresql; install Debian's "
                                 "'postgresql' package (make test does)")
    return Path(found[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty cluster (database ``postgres``, trust auth)."""
    binaries = server_bin()
    folder = Path(tempfile.mkdtemp(prefix="tokenclear-pg-"))
    data, sockets = folder / "data", folder / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    try:
        subprocess.run(_as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                  "-E", "UTF8", "--no-sync"]), check=True, timeout=START_TIMEOUT_S, **quiet)
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t",
                                  str(START_TIMEOUT_S), "-l", str(folder / "log"), "start"]), check=True,
                       timeout=START_TIMEOUT_S + 10, **quiet)
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           timeout=START_TIMEOUT_S, **quiet)
    except subprocess.CalledProcessError as error:
        raise ConfigurationError(f"throw-away PostgreSQL failed: {error.stderr.strip()}") from error
    finally:
        shutil.rmtree(folder, ignore_errors=True)
