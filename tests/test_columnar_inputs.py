"""Columnar ingest: Parquet positions and prices, one long price table, and the first bad line of a large file
named exactly (tokenclear.columns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenclear.book.positions import read_positions
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import load_catalogue
from tokenclear.market.files import load_folder, load_series
from tokenclear.settings import PROJECT_DATA

CATALOGUE = load_catalogue(PROJECT_DATA / "instruments.csv")


def test_parquet_positions_give_the_csv_book(tmp_path: Path) -> None:
    csv = tmp_path / "positions.csv"
    csv.write_text("account,instrument,quantity\nB,BTCZ23,-3\nA,BTCZ23,2\nA,ETHZ23,5\n")
    parquet = tmp_path / "positions.parquet"
    pq.write_table(pa.table({"account": ["B", "A", "A"], "instrument": ["BTCZ23", "BTCZ23", "ETHZ23"],
                             "quantity": [-3, 2, 5]}), parquet)
    one, two = read_positions(csv, CATALOGUE)[0], read_positions(parquet, CATALOGUE)[0]
    assert one.accounts == two.accounts == ["A", "B"]
    assert one.instruments == two.instruments
    assert np.array_equal(one.quantity, two.quantity)
    assert one.quantity[one.accounts.index("B"), one.instruments.index("BTCZ23")] == -3


def test_a_parquet_error_names_the_row(tmp_path: Path) -> None:
    parquet = tmp_path / "positions.parquet"
    pq.write_table(pa.table({"account": ["A", "A"], "instrument": ["BTCZ23", "BTCZ23"], "quantity": [1.0, 2.5]}),
                   parquet)
    with pytest.raises(InputError, match=r"row 2 field 'quantity': '2.5' is not a whole number"):
        read_positions(parquet, CATALOGUE)


def test_the_first_bad_line_of_a_large_file_is_named(tmp_path: Path) -> None:
    rows = [f"A{i},BTCZ23,{i % 7 + 1}" for i in range(200_000)]
    rows[123_456] = "A123456,BTCZ23,1.5"  # line 123,458 (header = line 1)
    rows[150_000] = "A150000,BTCZ23,x"
    path = tmp_path / "positions.csv"
    path.write_text("account,instrument,quantity\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as caught:
        read_positions(path, CATALOGUE)
    assert (caught.value.line, caught.value.field) == (123_458, "quantity")
    rows[123_456] = "A123456,BTCZ23,1"
    rows.insert(10, "")  # a blank line still counts as a line
    path.write_text("account,instrument,quantity\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as caught:
        read_positions(path, CATALOGUE)
    assert caught.value.line == 150_003 and "'x' is not a number" in str(caught.value)


def test_a_duplicate_in_a_large_file_names_both_lines(tmp_path: Path) -> None:
    rows = [f"A{i},BTCZ23,1" for i in range(50_000)] + ["A7,BTCZ23,2"]
    path = tmp_path / "positions.csv"
    path.write_text("account,instrument,quantity\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="line 50002 field 'instrument': duplicate row .*first on line 9"):
        read_positions(path, CATALOGUE)
    book, warnings = read_positions(path, CATALOGUE, sum_duplicates=True)
    assert book.quantity[book.accounts.index("A7"), 0] == 3
    assert "A7 BTCZ23 (lines 9 and 50002)" in warnings[0]


def test_one_long_price_table_equals_the_folder(tmp_path: Path) -> None:
    folder = PROJECT_DATA / "market"
    names = ["btc_usd", "eth_usd"]
    series = load_folder(folder, names)
    dates = np.concatenate([series.get(name).dates for name in names])
    table = pa.table({"date": dates, "series": np.repeat(names, [series.get(n).dates.size for n in names]),
                      "close": np.concatenate([series.get(name).closes for name in names])})
    for path in (tmp_path / "prices.parquet", tmp_path / "prices.csv"):
        if path.suffix == ".parquet":
            pq.write_table(table, path)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, path)
        long = load_folder(path, names)
        for name in names:
            assert np.array_equal(long.get(name).dates, series.get(name).dates)
            assert np.array_equal(long.get(name).closes, series.get(name).closes)


def test_a_long_table_refuses_a_repeated_date_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("date,series,close\n2023-01-02,a,1\n2023-01-02,b,5\n2023-01-03,a,1.1\n2023-01-02,b,5.1\n")
    with pytest.raises(InputError, match=r"line 5 field 'date': date 2023-01-02 is not after .* of series 'b'"):
        load_folder(path)


def test_parquet_price_files_sit_beside_csv_ones(tmp_path: Path) -> None:
    pq.write_table(pa.table({"date": np.array(["2023-01-02", "2023-01-03"], dtype="datetime64[D]"),
                             "close": [10.0, 11.0]}), tmp_path / "x.parquet")
    (tmp_path / "y.csv").write_text("date,close\n2023-01-02,3\n2023-01-03,4\n")
    market = load_folder(tmp_path)
    assert sorted(market.series) == ["x", "y"] and market.get("x").closes.tolist() == [10.0, 11.0]
    (tmp_path / "x.csv").write_text("date,close\n2023-01-02,3\n")
    with pytest.raises(InputError, match="both a CSV and a Parquet file"):
        load_folder(tmp_path)
    assert load_series(tmp_path / "x.parquet").dates.size == 2


def _price_folder(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-03-01"))
    paths = []
    for k in range(count):
        path = folder / f"s{k:02d}.csv"
        path.write_text("date,close\n" + "".join(f"{day},{100 + k + i / 8}\n" for i, day in enumerate(days)))
        paths.append(path)
    return paths


def test_a_folder_read_in_one_batch_equals_each_file_read_alone(tmp_path: Path) -> None:
    paths = _price_folder(tmp_path / "market", 12)
    rows = [line.split(",") for line in paths[3].read_text().splitlines()[1:]]
    paths[3].write_text("close,date\n" + "".join(f"{close},{day}\n" for day, close in rows))  # not alike: alone
    together = load_folder(tmp_path / "market")
    for path in paths:
        alone = load_series(path)
        assert np.array_equal(together.get(path.stem).dates, alone.dates)
        assert np.array_equal(together.get(path.stem).closes, alone.closes)
    assert together.get("s03").closes[0] == 103.0


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-20,abc", r"s07\.csv line 21 field 'close': 'abc' is not a number"),
    ("2024-01-20,1,2", r"s07\.csv line 21: expected 2 fields, found 3"),
    ("2024-01-20,nan", r"s07\.csv line 21 field 'close': 'nan' is not a finite number"),
])
def test_a_bad_file_in_a_batch_is_named_with_its_line(tmp_path: Path, text: str, expected: str) -> None:
    paths = _price_folder(tmp_path / "market", 12)
    rows = paths[7].read_text().splitlines()
    rows[20] = text  # line 21: the header is line 1
    paths[7].write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=expected):
        load_folder(tmp_path / "market")


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["float64", "int64", "bool", "date32", "string"]),
       chunks=st.lists(st.lists(st.integers(-10**6, 10**6), max_size=40), min_size=1, max_size=4),
       cut=st.integers(0, 5))
def test_numpy_of_reads_the_buffers_as_pyarrow_converts_them(kind, chunks, cut):
    """``numpy_of`` (buffers, no pandas import) equals pyarrow's own conversion, on chunked arrays whose chunks
    are slices (a non-zero offset), for every kind the readers produce."""
    from tokenclear.columns import numpy_of

    def typed(values):
        if kind == "bool":
            return pa.array([v % 3 == 0 for v in values], pa.bool_())
        if kind == "string":
            return pa.array([f"a{v}" for v in values], pa.string())
        return pa.array(values, pa.int64()).cast(pa.float64() if kind == "float64" else
                                                 pa.int32() if kind == "date32" else pa.int64()).cast(
            {"float64": pa.float64(), "int64": pa.int64(), "date32": pa.date32()}[kind])

    arrays = [typed(values).slice(min(cut, len(values))) for values in chunks]
    column = pa.chunked_array(arrays, type=arrays[0].type)
    expected = np.concatenate([a.to_numpy(zero_copy_only=False) for a in arrays]) if len(column) else None
    got = numpy_of(column)
    assert len(got) == len(column)
    if expected is not None:
        np.testing.assert_array_equal(got, expected.astype(got.dtype))
