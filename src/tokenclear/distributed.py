"""A margin run over a Dask distributed cluster, for books that outgrow one machine.

The book is partitioned by account: each file of a positions folder, or each run of row groups of a Parquet
file, is one partition, and an account's positions must all sit in one. The client reads only the
``instrument`` column of every partition (the book's contracts), builds each clearing class's context and
:func:`~tokenclear.margin.engine.prepare`\\ s it once (the scenario P&L per contract, the add-ons' parts), and
broadcasts that to the workers. Each worker reads and validates its partitions, margins their accounts with
:func:`~tokenclear.margin.engine.account_margins` and returns the rows; the client writes them in partition
order as they arrive, a few partitions in flight per worker, so neither side holds the whole book.

An account's figures depend on its own positions only, so the rows equal those of a single-process
``tokenclear margin`` on the same book (tests/test_distributed.py checks it to the cent).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenclear.book.positions import Book, read_positions
from tokenclear.columns import PARQUET_SUFFIXES, is_parquet, positions_in
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.margin.classes import MarginClass, combine
from tokenclear.margin.engine import MarginRun, Prepared, account_margins, shipped

#: Rows a partition of a Parquet file aims at (whole row groups are joined up to it).
PARTITION_ROWS = 200_000
#: Partitions in flight per worker: enough to keep each busy while the client writes.
IN_FLIGHT = 2


@dataclass(frozen=True)
class Partition:
    """A part of the positions: a whole file, or some row groups of a Parquet file."""

    path: Path
    row_groups: tuple[int, ...] | None = None

    def label(self) -> str:
        if self.row_groups is None:
            return str(self.path)
        first, last = self.row_groups[0], self.row_groups[-1]
        return f"{self.path} row group{'s' if last > first else ''} {first}" + (f"-{last}" if last > first else "")


def partitions(positions: Path, rows: int = PARTITION_ROWS) -> list[Partition]:
    """The partitions of a positions file or folder (its CSV and Parquet files in name order)."""
    positions = Path(positions)
    if positions.is_dir():
        files = sorted(path for path in positions.iterdir()
                       if path.is_file() and path.suffix.lower() in (".csv", *PARQUET_SUFFIXES))
        if not files:
            raise InputError("no CSV or Parquet positions file in the folder", path=positions)
        return [part for path in files for part in partitions(path, rows)]
    if not positions.is_file():
        raise InputError("file not found", path=positions)
    if not is_parquet(positions):
        return [Partition(positions)]
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(positions).metadata
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InputError(f"not a readable Parquet file: {error}", path=positions) from None
    out, group, size = [], [], 0
    for k in range(metadata.num_row_groups):  # a loop over row groups
        group.append(k)
        size += metadata.row_group(k).num_rows
        if size >= rows:
            out.append(Partition(positions, tuple(group)))
            group, size = [], 0
    if group:
        out.append(Partition(positions, tuple(group)))
    return out or [Partition(positions)]


def book_instruments(parts: list[Partition], catalogue: Catalogue) -> list[str]:
    """The catalogue's contracts named in the ``instrument`` column of any partition, in catalogue order
    (a name the catalogue lacks is left for its partition's reader to refuse, naming its line)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    names: set[str] = set()
    for part in parts:  # a loop over partitions; each a column read and a unique
        try:
            if is_parquet(part.path):
                handle = pq.ParquetFile(part.path)
                if "instrument" not in handle.schema_arrow.names:
                    raise InputError("a distributed run needs positions by instrument name (an 'instrument' "
                                     "column); exchange symbology is read in one process", path=part.path,
                                     field="instrument")
                groups = part.row_groups if part.row_groups is not None else range(handle.num_row_groups)
                column = handle.read_row_groups(list(groups), columns=["instrument"]).column("instrument")
            else:
                column = pcsv.read_csv(part.path, convert_options=pcsv.ConvertOptions(
                    include_columns=["instrument"], column_types={"instrument": pa.string()})).column("instrument")
        except (pa.ArrowInvalid, KeyError):
            raise InputError("a distributed run needs positions by instrument name (an 'instrument' column)",
                             path=part.path, field="instrument") from None
        names.update(pc.utf8_trim_whitespace(pc.unique(column.cast(pa.string()))).to_pylist())
    return [name for name in catalogue.instruments if name in names]


def account_hashes(accounts: list[str]) -> np.ndarray:
    """A 64-bit hash of each account name (uint64, vectorised), for the check that no account is in two partitions."""
    import pandas as pd

    return pd.util.hash_array(np.asarray(accounts, dtype=object))


class AccountCheck:
    """That no account sits in two partitions, in memory bounded whatever the book's size: each partition's account
    hashes go to one of :data:`BUCKETS` files on disk by their top bits, and each bucket alone (1/256 of the book)
    is searched for a hash in two partitions at the end."""

    RECORD = np.dtype([("hash", "<u8"), ("part", "<u4")])
    BUCKETS = 256

    def __init__(self) -> None:
        import tempfile

        self._folder = tempfile.TemporaryDirectory(prefix="tokenclear-accounts-")
        self._files = [open(Path(self._folder.name) / f"{b:03d}.bin", "ab") for b in range(self.BUCKETS)]

    def add(self, part: int, hashes: np.ndarray) -> None:
        records = np.empty(hashes.size, dtype=self.RECORD)
        records["hash"], records["part"] = hashes, part
        bucket = (hashes >> np.uint64(56)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        records, bucket = records[order], bucket[order]
        edges = np.searchsorted(bucket, np.arange(self.BUCKETS + 1))
        for b in np.flatnonzero(np.diff(edges)):  # a loop over the buckets this partition touches
            self._files[b].write(records[edges[b]:edges[b + 1]].tobytes())

    def shared(self) -> tuple[int, list[int]]:
        """How many accounts sit in more than one partition, and (the first few of) those partitions."""
        count, parts = 0, set()
        try:
            for handle in self._files:
                handle.close()
                records = np.fromfile(handle.name, dtype=self.RECORD)
                distinct, counts = np.unique(records["hash"], return_counts=True)
                twice = distinct[counts > 1]
                count += int(twice.size)
                if twice.size and len(parts) < 4:
                    parts.update(np.unique(records["part"][np.isin(records["hash"], twice)]).tolist())
        finally:
            self.close()
        return count, sorted(parts)

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        self._folder.cleanup()


def margin_partition(part: Partition, catalogue: Catalogue, instruments: list[str], prepared: dict[str, Prepared],
                     classes: list[str], sum_duplicates: bool) -> tuple[list[dict], list[str], np.ndarray]:
    """One partition's accounts margined (on a worker): (report rows, warnings, the accounts' hashes)."""
    book, warnings = read_positions(part.path, catalogue, sum_duplicates=sum_duplicates, row_groups=part.row_groups)
    column = positions_in(np.asarray(book.instruments, dtype=object), instruments)
    unknown = [name for name, at in zip(book.instruments, column.tolist(), strict=True) if at < 0]
    if unknown:  # the client's view of the book missed it: cannot happen unless the file changed under the run
        raise InputError(f"instrument {unknown[0]} was not in the book when the run began", path=part.path)
    quantity = np.zeros((len(book.accounts), len(instruments)), dtype=np.int64)
    quantity[:, column] = book.quantity
    runs: dict[str, MarginRun] = {}
    for name in classes:  # a loop over the book's clearing classes (one or two), each kept even when empty here
        one = prepared[name]
        columns = positions_in(np.asarray(one.instruments, dtype=object), instruments)
        sub = quantity[:, columns]
        rows = (sub != 0).any(axis=1)
        accounts = [account for account, keep in zip(book.accounts, rows.tolist(), strict=True) if keep]
        margins = account_margins(one, accounts, sub[rows]) if accounts else []
        runs[name] = MarginRun(one.as_of, one.method, one.scenarios, margins, one.holiday_days, [], one.currency)
    result = combine(runs)
    return ([account.row() for account in result.accounts], warnings,
            account_hashes([account.account for account in result.accounts]))


def class_books(catalogue: Catalogue, instruments: list[str], classes: dict[str, MarginClass]) -> dict[str, Book]:
    """Each clearing class present: a one-account book of zeros over its contracts (the context's universe)."""
    of_class = [catalogue[name].clearing_class for name in instruments]
    return {name: Book(["book"], [one for one, kind in zip(instruments, of_class, strict=True) if kind == name],
                       np.zeros((1, of_class.count(name)), dtype=np.int64))
            for name in classes if name in of_class}


def run(client, parts: list[Partition], catalogue: Catalogue, instruments: list[str], prepared: dict[str, Prepared],
        *, sum_duplicates: bool = False) -> Iterator[tuple[Partition, list[dict], list[str]]]:
    """(partition, rows, warnings) of every partition in order, computed on ``client``'s cluster, at most
    :data:`IN_FLIGHT` partitions per worker at a time. Refuses an account found in two partitions
    (:class:`AccountCheck`: the client's memory does not grow with the book)."""
    shared = client.scatter({name: shipped(one) for name, one in prepared.items()}, broadcast=True)
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    pending: deque = deque()
    check = AccountCheck()
    names = list(prepared)

    def submit(part: Partition):
        return client.submit(margin_partition, part, catalogue, instruments, shared, names, sum_duplicates,
                             pure=False)

    try:
        queue = iter(parts)
        for part in queue:
            pending.append((part, submit(part)))
            if len(pending) >= IN_FLIGHT * workers:
                break
        index = 0
        while pending:
            part, future = pending.popleft()
            rows, warnings, hashes = future.result()
            future.release()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, submit(nxt)))
            check.add(index, hashes)
            index += 1
            yield part, rows, warnings
    except BaseException:
        check.close()
        raise
    count, where = check.shared()
    if count:
        raise InputError(f"{count} account(s) appear in more than one partition "
                         f"({', '.join(parts[i].label() for i in where[:4])}): an account's positions must all sit "
                         "in one file or row-group run", field="--positions")


def start_client(cluster: str | None, workers: int | None, origin: str = "--cluster"):
    """A client of the cluster at ``cluster`` (``tcp://host:8786``; ``origin``: the option or setting that named
    it), or of a local one of ``workers`` processes (one thread each); returns (client, the local cluster to close
    or None)."""
    from distributed import Client, LocalCluster

    if cluster:
        try:
            return Client(cluster, timeout="20s"), None
        except (OSError, ValueError) as error:
            raise InputError(f"cannot reach the Dask scheduler {cluster}: {error}", field=origin) from None
    local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(local), local
