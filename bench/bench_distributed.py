"""A distributed margin run (``tokenclear margin --workers N``) on a generated book far larger than one process
would hold dense: its time with 1 and 2 workers, the scaling, the per-partition cost and the peak memory.

The book: ``--accounts`` accounts (default 1,000,000) holding 20 of the 500 futures of ``big_book.py``'s data
each, written as one Parquet file with a row group per 10,000 accounts (200,000 rows: one partition each).
The run is bare HS-VaR (no stress period, APC, holiday or concentration add-on) so that its cost is the
method's. Peak memory is the largest resident set of any process of the run (client, scheduler, workers;
``ru_maxrss`` of the children) and the peak of their sum (sampled every 0.2 s).

Run: ``python bench/bench_distributed.py [--accounts N] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from big_book import write_data  # noqa: E402

PER_ACCOUNT, PER_GROUP = 20, 10_000
OPTIONS = ["--stress-period", "none", "--apc", "none", "--no-holiday-addon", "--no-concentration-addon"]


def write_book(path: Path, instruments: list[str], accounts: int, seed: int = 21) -> int:
    """``accounts`` accounts of 20 distinct instruments each, a row group per 10,000 accounts; returns rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    steps = np.array([step for step in range(1, len(instruments)) if np.gcd(step, len(instruments)) == 1])
    names = np.asarray(instruments, dtype=object)
    schema = pa.schema([("account", pa.string()), ("instrument", pa.string()), ("quantity", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, accounts, PER_GROUP):  # a loop over row groups, each vectorised
            count = min(PER_GROUP, accounts - start)
            first = rng.integers(0, len(instruments), count)[:, None]
            step = rng.choice(steps, count)[:, None]
            held = (first + step * np.arange(PER_ACCOUNT)[None, :]) % len(instruments)  # distinct: step coprime
            size = rng.integers(1, 51, held.shape) * rng.choice([-1, 1], held.shape)
            ids = pa.array(np.repeat(np.arange(start, start + count), PER_ACCOUNT))
            account = pa.compute.binary_join_element_wise("A", pa.compute.utf8_lpad(pa.compute.cast(ids, pa.string()),
                                                                                    9, "0"), "")
            writer.write_table(pa.table({"account": account, "instrument": pa.array(names[held.ravel()]),
                                         "quantity": size.ravel()}, schema=schema))
    return accounts * PER_ACCOUNT


def tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        return sum(one.memory_info().rss for one in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def run(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak summed RSS in bytes) of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read()[-2000:]}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tokenclear-distributed")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    args = parser.parse_args()
    book = args.data / f"book-{args.accounts}.parquet"
    if not (args.data / "instruments.csv").is_file():
        write_data(args.data)
    instruments = [line.split(",")[0] for line in (args.data / "instruments.csv").read_text().splitlines()[1:]]
    if not book.is_file():
        started = time.perf_counter()
        rows = write_book(book, instruments, args.accounts)
        print(f"generated {book}: {args.accounts:,} accounts, {rows:,} rows, {book.stat().st_size / 2**20:,.0f} MiB "
              f"in {time.perf_counter() - started:.0f} s")
    env = {**os.environ, "TOKENCLEAR_DATA_DIR": str(args.data)}
    tokenclear = str(Path(sys.executable).with_name("tokenclear"))
    partitions = -(-args.accounts // PER_GROUP)
    times = {}
    with tempfile.TemporaryDirectory() as work:
        for workers in args.workers:
            out = Path(work) / f"margin-{workers}.parquet"
            seconds, peak = run([tokenclear, "margin", "--positions", str(book), *OPTIONS, "--workers", str(workers),
                                 "--format", "parquet", "--out", str(out)], env)
            times[workers] = seconds
            largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            print(f"{workers} worker(s): {seconds:.1f} s for {args.accounts:,} accounts ({partitions:,} partitions of "
                  f"{PER_GROUP:,}; {seconds / partitions * workers:.2f} s per partition per worker), peak memory "
                  f"{peak / 2**30:.2f} GiB summed over the processes, {largest:.2f} GiB the largest one")
        if {1, 2} <= set(times):
            import pyarrow.parquet as pq

            one, two = (pq.read_table(Path(work) / f"margin-{n}.parquet", columns=["account", "margin"])
                        for n in (1, 2))
            print(f"scaling 1 -> 2 workers: {times[1] / times[2]:.2f}x (2 cores); results identical: "
                  f"{one.equals(two)}")


if __name__ == "__main__":
    main()
