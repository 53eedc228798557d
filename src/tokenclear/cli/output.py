"""The output contract of every command (documented in ``docs/output.md``).

* JSON: one object ``{"tokenclear": {"version", "command"}, "metadata": {...}, "warnings": [...],
  "rows": [...]}`` plus command-specific sections. The metadata holds the run's parameters (as-of,
  method, confidence, MPOR, lookback, scenario count, currency, ...) and ``inputs``: the path and
  SHA-256 of every input file (a folder: of the files read from it, in name order).
* CSV: the same rows with the same columns and the same value text, after a preamble of ``#`` lines
  (``# tokenclear <version> <command>``, ``# <key>: <value>`` for each metadata field, ``# warning: ...``);
  read it with ``pandas.read_csv(path, comment="#")``.
* Parquet (``margin --format parquet --out FILE``, for large books): the same rows as typed columns,
  money as ``decimal128``; the JSON's ``tokenclear``, ``metadata`` and ``warnings`` in the file's key-value
  metadata under ``tokenclear``.
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
            columns = self.columns()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([cell(row.get(key)) for key in columns] for row in self.rows)
        return buffer.getvalue()

    def columns(self) -> list[str]:
        """Every row key, in first-seen order (a row without one has it empty)."""
        return list(dict.fromkeys(key for row in self.rows for key in row))

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` encoded, indented by 2 (:func:`_fast_json`)."""
        document = {"tokenclear": {"version": __version__, "command": self.command}, "metadata": self.metadata,
                    "warnings": list(self.warnings), "rows": self.rows, **self.sections}
        return _fast_json(document, indent=True)

    def to_parquet(self, out: Path) -> None:
        """The rows as a Parquet file (:meth:`arrow_table`), the header in its key-value metadata."""
        import orjson
        import pyarrow.parquet as pq

        header = {"tokenclear": {"version": __version__, "command": self.command}, "metadata": plain(self.metadata),
                  "warnings": list(self.warnings)}
        table = self.arrow_table().replace_schema_metadata({"tokenclear": orjson.dumps(header)})
        pq.write_table(table, out)

    def arrow_table(self):
        """The rows as a pyarrow table: a column per key, typed (money ``decimal128``, text ``string``); a
        column pyarrow cannot type (mixed kinds) as its CSV text."""
        import pyarrow as pa

        columns = {}
        for key in self.columns():
            values = [row.get(key) for row in self.rows]
            first = next((value for value in values if value is not None), None)
            try:
                if isinstance(first, Decimal):  # money: cents, in a type wide enough for any amount
                    columns[key] = pa.array(values, type=pa.decimal128(38, 2))
                    continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                pass  # not all cents (or not all Decimal): inferred below
            try:
                columns[key] = pa.array([plain_scalar(value) for value in values])
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                columns[key] = pa.array([None if value is None else cell(value) for value in values], pa.string())
        return pa.table(columns)


def _json_default(value: Any) -> Any:
    """orjson's fallback: the contract's form of what it does not encode itself."""
    if isinstance(value, Decimal):
        return str(value)
    return plain(value)


def plain_scalar(value: Any) -> Any:
    """A cell for a typed column: Decimal, numbers, text and dates as they are, numpy scalars as Python's."""
    if hasattr(value, "item") and not isinstance(value, Decimal):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def plain(value: Any) -> Any:
    """``value`` as JSON the contract allows: Decimal as its string, big integers as strings, dates ISO,
    numpy scalars as Python numbers, non-finite floats as null."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int):
        return str(value) if abs(value) > MAX_SAFE_INTEGER else int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
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
    """One CSV cell: the JSON text of the value's plain form, without quotes around strings."""
    kind = type(value)
    if kind is str:
        return value
    if kind is Decimal:
        return str(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else ""
    if kind is int:
        return str(value)  # beyond 2^53 the contract's string, with the same digits
    value = plain(value)
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
    stems, default every CSV or Parquet file below it), each file's name and bytes in name order."""
    hasher = hashlib.sha256()
    if path.is_dir():
        wanted = None if names is None else set(names)
        for one in sorted(path.rglob("*")):
            if one.suffix in (".csv", ".parquet") and one.is_file() and (wanted is None or one.stem in wanted):
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

    from tokenclear.cli.app import fail, stderr, write_bytes, write_text
    from tokenclear.errors import InputError

    if output == "json":
        write_bytes(report.to_json_bytes(), out)
    elif output == "parquet":
        if out is None:
            raise fail(InputError("Parquet is a binary file: give --out FILE.parquet", field="--format"))
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            report.to_parquet(out)
        except OSError as error:
            raise fail(InputError(f"cannot write ({error.strerror}: {error.filename})", path=out)) from None
        stderr.print(f"wrote {out}")
    elif output == "csv":
        text = report.to_csv()
        write_text(text[:-1] if text.endswith("\n") else text, out)
    elif table is not None:
        table(report)
    else:
        sys.stdout.write(report.to_csv())
    for warning in report.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")


class RowStream:
    """A report written as its rows arrive (a distributed run): JSON, CSV or Parquet, to a temporary file
    beside ``out`` that is renamed into place only when complete, so a failed run leaves no partial file.

    What is known before the rows (the metadata, the warnings so far) comes first: JSON's ``tokenclear``
    header, CSV's ``#`` preamble; what is known only after them (the account count, the total, a partition's
    warnings) comes last: JSON's ``metadata``, ``warnings`` and sections follow ``rows``, CSV ends with ``#``
    lines, Parquet keeps it all in its key-value metadata."""

    def __init__(self, command: str, fmt: str, out: Path, metadata: dict[str, Any], warnings: list[str]) -> None:
        import tempfile

        self.command, self.fmt, self.out = command, fmt, out
        self.metadata, self.warnings = dict(metadata), list(warnings)
        out.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".part", delete=False)
        self.temp = Path(handle.name)
        self.handle = handle
        self.columns: list[str] | None = None
        self.schema = None
        self.writer = None
        self.count = 0
        if fmt == "json":
            head = {"version": __version__, "command": command}
            handle.write(b'{"tokenclear": ' + _fast_json(head) + b', "rows": [')
        elif fmt == "csv":
            handle.write(f"# tokenclear {__version__} {command}\n".encode())
            self._comments(plain(self.metadata), self.warnings)

    def _comments(self, metadata: dict[str, Any], warnings: list[str]) -> None:
        text = "".join(f"# {key}: {cell(value)}\n" for key, value in metadata.items())
        text += "".join(f"# warning: {' '.join(warning.split())}\n" for warning in warnings)
        self.handle.write(text.encode())

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.fmt == "json":
            body = b",\n".join(_fast_json(row) for row in rows)
            self.handle.write((b"\n" if self.count == 0 else b",\n") + body)
        elif self.fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            if self.columns is None:
                self.columns = list(dict.fromkeys(key for row in rows for key in row))
                writer.writerow(self.columns)
            extra = [key for row in rows for key in row if key not in self.columns]
            if extra:
                raise ValueError(f"column '{extra[0]}' first appears after the header was written")
            writer.writerows([cell(row.get(key)) for key in self.columns] for row in rows)
            self.handle.write(buffer.getvalue().encode())
        else:
            self._parquet(rows)
        self.count += len(rows)

    def _parquet(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.schema is None:
            self.schema = Report(self.command, rows).arrow_table().schema
            self.writer = pq.ParquetWriter(self.handle, self.schema)
        columns = [pa.array([plain_scalar(row.get(field.name)) for row in rows], type=field.type)
                   if not (pa.types.is_decimal(field.type) or pa.types.is_string(field.type))
                   else pa.array([row.get(field.name) for row in rows], type=field.type)  # Decimal, str as they are
                   for field in self.schema]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))

    def close(self, metadata: dict[str, Any], warnings: list[str], sections: dict[str, Any]) -> None:
        """Write what came last and put the file in place."""
        import os

        self.metadata.update(metadata)
        late = [one for one in warnings if one not in self.warnings]
        self.warnings += late
        if self.fmt == "json":
            tail = {"metadata": self.metadata, "warnings": self.warnings, **sections}
            self.handle.write(b"\n], " + _fast_json(tail)[1:] + b"\n")
        elif self.fmt == "csv":
            self._comments(plain(metadata), late)
        else:
            import orjson
            import pyarrow as pa

            if self.writer is None:
                self.schema = pa.schema([])
                import pyarrow.parquet as pq

                self.writer = pq.ParquetWriter(self.handle, self.schema)
            header = {"tokenclear": {"version": __version__, "command": self.command},
                      "metadata": plain(self.metadata), "warnings": self.warnings, **plain(sections)}
            self.writer.add_key_value_metadata({"tokenclear": orjson.dumps(header)})
            self.writer.close()
        self.handle.close()
        os.replace(self.temp, self.out)

    def abort(self) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
        except Exception:  # a half-written Parquet footer: the file goes anyway
            pass
        self.handle.close()
        self.temp.unlink(missing_ok=True)


def _fast_json(value: Any, *, indent: bool = False) -> bytes:
    """``value`` as the contract's JSON: orjson over it as it is, or over :func:`plain`'s walk when it meets what
    only that knows (a non-string key, an integer of 2^53 or more, which the contract writes as a string)."""
    import orjson

    option = orjson.OPT_INDENT_2 if indent else 0
    try:
        return orjson.dumps(value, default=_json_default, option=option | orjson.OPT_STRICT_INTEGER)
    except TypeError:
        return orjson.dumps(plain(value), option=option)
