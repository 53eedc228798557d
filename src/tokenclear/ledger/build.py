"""Compile the Vyper contracts into one artefact file, reproducibly.

``python -m tokenclear.ledger.build`` (or ``tokenclear ledger build``) rewrites
``artifacts.json`` from ``contracts/*.vy``. The artefact records the sha256 of every source it was
built from, so a contract changed without a rebuild is detected (``stale_sources``) and fails a test.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
ARTIFACTS_FILE = Path(__file__).resolve().parent / "artifacts.json"

#: Deployable contracts (the other ``.vy`` files are modules they import).
CONTRACTS = ("identity_registry", "collateral_token", "fund_share", "bill_token", "vault", "settlement",
             "htlc", "bid_bond")


def _search_paths(extra: tuple[Path, ...] = ()) -> list[Path]:
    import snekmate

    return [CONTRACTS_DIR, *extra, Path(next(iter(snekmate.__path__))).parent]


def compile_file(path: Path, *, search: tuple[Path, ...] = ()) -> dict:
    """ABI and creation bytecode of one contract file."""
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    path = Path(path).resolve()
    bundle = FilesystemInputBundle(_search_paths((path.parent, *search)))
    file_input = bundle.load_file(path)
    out = compile_from_file_input(file_input, input_bundle=bundle, output_formats=["abi", "bytecode"])
    return {"abi": out["abi"], "bytecode": out["bytecode"]}


def source_digests() -> dict[str, str]:
    """sha256 of every contract source (modules and interfaces included)."""
    files = sorted(p for p in CONTRACTS_DIR.iterdir() if p.suffix in (".vy", ".vyi"))
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def build_all() -> dict:
    return {
        "compiler": {"vyper": version("vyper"), "snekmate": version("snekmate")},
        "sources": source_digests(),
        "contracts": {name: compile_file(CONTRACTS_DIR / f"{name}.vy") for name in CONTRACTS},
    }


def write_artifacts(path: Path = ARTIFACTS_FILE) -> Path:
    path.write_text(json.dumps(build_all(), indent=1, sort_keys=True) + "\n")
    return path


def load_artifacts(path: Path = ARTIFACTS_FILE) -> dict:
    return json.loads(path.read_text())


def stale_sources(path: Path = ARTIFACTS_FILE) -> list[str]:
    """Contract sources whose digest differs from the one the artefacts were built from."""
    built = load_artifacts(path)["sources"]
    now = source_digests()
    return sorted(name for name in built.keys() | now.keys() if built.get(name) != now.get(name))


if __name__ == "__main__":
    print(write_artifacts())
