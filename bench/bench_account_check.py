"""The distributed run's check that no account sits in two partitions, at the sizes of a large book.

The client used to keep every account's 64-bit hash in memory and sort them all at the end; it now writes them
to 256 bucket files on disk and searches each bucket alone (``tokenclear.distributed.AccountCheck``). Prints,
for each book size, the time and the growth of the process's peak resident memory of the check; each size runs
in a fresh process, so the peaks do not mix. Run: make bench (or ``--accounts 100000000``).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np

PART = 100_000  # accounts a partition


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(accounts: int, way: str) -> None:
    from tokenclear.distributed import AccountCheck

    rng = np.random.default_rng(1)
    base = peak_mib()
    start = time.perf_counter()
    if way == "disk":
        check = AccountCheck()
        for part in range(0, accounts, PART):
            check.add(part // PART, rng.integers(0, 2**64, size=min(PART, accounts - part), dtype=np.uint64))
        count, _ = check.shared()
    else:  # the old way: every hash kept, then one sort of them all
        seen = [rng.integers(0, 2**64, size=min(PART, accounts - part), dtype=np.uint64)
                for part in range(0, accounts, PART)]
        distinct, counts = np.unique(np.concatenate(seen), return_counts=True)
        count = int((counts > 1).sum())
    print(f"{accounts:>12,} accounts, {way:>9}: {time.perf_counter() - start:7.2f} s, peak memory "
          f"+{peak_mib() - base:8.1f} MiB, {count} shared")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(int(args.one[0]), args.one[1])
        return
    for accounts in args.accounts:
        for way in ("in memory", "disk"):
            subprocess.run([sys.executable, __file__, "--one", str(accounts), way], check=True)


if __name__ == "__main__":
    main()
