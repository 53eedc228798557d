"""Columnar reading of large input files (CSV through pyarrow, or Parquet), validated whole and vectorised.

A file is read as columns, never row by row, and every check is a mask over a whole column: a missing
column, a row with the wrong number of fields, a value that is not a number, a whole number or an ISO date, a
missing value. The first offending row is found from the mask and named by its physical line (CSV: the header
is line 1, blank lines count; quoted fields may span lines) or its row (Parquet: the first data row is row 1).

Blank lines, and lines of nothing but commas and spaces, are skipped as :func:`tokenclear.csvfiles.read_rows`
skips them. Values are stripped of surrounding whitespace. Small reference files keep the row reader of
:mod:`tokenclear.csvfiles`; this is for the files that grow with the book (positions, prices).
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tokenclear.csvfiles import not_utf8
from tokenclear.errors import InputError

Kind = Literal["text", "number", "whole", "date"]
PARQUET_SUFFIXES = (".parquet", ".pq")
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_WHOLE = r"^[+-]?\d{1,15}(\.0*)?$"  # read exactly as int64; larger ones are refused below
_NOT_FINITE = r"(?i)^[+-]?(nan|inf|infinity)$"
_ISO_DAY = r"^\d{4}-\d{2}-\d{2}$"
_SOLID = np.ones(256, dtype=bool)
_SOLID[[32, 9, 13, 44]] = False  # a line of nothing but spaces, tabs, CRs and commas is blank
_BLANK_LINE = re.compile(rb"(?:\A|\n)[ \t\r,]*(?:\n|\Z)")
_THREADED_BYTES = 1 << 22  # pyarrow parses a file this large or larger on several threads


def shown(value: object, limit: int = 40) -> str:
    """A value as an error message quotes it: at most ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit - 12]}...({len(text):,} characters)"


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of an array of str: ``uniques`` in first-appearance order, ``uniques[codes] == values``.
    numpy's sort of the values as fixed-width str (pyarrow's encoding would import pandas, 0.4 s)."""
    text = np.asarray(values).astype(str)
    _, first, inverse = np.unique(text, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank[inverse.ravel()], np.asarray(values, dtype=object)[first[order]]


def positions_in(values: np.ndarray, names: list[str]) -> np.ndarray:
    """The index in ``names`` of each of ``values`` (-1 where absent): a binary search of the sorted names."""
    if not names:
        return np.full(len(values), -1, dtype=np.int64)
    known = np.asarray(names, dtype=object).astype(str)
    order = np.argsort(known, kind="stable")
    ranked = known[order]
    wanted = np.asarray(values).astype(str)
    at = np.minimum(np.searchsorted(ranked, wanted), ranked.size - 1)
    return np.where(ranked[at] == wanted, order[at], -1).astype(np.int64, copy=False)


def is_parquet(path: Path) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


@dataclass(frozen=True)
class Table:
    """Validated columns of one file: ``text`` as object arrays of stripped str, ``number`` float64 (finite),
    ``whole`` int64, ``date`` datetime64[D]; ``lines`` the line (CSV) or row (Parquet) of each row."""

    path: Path
    header: tuple[str, ...]
    columns: dict[str, np.ndarray]
    lines: np.ndarray

    def __len__(self) -> int:
        return int(self.lines.size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def error(self, message: str, row: int | None = None, field: str | None = None) -> InputError:
        """An :class:`InputError` naming the file and, for ``row`` (an index into the columns), its line."""
        if row is None:
            return InputError(message, path=self.path, field=field)
        where = int(self.lines[row])
        if is_parquet(self.path):
            return InputError(message, path=self.path, row=where, field=field)
        return InputError(message, path=self.path, line=where, field=field)

    def check(self, bad: np.ndarray, field: str | None, message) -> None:
        """Raise for the first row where ``bad`` holds; ``message(row)`` says what is wrong with it."""
        hits = np.flatnonzero(bad)
        if hits.size:
            raise self.error(message(int(hits[0])), int(hits[0]), field)


def read_table(path: Path, kinds: Mapping[str, Kind], *, optional: Mapping[str, Kind] | None = None,
               row_groups: tuple[int, ...] | None = None) -> Table:
    """The columns ``kinds`` (required) and ``optional`` (read when the header has them) of ``path``, CSV or
    Parquet by its suffix. A blank ``number``, ``whole`` or ``date`` is refused like any other bad value.
    ``row_groups``: only those row groups of a Parquet file (rows still named by their row in the file)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path)
    optional = dict(optional or {})
    if row_groups is not None:
        if not is_parquet(path):
            raise InputError("row groups are Parquet's: a CSV file is read whole", path=path)
        return _read_parquet(path, dict(kinds), optional, row_groups)
    reader = _read_parquet if is_parquet(path) else _read_csv
    return reader(path, dict(kinds), optional)


def read_tables(paths: list[Path], kinds: Mapping[str, Kind], *,
                optional: Mapping[str, Kind] | None = None) -> list[Table]:
    """:func:`read_table` of each of ``paths``, in order. The CSV files written alike (the same header line,
    ASCII, no quotes, no blank lines: a folder of machine-written price files) are parsed together in one
    pyarrow call and split again; a file that is not, or a batch pyarrow or a check refuses, is read alone, so
    an error names its file, line and field exactly as :func:`read_table` does."""
    optional = dict(optional or {})
    alike: dict[bytes, list[tuple[int, Path, bytes]]] = {}
    for index, path in enumerate(map(Path, paths)):
        if is_parquet(path) or not path.is_file():
            continue
        data = path.read_bytes()
        first = data.find(b"\n")
        if first <= 0 or not data.isascii() or b'"' in data or _has_blank_line(data) or not data[first + 1:]:
            continue
        body = data[first + 1:]
        alike.setdefault(data[:first], []).append((index, path, body if body.endswith(b"\n") else body + b"\n"))
    done: dict[int, Table] = {}
    for head, members in alike.items():  # a loop over distinct headers (one, usually)
        if len(members) > 1:
            done.update(_read_alike(head, members, dict(kinds), optional))
    return [done[index] if index in done else read_table(path, kinds, optional=optional)
            for index, path in enumerate(paths)]


def _read_alike(head: bytes, members: list[tuple[int, Path, bytes]], kinds: dict[str, Kind],
                optional: dict[str, Kind]) -> dict[int, Table]:
    """Files of one header parsed as one CSV and split by their row counts; ``{}`` if anything is amiss."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = members[0][1]
    try:
        header = _header(path, head.decode("ascii"))
        wanted = _wanted(path, header, kinds, optional)
    except InputError:
        return {}
    names = [f"c{i}" for i in range(len(header))]
    column = {name: names[header.index(name)] for name in wanted}
    counts = np.array([body.count(b"\n") for _, _, body in members])
    try:
        table = pcsv.read_csv(pa.BufferReader(b"".join(body for _, _, body in members)), read_options=pcsv.ReadOptions(
                                  column_names=names),
                              convert_options=pcsv.ConvertOptions(
                                  column_types={column[name]: _arrow_type(kind) for name, kind in wanted.items()},
                                  include_columns=list(column.values()), null_values=[], strings_can_be_null=False))
    except pa.ArrowInvalid:
        return {}
    if table.num_rows != int(counts.sum()):
        return {}
    values = {name: _typed(table.column(column[name]), kind) for name, kind in wanted.items()}
    if any(not np.isfinite(values[name]).all() for name, kind in wanted.items() if kind == "number"):
        return {}
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return {index: Table(one, tuple(header), {name: array[bounds[k]:bounds[k + 1]] for name, array in values.items()},
                         np.arange(2, counts[k] + 2))
            for k, (index, one, _) in enumerate(members)}


# --- CSV ---------------------------------------------------------------------------------------------------------

def _read_csv(path: Path, kinds: dict[str, Kind], optional: dict[str, Kind]) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
        shift = len(codecs.BOM_UTF8)
    else:
        shift = 0
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(error, path, shift) from None
    if not data.strip(b" \t\r\n,"):
        raise InputError("file is empty (no header row)", path=path)
    records = None
    first = data.find(b"\n")
    simple = b'"' not in data[first:] and data[:first].count(b'"') % 2 == 0 if first >= 0 else b'"' not in data
    if simple and not _has_blank_line(data):
        # one record per line, none blank, quotes in the header at most (pyarrow's writer quotes the names): the
        # lines are known without looking (the usual machine-written file)
        header = _header(path, data[:first if first >= 0 else len(data)].decode("utf-8"))
        if first < 0 or not data[first:].strip():
            raise InputError("file has a header but no data rows", path=path)
        wanted = _wanted(path, header, kinds, optional)
        body, lines = data, None
    else:
        records = _Records(np.frombuffer(data, dtype=np.uint8))
        header = _header(path, records.text(data, 0))
        wanted = _wanted(path, header, kinds, optional)
        body, lines = records.body(path, data, len(header))
    names = [f"c{i}" for i in range(len(header))]
    include = [names[header.index(name)] for name in wanted]

    def parse(types: dict) -> pa.Table:
        return pcsv.read_csv(pa.BufferReader(body), read_options=pcsv.ReadOptions(
                                 column_names=names, skip_rows=1, use_threads=len(body) > _THREADED_BYTES),
                             convert_options=pcsv.ConvertOptions(
                                 column_types=types, include_columns=include, null_values=[],
                                 strings_can_be_null=False, quoted_strings_can_be_null=False))

    try:
        table = parse({names[header.index(name)]: _arrow_type(kind) for name, kind in wanted.items()})
    except pa.ArrowInvalid:  # a value that does not parse, or a row of the wrong length: find its line
        if records is None:
            records = _Records(np.frombuffer(data, dtype=np.uint8))
            body, lines = records.body(path, data, len(header))
        try:
            table = parse({name: pa.string() for name in include})
        except pa.ArrowInvalid as error:  # e.g. an unbalanced quote
            raise InputError(f"not a readable CSV: {str(error).splitlines()[0][:200]}", path=path) from None
        text = {name: table.column(names[header.index(name)]) for name in wanted}
        return _from_text(Table(path, tuple(header), {}, lines), text, wanted)
    if lines is None:
        lines = np.arange(2, table.num_rows + 2)
    raw = {name: table.column(names[header.index(name)]) for name in wanted}
    out = Table(path, tuple(header), {name: _typed(raw[name], kind) for name, kind in wanted.items()}, lines)
    for name, kind in wanted.items():
        if kind == "number":
            _check_finite(out, name, raw[name])
    return out


def _has_blank_line(data: bytes) -> bool:
    """Whether a line of ``data`` holds nothing but commas and whitespace. Such a line starts with one of
    those bytes, so a file where no line does is answered by a few ``bytes`` searches, without the regex."""
    if data[:1] not in (b" ", b"\t", b"\r", b",", b"\n") and not any(
            pair in data for pair in (b"\n\n", b"\n ", b"\n\t", b"\n\r", b"\n,")):
        return False
    return _BLANK_LINE.search(data[:-1] if data.endswith(b"\n") else data) is not None


def _header(path: Path, line: str) -> list[str]:
    try:
        return [name.strip() for name in next(csv.reader([line]), [])]
    except csv.Error as error:
        raise InputError(f"not a readable CSV header: {error}", path=path, line=1) from None


class _Records:
    """The CSV records of a byte buffer: where each starts and stops, its physical line, whether it holds
    anything but commas and whitespace, and its number of fields (delimiters outside quotes + 1)."""

    def __init__(self, raw: np.ndarray) -> None:
        newline = np.flatnonzero(raw == 10)
        quote = raw == 34
        if quote.any():  # a newline inside quotes (an odd number of quotes before it) does not end a record
            parity = np.cumsum(quote, dtype=np.int64)
            ends = newline[parity[newline] % 2 == 0]
        else:
            parity = None
            ends = newline
        starts = np.concatenate([[0], ends + 1])
        stops = np.concatenate([ends, [raw.size]])
        if stops[-1] == starts[-1]:  # the file ends with a newline
            starts, stops = starts[:-1], stops[:-1]
        self.starts, self.stops, self.size = starts, stops, raw.size
        self.count = int(starts.size)
        self.lines = 1 + np.searchsorted(newline, starts)
        solid = np.concatenate([[0], np.cumsum(_SOLID[raw], dtype=np.int64)])
        self.filled = solid[stops] - solid[starts] > 0
        comma = np.flatnonzero(raw == 44)
        if parity is not None:
            comma = comma[parity[comma] % 2 == 0]
        owner = np.searchsorted(starts, comma, side="right") - 1
        self.fields = np.bincount(owner, minlength=self.count) + 1

    def text(self, data: bytes, record: int) -> str:
        return data[self.starts[record]:self.stops[record]].decode("utf-8")

    def body(self, path: Path, data: bytes, width: int) -> tuple[bytes, np.ndarray]:
        """The header and the data records that are not blank, and the line of each of those; a record of
        other than ``width`` fields is refused, naming its line."""
        rows = np.flatnonzero(self.filled[1:]) + 1
        if rows.size == 0:
            raise InputError("file has a header but no data rows", path=path)
        fields = self.fields[rows]
        wrong = np.flatnonzero(fields != width)
        if wrong.size:
            raise InputError(f"expected {width} fields, found {fields[wrong[0]]}", path=path,
                             line=int(self.lines[rows[wrong[0]]]))
        return self.without_blanks(data, rows), self.lines[rows]

    def without_blanks(self, data: bytes, rows: np.ndarray) -> bytes:
        """The header and the records ``rows``, each ending in a newline (blank records left out)."""
        if rows.size == self.count - 1:
            return data if data.endswith(b"\n") else data + b"\n"
        keep = np.concatenate([[0], rows])
        mark = np.zeros(self.size + 2, dtype=np.int64)
        np.add.at(mark, self.starts[keep], 1)
        np.add.at(mark, np.minimum(self.stops[keep] + 1, self.size + 1), -1)
        mask = np.cumsum(mark[:self.size]) > 0
        body = np.frombuffer(data, dtype=np.uint8)[mask].tobytes()
        return body if body.endswith(b"\n") else body + b"\n"


# --- Parquet -----------------------------------------------------------------------------------------------------

def _read_parquet(path: Path, kinds: dict[str, Kind], optional: dict[str, Kind],
                  row_groups: tuple[int, ...] | None = None) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"not a readable Parquet file: {error}", path=path) from None
    header = list(schema.names)
    wanted = _wanted(path, header, kinds, optional)
    if row_groups is None:
        table = pq.read_table(path, columns=list(wanted))
        lines = np.arange(1, table.num_rows + 1)
    else:
        handle = pq.ParquetFile(path)
        sizes = [handle.metadata.row_group(k).num_rows for k in range(handle.num_row_groups)]
        first = np.concatenate([[0], np.cumsum(sizes)])
        table = handle.read_row_groups(list(row_groups), columns=list(wanted))
        lines = np.concatenate([np.arange(first[k], first[k + 1]) + 1 for k in row_groups] or [np.arange(0)])
    if table.num_rows == 0:
        raise InputError("file has no data rows", path=path)
    out = Table(path, tuple(header), {}, lines)
    text: dict[str, object] = {}
    for name, kind in wanted.items():
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or kind == "text":
            text[name] = column
            continue
        out.check(_null_mask(column), name, lambda _: "missing value")
        ok = (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)) if kind in ("number", "whole") \
            else (pa.types.is_date(column.type) or pa.types.is_timestamp(column.type))
        if not ok:
            raise out.error(f"column of type {column.type} cannot be read as {kind}", None, name)
        out.columns[name] = _typed(column, kind)
        if kind == "number":
            _check_finite(out, name, column)
        elif kind == "whole" and pa.types.is_floating(column.type):
            values = numpy_of(column.cast(pa.float64()))
            out.check(~np.isfinite(values) | (values != np.round(values)), name,
                      lambda row, values=values: f"'{shown(values[row])}' is not a whole number")
            out.columns[name] = values.astype(np.int64)
    if text:
        done = _from_text(out, text, {name: wanted[name] for name in text})
        out.columns.update(done.columns)
    return Table(path, tuple(header), {name: out.columns[name] for name in wanted}, lines)


# --- shared ------------------------------------------------------------------------------------------------------

def _wanted(path: Path, header: list[str], kinds: dict[str, Kind], optional: dict[str, Kind]) -> dict[str, Kind]:
    missing = [name for name in kinds if name not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; header is {','.join(header)}", path=path,
                         line=None if is_parquet(path) else 1, field=missing[0])
    wanted = {**kinds, **{name: kind for name, kind in optional.items() if name in header}}
    twice = [name for name in wanted if header.count(name) > 1]
    if twice:
        raise InputError(f"column '{twice[0]}' appears {header.count(twice[0])} times in the header", path=path,
                         line=None if is_parquet(path) else 1, field=twice[0])
    return wanted


def _arrow_type(kind: Kind):
    import pyarrow as pa

    return {"text": pa.string(), "number": pa.float64(), "whole": pa.int64(), "date": pa.date32()}[kind]


def numpy_of(column) -> np.ndarray:
    """A pyarrow array or chunked array without nulls (float64, int64, date32, bool or string) as numpy, read from
    its buffers: pyarrow's own ``to_numpy`` imports pandas, 0.4 s of every run. Strings come as an object array."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    kind = column.type
    parts = []
    for chunk in chunks:  # a loop over the file's chunks, not its rows
        n, start = len(chunk), chunk.offset
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            parts.append(np.array(chunk.to_pylist(), dtype=object))
        elif pa.types.is_boolean(kind):
            bits = np.frombuffer(chunk.buffers()[1], dtype=np.uint8) if n else np.zeros(0, dtype=np.uint8)
            parts.append(np.unpackbits(bits, bitorder="little")[start:start + n].astype(bool))
        else:
            dtype = {pa.float64(): np.float64, pa.int64(): np.int64, pa.date32(): np.int32}[kind]
            size = np.dtype(dtype).itemsize
            parts.append(np.frombuffer(chunk.buffers()[1], dtype=dtype, count=n, offset=start * size)
                         if n else np.zeros(0, dtype=dtype))
    empty = np.zeros(0, dtype=object if pa.types.is_string(kind) else None)
    out = np.concatenate(parts) if parts else empty
    return out.astype("datetime64[D]") if kind == pa.date32() else out


def _typed(column, kind: Kind) -> np.ndarray:
    """A column pyarrow has parsed (no nulls) as the numpy array of its kind."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "text":
        return numpy_of(pc.utf8_trim_whitespace(pc.cast(column, pa.string())))
    if kind == "number":
        return numpy_of(pc.cast(column, pa.float64()))
    if kind == "whole":  # a float column is checked for whole numbers by the caller: truncated here meanwhile
        return numpy_of(pc.cast(column, pa.int64(), safe=False))
    return numpy_of(pc.cast(column, pa.date32()))


def _null_mask(column) -> np.ndarray:
    import pyarrow.compute as pc

    return numpy_of(pc.is_null(column))


def _check_finite(table: Table, name: str, raw) -> None:
    values = table.columns[name]
    table.check(~np.isfinite(values), name, lambda row: f"'{shown(raw[row])}' is not a finite number")


def _from_text(table: Table, text: dict[str, object], kinds: dict[str, Kind]) -> Table:
    """Validate and convert text columns, the first bad value of each named by its line; column by column in
    the header's order, so the error is the one a reader meets first in that column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = dict(table.columns)
    for name, kind in kinds.items():
        column = pc.utf8_trim_whitespace(pc.fill_null(pc.cast(text[name], pa.string()), ""))
        values = column.to_numpy(zero_copy_only=False)
        if kind == "text":
            columns[name] = np.asarray(values, dtype=object)
            continue
        if kind == "date":
            iso = pc.match_substring_regex(column, _ISO_DAY).to_numpy(zero_copy_only=False)
            parsed = pc.strptime(pc.if_else(pa.array(iso), column, None), format="%Y-%m-%d", unit="s",
                                 error_is_null=True)
            valid = ~_null_mask(parsed)
            table.check(~valid, name,
                        lambda row, values=values: f"'{shown(values[row])}' is not an ISO date (YYYY-MM-DD)")
            days = pc.cast(parsed, pa.date32())
            columns[name] = days.to_numpy().astype("datetime64[D]")
            continue
        number = pc.match_substring_regex(column, _NUMBER).to_numpy(zero_copy_only=False)
        odd = pc.match_substring_regex(column, _NOT_FINITE).to_numpy(zero_copy_only=False)
        parsed = pc.cast(pc.if_else(pa.array(number), column, "0"), pa.float64()).to_numpy()
        whole = pc.match_substring_regex(column, _WHOLE).to_numpy(zero_copy_only=False)
        integral = whole | (number & (parsed == np.round(parsed)))
        problems = [(odd, "is not a finite number"), (~number & ~odd, "is not a number")]
        if kind == "whole":
            problems += [(number & ~integral, "is not a whole number"),
                         (~whole & integral & (np.abs(parsed) >= 1e15), "is too large (1e15 or more)")]
        found = [(int(np.argmax(mask)), what) for mask, what in problems if mask.any()]
        if found:  # the earliest line of any problem of the column
            row, what = min(found)
            raise table.error(f"'{shown(values[row])}' {what}", row, name)
        if kind == "whole":
            exact = pc.cast(pc.if_else(pa.array(whole), pc.replace_substring_regex(column, r"\.0*$", ""), "0"),
                            pa.int64()).to_numpy()
            columns[name] = np.where(whole, exact, np.where(np.abs(parsed) < 1e15, parsed, 0).astype(np.int64))
        else:
            columns[name] = parsed
    return Table(table.path, table.header, columns, table.lines)
