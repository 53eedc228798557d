"""No silent wrong answers: one output contract in every format, warnings in each, refusals with their reason."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

import numpy as np
import pytest

from tests.test_cli import ROOT, contract, csv_rows, tokenclear, tokenclear_env
from tokenclear import __version__ as tokenclear_version
from tokenclear.errors import InputError
from tokenclear.margin.backtest import Backtest, christoffersen, kupiec, traffic_light
from tokenclear.market.settlements import load_settlements

pytestmark = pytest.mark.integration


def test_version():
    done = tokenclear("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"tokenclear {tokenclear_version}"


def test_warnings_reach_every_format():
    args = ["margin", "--as-of", "2023-03-10"]  # a Friday, and crypto has less history than the lookback
    table = tokenclear(*args)
    body = contract(tokenclear(*args, "--format", "json").stdout, "margin")
    preamble, _ = csv_rows(tokenclear(*args, "--format", "csv").stdout)
    for text in ("fewer than the 1250-observation lookback", "holiday add-on: BTC-PERP"):
        assert any(text in warning for warning in body["warnings"]), body["warnings"]
        assert any(line.startswith("warning:") and text in line for line in preamble)
        assert text in " ".join(table.stderr.split())


def test_vm_refuses_dates_out_of_order():
    done = tokenclear("vm", "--from", "2023-03-13", "--to", "2023-03-09", "--format", "json")
    assert done.returncode == 2 and "is not after --from 2023-03-13" in " ".join(done.stderr.split())
    assert done.stdout == ""


def test_vm_from_published_settlement_prices(tmp_path):
    positions = tmp_path / "positions.csv"
    positions.write_text("account,instrument,quantity\nA,BTCZ23,3\nB,BTCZ23,-3\nA,ETHZ23,-2\nB,ETHZ23,2\n")
    settlements = tmp_path / "settlements.csv"
    settlements.write_text("date,instrument,price\n2023-03-09,BTCZ23,20150.5\n2023-03-13,BTCZ23,24410.25\n")
    done = tokenclear("vm", "--from", "2023-03-09", "--to", "2023-03-13", "--positions", str(positions),
                      "--settlements", str(settlements), "--format", "json")
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "vm")
    prices = {row["instrument"]: row for row in body["settlement_prices"]}
    assert (prices["BTCZ23"]["price_from"], prices["BTCZ23"]["price_to"]) == ("20150.5", "24410.25")
    eth = (50 * (Decimal(prices["ETHZ23"]["price_to"]) - Decimal(prices["ETHZ23"]["price_from"]))).quantize(
        Decimal("0.01"))  # one ETH contract's variation (50 ETH), to the cent
    # A is long 3 BTC futures (5 BTC each): it gains 15 x the settlement move, paid to it (VM < 0)
    expected_a = -(3 * 5 * (Decimal("24410.25") - Decimal("20150.5"))) + 2 * eth
    vm = {row["account"]: Decimal(row["vm"]) for row in body["rows"]}
    assert vm["A"] == expected_a and vm["B"] == -vm["A"]  # a matched book nets to zero
    assert any("no settlement price for ETHZ23" in warning for warning in body["warnings"])


def test_settlement_file_errors_name_line_and_field(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("date,instrument,price\n2023-03-09,BTCZ23,abc\n")
    with pytest.raises(InputError, match="line 2.*price"):
        load_settlements(path)
    path.write_text("date,instrument,price\n2023-03-09,BTCZ23,1\n2023-03-09,BTCZ23,2\n")
    with pytest.raises(InputError, match="line 3.*a second price"):
        load_settlements(path)
    path.write_text("date,instrument,price\n2023-03-09,NOPE,1\n")
    with pytest.raises(InputError, match="not in the catalogue"):
        load_settlements(path, {"BTCZ23"})


@pytest.fixture
def unknown_underlying(tmp_path):
    """A data folder whose catalogue lists a future on a series without a row in underlyings.csv or
    concentration.csv."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data, ignore=shutil.ignore_patterns("demo"))
    shutil.copy(data / "market" / "btc_usd.csv", data / "market" / "newcoin_usd.csv")
    with (data / "instruments.csv").open("a") as handle:
        handle.write("NEWZ23,future,newcoin_usd,1,USD,2023-12-29,,,,,listed,,\n")
    positions = tmp_path / "positions.csv"
    positions.write_text("account,instrument,quantity\nA,NEWZ23,2\n")
    return data, positions


def test_an_underlying_without_reference_data_is_refused_or_defaulted_with_a_warning(unknown_underlying):
    data, positions = unknown_underlying
    env = {"TOKENCLEAR_DATA_DIR": str(data)}
    args = ["margin", "--positions", str(positions), "--as-of", "2023-08-25", "--stress-period", "none"]
    refused = tokenclear_env(args, env)
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "underlyings.csv" in message and "newcoin_usd" in message, refused.stderr
    assert "--allow-defaults" in message
    allowed = tokenclear_env([*args, "--allow-defaults", "--format", "json"], env)
    assert allowed.returncode == 0, allowed.stderr
    warnings = contract(allowed.stdout, "margin")["warnings"]
    assert any("underlyings.csv has no row for newcoin_usd" in one for one in warnings)
    assert any("concentration.csv has no row for newcoin_usd: no concentration add-on" in one for one in warnings)
    preamble, _ = csv_rows(tokenclear_env([*args, "--allow-defaults", "--format", "csv"], env).stdout)
    assert any("underlyings.csv has no row for newcoin_usd" in line for line in preamble)
    # without the concentration add-on the concentration file is not needed, the underlyings file still is
    refused = tokenclear_env([*args, "--no-concentration-addon"], env)
    assert refused.returncode == 2 and "underlyings.csv" in " ".join(refused.stderr.split())


def test_a_green_light_with_clustered_exceptions_fails_on_independence():
    hits = np.zeros(1000, dtype=bool)
    hits[100:108] = True  # eight exceptions in a row, none in the last 250 observations
    k_lr, k_p = kupiec(8, 1000, 0.01)
    c_lr, c_p = christoffersen(hits)
    zone = traffic_light(int(hits[-250:].sum()), 250, 0.01)
    result = Backtest(np.arange(1000), np.ones(1000), np.zeros(1000), hits, 0.99, k_lr, k_p, c_lr, c_p, zone, 0, 1.0)
    assert zone == "green" and k_p > 0.05 and c_p < 1e-5
    assert result.verdict == "fail" and result.failed[0].startswith("independence (Christoffersen p =")
    summary = result.summary()
    assert summary["verdict"] == "fail" and "independence" in summary["failed"]
    spread = np.zeros(1000, dtype=bool)
    spread[[50, 200, 350, 500, 650, 800]] = True
    k_lr, k_p = kupiec(6, 1000, 0.01)
    c_lr, c_p = christoffersen(spread)
    calm = Backtest(np.arange(1000), np.ones(1000), np.zeros(1000), spread, 0.99, k_lr, k_p, c_lr, c_p,
                    traffic_light(int(spread[-250:].sum()), 250, 0.01), 0, 1.0)
    assert calm.verdict == "pass" and calm.failed == []


def test_the_per_contract_file_is_the_margin_of_one_lot(tmp_path):
    done = tokenclear("params", "hsvar", "--per-contract", "--as-of", "2023-08-25", "--format", "json")
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "params hsvar")
    rows = {row["instrument"]: row for row in body["rows"]}
    assert "ESH19" not in rows and any("left out" in warning and "ESH19" in warning for warning in body["warnings"])
    # one long lot of BTCZ23 margined alone, as `margin` would margin it, is the file's figure
    positions = tmp_path / "one.csv"
    positions.write_text("account,instrument,quantity\nL,BTCZ23,1\nS,BTCZ23,-1\n")
    alone = tokenclear("margin", "--positions", str(positions), "--as-of", "2023-08-25", "--no-concentration-addon",
                       "--format", "json")
    margin = {row["account"]: row["margin"] for row in contract(alone.stdout, "margin")["rows"]}
    assert (rows["BTCZ23"]["long"], rows["BTCZ23"]["short"]) == (margin["L"], margin["S"])
    # a micro contract (0.1 BTC) is a fiftieth of the 5-BTC contract of the same month, to the cent
    assert abs(Decimal(rows["MBTZ23"]["long"]) * 50 - Decimal(rows["BTCZ23"]["long"])) <= Decimal("0.50")


@pytest.mark.parametrize("form", ["json", "csv"])
def test_published_span_parameters_read_back_give_the_calibrated_margin(tmp_path, form):
    """`params span` one row per product; `margin --params FILE` on that file equals the run that calibrated it."""
    path = tmp_path / f"span.{form}"
    done = tokenclear("params", "span", "--as-of", "2023-03-10", "--format", form, "--out", str(path))
    assert done.returncode == 0, done.stderr
    args = ["margin", "--method", "span", "--as-of", "2023-03-10", "--apc", "buffer", "--format", "json"]
    calibrated = contract(tokenclear(*args).stdout, "margin")["rows"]
    published = tokenclear(*args, "--params", str(path))
    assert published.returncode == 0, published.stderr
    body = contract(published.stdout, "margin")
    assert [row["margin"] for row in body["rows"]] == [row["margin"] for row in calibrated]
    assert any("not calibrated" in warning for warning in body["warnings"])
    assert body["metadata"]["inputs"]["span_parameters"]["sha256"]


def test_published_span_parameters_refuse_what_they_cannot_price(tmp_path):
    path = tmp_path / "span.json"
    tokenclear("params", "span", "--as-of", "2023-03-10", "--out", str(path))
    body = json.loads(path.read_text())
    body["rows"] = [row for row in body["rows"] if row["product"] != "btc_usd"]
    path.write_text(json.dumps(body))
    done = tokenclear("margin", "--method", "span", "--as-of", "2023-03-10", "--params", str(path))
    assert done.returncode == 2 and "no product btc_usd" in " ".join(done.stderr.split())
    done = tokenclear("margin", "--method", "hsvar", "--params", str(path))
    assert done.returncode == 2 and "use --method span" in " ".join(done.stderr.split())
    body["rows"][0]["price_scan"] = "wide"
    path.write_text(json.dumps(body))
    done = tokenclear("margin", "--method", "span", "--params", str(path))
    assert done.returncode == 2 and "line 2" in done.stderr and "price_scan" in done.stderr


def test_positions_by_exchange_symbology_and_gross_quantities(tmp_path):
    """The same book written as a clearing firm's position file (exchange, contract, expiry, put/call, strike;
    gross long and short) margins exactly as the instrument-named file."""
    named = tmp_path / "named.csv"
    named.write_text("account,instrument,quantity\nA,BTCZ23,3\nA,ESZ23-C4500,-2\nB,ESZ23,1\nB,6EZ23,-4\n")
    firm = tmp_path / "firm.csv"
    firm.write_text("account,exchange,contract,expiry,put_call,strike,long,short\n"
                    "A,CME,BTC,202312,,,5,2\nA,CME,ES,2023-12-15,C,4500,0,2\nB,cme,es,20231215,,,1,0\n"
                    "B,CME,6E,202312,,,0,4\n")
    args = ["margin", "--as-of", "2023-08-25", "--format", "json"]
    by_name = contract(tokenclear(*args, "--positions", str(named)).stdout, "margin")["rows"]
    done = tokenclear(*args, "--positions", str(firm))
    assert done.returncode == 0, done.stderr
    assert contract(done.stdout, "margin")["rows"] == by_name


def test_duplicate_rows_are_refused_or_summed_with_a_warning(tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text("account,instrument,quantity\nA,BTCZ23,2\nA,BTCZ23,1\n")
    once = tmp_path / "once.csv"
    once.write_text("account,instrument,quantity\nA,BTCZ23,3\n")
    args = ["margin", "--as-of", "2023-08-25", "--format", "json"]
    refused = tokenclear(*args, "--positions", str(twice))
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "line 3" in message and "--sum-duplicates" in message
    summed = contract(tokenclear(*args, "--positions", str(twice), "--sum-duplicates").stdout, "margin")
    assert summed["rows"] == contract(tokenclear(*args, "--positions", str(once)).stdout, "margin")["rows"]
    assert any("duplicate rows summed: A BTCZ23 (lines 2 and 3)" in warning for warning in summed["warnings"])


@pytest.mark.parametrize("row, message", [
    ("A,CME,BTC,202401,,,1,0", "CME BTC 202401: no contract in the catalogue matches"),
    ("A,CME,ES,2023/12,,,1,0", "is not YYYYMM, YYYYMMDD or YYYY-MM-DD"),
    ("A,CME,ES,202312,X,4500,1,0", "put_call 'X' is not P or C"),
    ("A,CME,BTC,202312,,,1,-1", "gross long and short are >= 0"),
])
def test_a_bad_symbology_row_names_line_and_field(tmp_path, row, message):
    path = tmp_path / "firm.csv"
    path.write_text(f"account,exchange,contract,expiry,put_call,strike,long,short\n{row}\n")
    done = tokenclear("margin", "--positions", str(path))
    assert done.returncode == 2 and message in " ".join(done.stderr.split()) and "line 2" in done.stderr


def test_too_few_exceptions_is_conservative_not_a_failure():
    hits = np.zeros(1000, dtype=bool)  # no exception in 1,000 tests at 99%: Kupiec p = 4e-5, on the safe side
    k_lr, k_p = kupiec(0, 1000, 0.01)
    c_lr, c_p = christoffersen(hits)
    result = Backtest(np.arange(1000), np.ones(1000), np.zeros(1000), hits, 0.99, k_lr, k_p, c_lr, c_p, "green", 0,
                      1.0)
    assert k_p < 0.05 and result.conservative and result.verdict == "pass"
    hits[:40] = True  # 40 in 1,000 (4x the expected 10), spread evenly over the first 400
    hits[:40], hits[np.arange(0, 400, 10)] = False, True
    k_lr, k_p = kupiec(40, 1000, 0.01)
    c_lr, c_p = christoffersen(hits)
    result = Backtest(np.arange(1000), np.ones(1000), np.zeros(1000), hits, 0.99, k_lr, k_p, c_lr, c_p, "green", 0,
                      1.0)
    assert not result.conservative and result.failed[0].startswith("coverage (Kupiec p =")


def test_margin_values_contracts_at_published_settlement_prices(tmp_path):
    """A published settlement 10% above the term-structure price on the index close scales a linear future's
    margin by 1.1 (relative moves: the loss of every scenario is proportional to the price)."""
    positions = tmp_path / "one.csv"
    positions.write_text("account,instrument,quantity\nL,ESZ23,2\nM,BTCZ23,1\n")
    vm = contract(tokenclear("vm", "--from", "2023-08-24", "--to", "2023-08-25", "--positions", str(positions),
                             "--format", "json").stdout, "vm")
    index_price = Decimal(next(row["price_to"] for row in vm["settlement_prices"] if row["instrument"] == "ESZ23"))
    published = (index_price * Decimal("1.1")).quantize(Decimal("0.01"))
    settlements = tmp_path / "settlements.csv"
    settlements.write_text(f"date,instrument,price\n2023-08-25,ESZ23,{published}\n")
    args = ["margin", "--positions", str(positions), "--as-of", "2023-08-25", "--format", "json"]
    plain_run = {row["account"]: Decimal(row["margin"]) for row in contract(tokenclear(*args).stdout, "margin")["rows"]}
    done = tokenclear(*args, "--settlements", str(settlements))
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "margin")
    at_settlement = {row["account"]: Decimal(row["margin"]) for row in body["rows"]}
    ratio = at_settlement["L"] / plain_run["L"]
    assert abs(ratio - published / index_price) < Decimal("0.0001")
    assert at_settlement["M"] == plain_run["M"]  # BTCZ23 has no published price: the index close, and a warning
    assert any("no settlement price on 2023-08-25 for BTCZ23" in warning for warning in body["warnings"])
    assert body["metadata"]["inputs"]["settlements"]["sha256"]


def test_margin_writes_parquet_with_the_json_rows_and_metadata(tmp_path):
    import pyarrow.parquet as pq

    args = ["margin", "--as-of", "2023-03-10"]
    body = contract(tokenclear(*args, "--format", "json").stdout, "margin")
    out = tmp_path / "margin.parquet"
    done = tokenclear(*args, "--format", "parquet", "--out", str(out))
    assert done.returncode == 0 and f"wrote {out}" in " ".join(done.stderr.split())
    table = pq.read_table(out)
    assert str(table.schema.field("margin").type).startswith("decimal128")
    rows = table.to_pylist()
    assert [row["account"] for row in rows] == [row["account"] for row in body["rows"]]
    for ours, theirs in zip(rows, body["rows"], strict=True):
        assert ours["margin"] == Decimal(theirs["margin"]) and ours["base"] == Decimal(theirs["base"])
        assert ours["worst_scenario"] == theirs["worst_scenario"]
    header = json.loads(table.schema.metadata[b"tokenclear"])
    assert header["tokenclear"]["command"] == "margin" and header["metadata"]["as_of"] == "2023-03-10"
    assert header["warnings"] == body["warnings"] and any("holiday add-on" in one for one in header["warnings"])


def test_parquet_needs_a_file_and_the_table_is_not_written_to_one(tmp_path):
    done = tokenclear("margin", "--format", "parquet")
    assert done.returncode != 0 and "--format" in done.stderr and "--out" in done.stderr
    done = tokenclear("margin", "--out", str(tmp_path / "margin.txt"))
    assert done.returncode != 0 and "--out" in done.stderr and not (tmp_path / "margin.txt").exists()


def test_the_fast_json_encoder_writes_what_the_contract_walk_writes():
    import datetime as dt
    from pathlib import Path

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tokenclear.cli.output import Report

    scalars = st.one_of(
        st.none(), st.booleans(), st.text(max_size=8), st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-2**70, max_value=2**70), st.decimals(allow_nan=False, allow_infinity=False, places=2),
        st.dates().map(lambda day: day), st.just(Path("/data/positions.csv")),
        st.floats(allow_nan=False, width=64).map(np.float64), st.integers(-2**60, 2**60).map(np.int64),
        st.dates().map(lambda day: np.datetime64(day.isoformat(), "D")),
        st.datetimes(max_value=dt.datetime(2100, 1, 1)))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)), inner,
                                                     max_size=3)), max_leaves=12)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.dictionaries(st.text(max_size=4), values, max_size=4), max_size=4),
           st.dictionaries(st.text(max_size=4), values, max_size=3), values)
    def agree(rows, metadata, section):
        report = Report("margin", rows, metadata, ["a warning"], {"total": section})
        assert json.loads(report.to_json_bytes()) == json.loads(json.dumps(report.to_json(), indent=2))

    agree()


def test_a_long_list_of_missing_rows_is_named_short():
    from tokenclear.runner import listed

    names = [f"u{k:03d}" for k in range(500)]
    assert listed(names[:3]) == "u000, u001, u002"
    assert listed(names) == ", ".join(names[:12]) + " and 488 more (500 in all)"
