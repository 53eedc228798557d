"""The output contract of every command (documented in ``docs/output.md``).

* JSON: one object ``{"tokenclear": {"version", "command"}, "metadata": {...}, "warnings": [...],
  "rows": [...]}`` plus command-specific sections. The metadata holds the run's parameters (as-of,
  method, confidence, MPOR, lookback, scenario count, currency, ...) and ``inputs``: the path and
  SHA-256 of every input file (a folder: of the files read from it, in name order).
* CSV: the same rows with the same columns and the same value text, after a preamble of ``#`` lines
  (``# tokenclear <version> <command>``, ``# <key>: <value>`` for each metadata field, ``# warning: ...``);
  read it with ``pandas.read_csv(path, comment="#")``.
* Table: for people; figures rounded for the eye, warnings after it on stderr.

Money is a decimal string everywhere (``"1234.50"``), never a float; an integer beyond 2^53 (token base
units) is a string; ratios, rates and p-values are JSON numbers. Warnings go to stderr in every format too.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenclear import __version__

MAX_SAFE_INTEGER = 2**53


@dataclass
class Report:
    command: str
    rows: list[dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)  # JSON only: further named sections

    def to_json(self) -> dict[str, Any]:
        return {"tokenclear": {"version": __version__, "command": self.command}, "metadata": plain(self.metadata),
                "warnings": list(self.warnings), "rows": [plain(row) for row in self.rows],
                **{name: plain(value) for name, value in self.sections.items()}}

    def to_csv(self) -> str:
        buffer = io.StringIO()
        buffer.write(f"# tokenclear {__version__} {self.command}\n")
        for key, value in plain(self.metadata).items():
            buffer.write(f"# {key}: {cell(value)}\n")
        for warning in self.warnings:
            buffer.write(f"# warning: {' '.join(warning.split())}\n")
        if self.rows:
            columns = list(dict.fromkeys(key for row in self.rows for key in row))
            writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({key: cell(value) for key, value in plain(row).items()})
        return buffer.getvalue()


def plain(value: Any) -> Any:
    """``value`` as JSON the contract allows: Decimal as its string, big integers as strings, dates ISO,
    numpy scalars as Python numbers, non-finite floats as null."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int):
        return str(value) if abs(value) > MAX_SAFE_INTEGER else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars and datetime64
        return plain(value.item())
    raise TypeError(f"no JSON form for {type(value).__name__}")


def cell(value: Any) -> str:
    """One CSV cell: the JSON text of a plain value, without quotes around strings."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return json.dumps(value)


def digest(path: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """Path and SHA-256 of an input file; of a folder, over the files read from it (``names``: their
    stems, default every CSV below it), each file's name and bytes in name order."""
    hasher = hashlib.sha256()
    if path.is_dir():
        wanted = None if names is None else set(names)
        for one in sorted(path.rglob("*.csv")):
            if wanted is None or one.stem in wanted:
                hasher.update(one.relative_to(path).as_posix().encode() + b"\0" + one.read_bytes())
    elif path.is_file():
        hasher.update(path.read_bytes())
    else:
        return {"path": str(path), "sha256": None}
    return {"path": str(path), "sha256": hasher.hexdigest()}


def emit(report: Report, output: str, table: Callable[[Report], None] | None = None,
         out: Path | None = None) -> None:
    """Write ``report`` in ``output`` (table, json or csv) to stdout or ``out``; warnings also on stderr."""
    import sys

    from tokenclear.cli.app import stderr, write_text

    if output == "json":
        write_text(json.dumps(report.to_json(), indent=2), out)
    elif output == "csv":
        text = report.to_csv()
        write_text(text[:-1] if text.endswith("\n") else text, out)
    elif table is not None:
        table(report)
    else:
        sys.stdout.write(report.to_csv())
    for warning in report.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")
