"""`tokenclear margin` on a user's files, end to end, against an independent numpy script on the same files.

The book (``big_book.py``): 10,000 accounts x 20 futures = 200,000 position rows over 500 price files of
1,400 XNYS sessions. Prints:

* per-stage times of one run in this process: read (every input file), build (factors, scenarios),
  compute (HS-VaR and the money boundary), write (the JSON output to a file);
* end to end, process start to output written: ``tokenclear margin ... --format json|csv|parquet --out``,
  best of ``--repeat`` runs, against ``numpy_margin.py`` (best of as many), and their ratio (target <= 1.5);
* that the two agree on every account to the cent.

The margin options are those the yardstick computes: bare HS-VaR (``--stress-period none --apc none
--no-holiday-addon --no-concentration-addon``). Run: ``python bench/bench_ingest.py [--data DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPTIONS = ["--stress-period", "none", "--apc", "none", "--no-holiday-addon", "--no-concentration-addon"]


def best(command: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def stages(data: Path, positions: Path, out: Path) -> dict[str, float]:
    """One run in this process, timed stage by stage (imports are paid before the clock starts)."""
    from dataclasses import replace

    from tokenclear import runner
    from tokenclear.cli.app import BookFormat
    from tokenclear.cli.margin import emit_margin, inputs_used, margin_metadata
    from tokenclear.margin.setup import book_margin
    from tokenclear.settings import Settings

    settings = Settings(data_dir=data)
    times: dict[str, float] = {}
    start = time.perf_counter()
    inputs = runner.load_inputs(settings, positions=positions, instruments=None, prices=None)
    times["read"] = time.perf_counter() - start
    setup = runner.risk_setup(settings, stress_period="none", confidence=None, mpor_days=None, lookback=None,
                              measure="quantile", apc="none", apc_release=None, holiday=False, concentration=False)
    built = []

    def build(book, config):
        begin = time.perf_counter()
        context = runner.context_for(replace(inputs, book=book), config, None)
        built.append(time.perf_counter() - begin)
        return context

    start = time.perf_counter()
    result = book_margin(inputs.book, inputs.catalogue, setup, "hsvar", build=build, capacity=None)
    times["build"] = sum(built)
    times["compute"] = time.perf_counter() - start - times["build"]
    start = time.perf_counter()
    files = inputs_used(settings, inputs, positions, None)
    emit_margin(result, BookFormat.json, margin_metadata(settings, inputs, setup, result, files), out=out)
    times["write"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tokenclear-big-book",
                        help="the generated book (written there first if absent)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data, positions = args.data, args.data / "positions.csv"
    if not positions.is_file():
        subprocess.run([sys.executable, str(HERE / "big_book.py"), str(data)], check=True)
    if not (data / "positions.parquet").is_file():
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        pq.write_table(pcsv.read_csv(positions), data / "positions.parquet")
    env = {**os.environ, "TOKENCLEAR_DATA_DIR": str(data)}
    tokenclear = str(Path(sys.executable).with_name("tokenclear"))
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        os.environ["TOKENCLEAR_DATA_DIR"] = str(data)
        times = stages(data, positions, work_dir / "stages.json")
        print(f"book: {positions} (10,000 accounts, 200,000 rows, 500 price files)")
        print("stages in one process: " + ", ".join(f"{name} {value:.2f} s" for name, value in times.items())
              + f"; total {sum(times.values()):.2f} s")
        yardstick = best([sys.executable, str(HERE / "numpy_margin.py"), str(data), str(positions),
                          str(work_dir / "ref.json")], env, args.repeat)
        print(f"numpy script (numpy_margin.py): {yardstick:.2f} s")
        for fmt, source in (("json", positions), ("csv", positions), ("parquet", positions),
                            ("json", data / "positions.parquet")):
            out = work_dir / f"margin-{source.suffix[1:]}.{fmt}"
            seconds = best([tokenclear, "margin", "--positions", str(source), *OPTIONS, "--format", fmt,
                            "--out", str(out)], env, args.repeat)
            print(f"tokenclear margin --format {fmt} ({source.suffix[1:]} positions): {seconds:.2f} s, "
                  f"{seconds / yardstick:.2f}x the numpy script (target <= 1.5x)")
        theirs = {row["account"]: row["margin"] for row in json.loads((work_dir / "ref.json").read_text())}
        for name in ("margin-csv.json", "margin-parquet.json"):
            ours = {row["account"]: row["margin"] for row in json.loads((work_dir / name).read_text())["rows"]}
            differ = [one for one in theirs if ours.get(one) != theirs[one]]
            print(f"agreement ({name}): {len(theirs) - len(differ):,} of {len(theirs):,} accounts to the cent"
                  + (f"; first differing: {differ[0]} {ours.get(differ[0])} vs {theirs[differ[0]]}" if differ else ""))


if __name__ == "__main__":
    main()
