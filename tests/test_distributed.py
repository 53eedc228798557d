"""A margin run on Dask (tokenclear.distributed): the book partitioned by account over real worker processes
gives the single-process run's rows to the cent, in JSON, CSV and Parquet; a bad partition fails the run
naming its file and line and leaves no output file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tests.test_cli import ROOT, csv_rows, tokenclear, tokenclear_env
from tests.test_emir_classes import mixed_data  # noqa: F401, F811 (a fixture)

pytestmark = pytest.mark.integration
DEMO = ROOT / "data" / "demo" / "positions.csv"


def split_book(folder: Path, parts: int = 3) -> Path:
    """The demo book in ``parts`` files by account (the first two Parquet, the last CSV)."""
    table = pcsv.read_csv(DEMO)
    accounts = sorted(set(table.column("account").to_pylist()))
    folder.mkdir()
    for k in range(parts):
        mine = pa.array(accounts[k::parts])
        rows = table.filter(pa.compute.is_in(table.column("account"), value_set=mine))
        if k < parts - 1:
            pq.write_table(rows, folder / f"part-{k}.parquet", row_group_size=4)
        else:
            pcsv.write_csv(rows, folder / f"part-{k}.csv")
    return folder


def rows_by_account(rows: list[dict]) -> dict[str, dict]:
    return {row["account"]: row for row in rows}


def test_a_distributed_run_gives_the_local_rows_to_the_cent(tmp_path):
    local = json.loads(tokenclear("margin", "--positions", str(DEMO), "--format", "json").stdout)
    book = split_book(tmp_path / "book")
    out = tmp_path / "margin.json"
    done = tokenclear("margin", "--positions", str(book), "--workers", "2", "--format", "json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    ours = json.loads(out.read_text())
    assert rows_by_account(ours["rows"]) == rows_by_account(local["rows"])
    assert len(ours["rows"]) == len(local["rows"]) == ours["metadata"]["accounts"]
    assert ours["total"] == local["total"] and ours["holiday_days"] == local["holiday_days"]
    assert ours["warnings"] == local["warnings"]
    assert ours["metadata"]["partitions"] == 3
    for key in ("as_of", "method", "scenarios", "classes", "stress_period", "apc", "lookback"):
        assert ours["metadata"][key] == local["metadata"][key], key
    assert not list(tmp_path.glob(".margin.json.*"))  # the temporary file was renamed into place

    csv_out, parquet_out = tmp_path / "margin.csv", tmp_path / "margin.parquet"
    for fmt, path in (("csv", csv_out), ("parquet", parquet_out)):
        done = tokenclear("margin", "--positions", str(book), "--workers", "1", "--format", fmt, "--out", str(path))
        assert done.returncode == 0, done.stderr
    preamble, rows = csv_rows(csv_out.read_text())
    _, local_rows = csv_rows(tokenclear("margin", "--positions", str(DEMO), "--format", "csv").stdout)
    assert rows_by_account(rows) == rows_by_account(local_rows)
    assert any(line == f"accounts: {len(local_rows)}" for line in preamble)
    table = pq.read_table(parquet_out).to_pylist()
    assert {row["account"]: str(row["margin"]) for row in table} == {row["account"]: row["margin"]
                                                                      for row in local["rows"]}
    header = json.loads(pq.read_metadata(parquet_out).metadata[b"tokenclear"])
    assert header["total"] == local["total"] and header["metadata"]["accounts"] == len(table)


def test_a_mixed_book_on_an_existing_cluster_gives_the_local_rows(mixed_data, tmp_path):  # noqa: F811
    from distributed import LocalCluster

    data, whole = mixed_data
    header, *rows = whole.read_text().splitlines()
    book = tmp_path / "book"
    book.mkdir()
    for name in ("A", "B"):  # one file per account
        (book / f"{name}.csv").write_text("\n".join([header, *(row for row in rows if row.startswith(name))]) + "\n")
    env = {"TOKENCLEAR_DATA_DIR": str(data)}
    args = ["margin", "--as-of", "2023-08-25", "--format", "json"]
    local = json.loads(tokenclear_env([*args, "--positions", str(whole)], env).stdout)
    out = tmp_path / "margin.json"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        done = tokenclear_env([*args, "--positions", str(book), "--out", str(out)],
                              {**env, "TOKENCLEAR_DASK_SCHEDULER": cluster.scheduler_address})
    assert done.returncode == 0, done.stderr
    ours = json.loads(out.read_text())
    assert rows_by_account(ours["rows"]) == rows_by_account(local["rows"])
    assert ours["rows"][0]["worst_scenario"].startswith(("listed: ", "otc: "))  # both classes, as locally
    assert ours["warnings"] == local["warnings"]


def test_a_bad_partition_fails_the_run_naming_its_line_and_writes_nothing(tmp_path):
    book = split_book(tmp_path / "book")
    rows = (book / "part-2.csv").read_text().splitlines()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",1.5"
    (book / "part-2.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "margin.json"
    done = tokenclear("margin", "--positions", str(book), "--workers", "2", "--format", "json", "--out", str(out))
    assert done.returncode != 0
    assert "part-2.csv line 3 field 'quantity'" in " ".join(done.stderr.split()) and "1.5" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".margin.json.*"))


def test_an_account_in_two_partitions_is_refused(tmp_path):
    book = split_book(tmp_path / "book")
    table = pcsv.read_csv(book / "part-2.csv")
    moved = pq.read_table(book / "part-0.parquet").slice(0, 1)  # part-0's first account, also in part-2
    moved = moved.set_column(1, "instrument", pa.array(["SOL-PERP"]))
    pcsv.write_csv(pa.concat_tables([table, moved.cast(table.schema)]), book / "part-2.csv")
    out = tmp_path / "margin.csv"
    done = tokenclear("margin", "--positions", str(book), "--workers", "1", "--format", "csv", "--out", str(out))
    assert done.returncode != 0 and "more than one partition" in done.stderr
    assert "part-0.parquet" in done.stderr and "part-2.csv" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(("extra", "expected"), [
    (["--format", "json"], "--out"),
    (["--out", "x.csv"], "--out"),
    (["--format", "csv", "--out", "x.csv", "--cluster", "tcp://127.0.0.1:1"], "not both"),
    (["--format", "csv", "--out", "x.csv", "--wide"], "--wide"),
])
def test_what_a_distributed_run_refuses(tmp_path, extra, expected):
    done = tokenclear("margin", "--workers", "1", *[str(tmp_path / one) if one == "x.csv" else one for one in extra])
    assert done.returncode != 0 and expected in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_the_account_check_finds_every_account_in_two_partitions_bucket_by_bucket():
    """The check keeps the hashes on disk by bucket: accounts spread over every bucket, three of them in two
    partitions, are counted and their partitions named; a book without any is passed."""
    import numpy as np

    from tokenclear.distributed import AccountCheck, account_hashes

    names = [f"ACC{i:06d}" for i in range(30_000)]
    hashes = account_hashes(names)
    assert np.unique(hashes >> np.uint64(56)).size == AccountCheck.BUCKETS  # every bucket is used
    check = AccountCheck()
    for part in range(3):
        check.add(part, hashes[part * 10_000:(part + 1) * 10_000])
    check.add(3, account_hashes(["ACC000005", "ACC012345", "ACC029999", "NEW"]))  # in parts 0, 1 and 2 too
    assert check.shared() == (3, [0, 1, 2, 3])
    clean = AccountCheck()
    clean.add(0, hashes[:100])
    clean.add(1, hashes[100:200])
    assert clean.shared() == (0, [])


@pytest.mark.parametrize("method", ["hsvar", "fhs", "span", "asvar", "notional"])
def test_what_is_sent_to_the_workers_margins_as_the_whole_preparation(method):
    """The workers get each prepared class without the context's history (:func:`engine.shipped`): every account's
    margin and drivers are the same, and what is pickled is a fraction."""
    import pickle

    import numpy as np

    from tests.conftest import context_of, future, random_walk
    from tokenclear.margin.engine import Options, account_margins, prepare, shipped

    prices = {f"u{k}": random_walk(10 + k, 1_500) for k in range(4)}
    instruments = [future(f"F{k}{m}", f"u{k}", "10", f"2024-0{m + 6}-01") for k in range(4) for m in range(2)]
    entries = [(f"A{i}", one.instrument, int(q)) for i, row in enumerate(np.random.default_rng(3).integers(
        -5, 6, size=(12, len(instruments)))) for one, q in zip(instruments, row, strict=True) if q]
    context = context_of(prices, instruments, entries, as_of=np.datetime64("2024-01-31"), lookback=500)
    whole = prepare(context, method, Options(apc="buffer"))
    cut = shipped(whole)
    book = context.book
    assert [a.row() for a in account_margins(cut, book.accounts, book.quantity)] == \
        [a.row() for a in account_margins(whole, book.accounts, book.quantity)]
    assert len(pickle.dumps(cut)) < len(pickle.dumps(whole)) / 2
