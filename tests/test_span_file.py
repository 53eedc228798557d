"""SPAN from a CME risk-parameter file (expanded positional format, .pa2): its records read strictly, the margin
from its own risk arrays, worked out by hand here from the figures of ``data/span/sample.pa2``."""

from __future__ import annotations

import runpy
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_cli import ROOT, contract, csv_rows, tokenclear
from tokenclear.errors import InputError
from tokenclear.margin import span_arrays
from tokenclear.span_pa2 import _Line, read_risk_file

SAMPLE = ROOT / "data" / "span" / "sample.pa2"
HEADER = "account,exchange,contract,expiry,put_call,strike,long,short\n"

# the sample's figures (scripts/write_span_sample.py), one long contract, USD, loss > 0
ES_DEC = [0, 0, -5000, -5000, 5000, 5000, -10000, -10000, 10000, 10000, -15000, -15000, 15000, 15000, -15750, 15750]
ES_MAR = [0, 0, -5100, -5100, 5100, 5100, -10200, -10200, 10200, 10200, -15300, -15300, 15300, 15300, -16065, 16065]
NQ_DEC = [0, 0, -8000, -8000, 8000, 8000, -16000, -16000, 16000, 16000, -24000, -24000, 24000, 24000, -25200, 25200]
CALL_6000 = [-800, 700, -3000, -1500, 1500, 2500, -5800, -4600, 3000, 3600, -9000, -8000, 3800, 4200, -8800, 1600]
PUT_5800 = [-700, 600, 1300, 2000, -2200, -1000, 2500, 3000, -5000, -4000, 3200, 3500, -8500, -7600, 1400, -7500]
CALL_7000 = [-5, 3, -8, -2, 4, 6, -15, -6, 5, 8, -30, -20, 6, 9, -40, 10]


def scan(*legs: tuple[int, list[int]]) -> int:
    """The largest of the 16 scenario losses of ``(quantity, array)`` legs, never < 0."""
    return max(0, max(sum(q * array[k] for q, array in legs) for k in range(16)))


def run(tmp_path, rows: str, *extra: str):
    path = tmp_path / "positions.csv"
    path.write_text(HEADER + rows)
    return tokenclear("margin", "--method", "span", "--params", str(SAMPLE), "--positions", str(path), *extra)


def by_account(body: dict) -> dict[str, dict]:
    return {row["account"]: row for row in body["rows"]}


def test_the_sample_file_is_what_its_writer_writes(tmp_path):
    """The committed sample is the writer's output (the figures above are the file's)."""
    namespace = runpy.run_path(str(ROOT / "scripts" / "write_span_sample.py"), run_name="not_main")
    out = tmp_path / "sample.pa2"
    namespace["main"].__globals__["OUT"] = out
    namespace["main"]()
    assert out.read_text() == SAMPLE.read_text()


def test_worked_example_scan_spreads_delivery_credit_som_and_option_value(tmp_path):
    done = run(tmp_path, "A1,CME,ES,202612,,,2,0\nA1,CME,ES,202703,,,0,1\n"
                         "A2,CME,ES,202612,,,1,0\nA2,CME,NQ,202612,,,0,1\n"
                         "A3,CME,ES,202612,C,7000,0,2\n"
                         "A4,CME,ES,202612,C,6000,1,0\nA4,CME,ES,202612,P,5800.0,0,1\n", "--format", "json")
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "margin")
    rows = by_account(body)
    assert body["metadata"]["business_date"] == "2026-11-30" and body["metadata"]["currency"] == "USD"

    # A1: 2 Dec long, 1 Mar short. One calendar spread (200 a spread); of Dec's delta 2, 1 consumed by the
    # spread (10 a delta) and 1 left outright (50 a delta) in the delivery month
    a1_scan = scan((2, ES_DEC), (-1, ES_MAR))
    assert a1_scan == 2 * 15750 - 16065
    a1 = rows["A1"]
    assert Decimal(a1["component_scan_risk"]) == a1_scan
    assert Decimal(a1["component_intra_spread_charge"]) == 200
    assert Decimal(a1["component_spot_month_charge"]) == 10 * 1 + 50 * 1
    assert Decimal(a1["margin"]) == a1_scan + 200 + 60

    # A2: ES long against NQ short, one spread at 50% of each leg's weighted price risk (scan less the time
    # risk, which is 0 for futures, per delta)
    es, nq = scan((1, ES_DEC)), scan((-1, NQ_DEC))
    credit = Decimal("0.5") * (es + nq)
    a2 = rows["A2"]
    assert Decimal(a2["component_inter_spread_credit"]) == credit
    assert Decimal(a2["margin"]) == es + nq + 50 - credit

    # A3: two short far calls: the short option minimum (500 a short option) beats the tiny scan risk; their
    # value (2 x 0.40 points x 250) is charged on top
    a3 = rows["A3"]
    assert Decimal(a3["component_short_option_minimum"]) == 1000
    assert Decimal(a3["net_option_value"]) == Decimal("-200.00")
    assert Decimal(a3["margin"]) == 1000 + 200

    # A4: long call, short put; deltas 0.45 and +0.30 (short a -0.30 put) left outright in Dec (50 a delta);
    # the call's value credited and the put's charged (125.50 and 98.25 points x 250)
    a4_scan = scan((1, CALL_6000), (-1, PUT_5800))
    risk = max(Decimal(a4_scan) + Decimal("0.75") * 50, Decimal(500))
    nov = (Decimal("125.50") - Decimal("98.25")) * 250
    a4 = rows["A4"]
    assert Decimal(a4["base"]) == risk and Decimal(a4["net_option_value"]) == nov
    assert Decimal(a4["margin"]) == risk - nov


def test_calendar_spread_either_way_round_and_only_up_to_the_smaller_leg(tmp_path):
    done = run(tmp_path, "B1,CME,ES,202612,,,0,3\nB1,CME,ES,202703,,,1,0\n", "--format", "json")
    row = by_account(contract(done.stdout, "margin"))["B1"]
    assert Decimal(row["component_intra_spread_charge"]) == 200  # one spread, two Dec left outright
    assert Decimal(row["component_spot_month_charge"]) == 10 * 1 + 50 * 2


def test_csv_has_the_json_rows_and_the_preamble(tmp_path):
    rows = "A1,CME,ES,202612,,,2,0\nA1,CME,ES,202703,,,0,1\n"
    body = contract(run(tmp_path, rows, "--format", "json").stdout, "margin")
    preamble, table = csv_rows(run(tmp_path, rows, "--format", "csv").stdout)
    assert [dict(row) for row in table] == [{k: "" if v is None else str(v) for k, v in row.items()}
                                            for row in body["rows"]]
    assert any(line.startswith("business_date: 2026-11-30") for line in preamble)
    assert any(line.startswith("warning: SPAN risk arrays published by CME") for line in preamble)


@pytest.mark.parametrize("extra, message", [
    (["--prices", "data/market"], "--prices do(es) not apply to a published SPAN file"),
    (["--apc", "buffer"], "--apc do(es) not apply"),
    (["--as-of", "2026-11-27"], "the SPAN file is of business day 2026-11-30, not 2026-11-27"),
])
def test_settings_that_cannot_apply_are_refused(tmp_path, extra, message):
    done = run(tmp_path, "A1,CME,ES,202612,,,1,0\n", *extra)
    assert done.returncode == 2 and message in " ".join(done.stderr.split())


@pytest.mark.parametrize("rows, message", [
    ("A,CME,ES,202609,,,1,0\n", "CME ES 202609: no contract in the SPAN file of 2026-11-30 matches"),
    ("A,CME,ES,202612,C,6100,1,0\n", "CME ES 202612 C 6100: no contract in the SPAN file"),
    ("A,CME,ES,202612,,,1,0\nA,CME,ES,202612,,,1,0\n", "duplicate row"),
])
def test_positions_the_file_cannot_margin_are_refused_with_line_and_field(tmp_path, rows, message):
    done = run(tmp_path, rows)
    assert done.returncode == 2 and message in " ".join(done.stderr.split()) and "line" in done.stderr


def test_duplicates_summed_on_request_with_a_warning(tmp_path):
    once = by_account(contract(run(tmp_path, "A,CME,ES,202612,,,2,0\n", "--format", "json").stdout, "margin"))
    twice = contract(run(tmp_path, "A,CME,ES,202612,,,1,0\nA,CME,ES,202612,,,1,0\n", "--sum-duplicates",
                         "--format", "json").stdout, "margin")
    assert by_account(twice)["A"]["margin"] == once["A"]["margin"]
    assert any("duplicate rows summed" in warning for warning in twice["warnings"])


def test_positions_named_by_instrument_are_refused(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("account,instrument,quantity\nA,ESZ6,1\n")
    done = tokenclear("margin", "--method", "span", "--params", str(SAMPLE), "--positions", str(path))
    assert done.returncode == 2 and "named by exchange symbology" in done.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda lines: [line.replace("05000-05000-05000+", "05000-0X000-05000+", 1) if line.startswith("81CMEES")
                    else line for line in lines], "line 10 field 'array value 4'"),
    (lambda lines: [line for line in lines if not (line.startswith("82") and "202703" in line)],
     "type 81 record without its type 82 record"),
    (lambda lines: lines + ["Q something"], "unknown record type 'Q '"),
    (lambda lines: [line.replace("U2", "U1") if line.startswith("0 ") else line for line in lines],
     "only the expanded unpacked format (U2) is read"),
    (lambda lines: [line for line in lines if not line.startswith("P CMEES        OOF")],
     "has no type P record"),
    (lambda lines: [line.replace("0001A020001B", "0001A030001B") if line.startswith("C ") else line
                    for line in lines], "tier 3 is not an intra-commodity tier of ES"),
])
def test_a_bad_file_names_the_line_and_field(tmp_path, edit, message):
    path = tmp_path / "bad.pa2"
    path.write_text("\n".join(edit(SAMPLE.read_text().splitlines())) + "\n")
    with pytest.raises(InputError) as error:
        read_risk_file(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_field_readings_agree_with_records_of_a_published_cme_file():
    """Records of CME's 2025-06-20 file (CBOT soybean meal, quoted in public parsers): the deep in-the-money
    July 145 call settles at its intrinsic value, the July future's settlement less the strike, which checks the
    81 settlement, the 82 settlement and strike columns and the P record's decimals together."""
    future = _Line(ROOT, 1, "81CBT06        06        FUT 202507            000000000000+00000+00567-00567-00567+"
                           "00567+01133-01133-01133+00000000284100N")
    call = _Line(ROOT, 2, "82CBT06        06        OOFC202507   202507   000014500000+00000+00000+00000+00000+"
                         "00000+00000+00000+002500000139100++10000+C")
    prices = _Line(ROOT, 3, "P CBT06        OOFSOYBEAN MEAL OP003000  000010000000000000000001USD$STD 00AMERSOYBEAN "
                           "MEAL OPTIONS Long dated    YFEQTY DELIV")
    decimals, strike_decimals = prices.integer(34, 36, "s"), prices.integer(37, 39, "k")
    settlement_future = future.number(109, 122, "settlement", decimals)
    strike = call.number(48, 54, "strike", strike_decimals)
    settlement_call = call.number(111, 117, "settlement", decimals, sign=118)
    assert (settlement_future, strike, settlement_call) == (Decimal("284.1"), Decimal(145), Decimal("139.1"))
    assert settlement_call == settlement_future - strike
    assert prices.number(42, 55, "contract value factor", 7) == 100  # 100 short tons
    assert call.number(120, 124, "current delta", 4, sign=125) == 1  # deep in the money
    # the future's 2/3 move is 1,133 USD a contract: a scan range of 1,700 USD (17 USD a ton), risk arrays in
    # whole USD (the record's decimal locator blank)
    assert [future.number(55 + 6 * i, 59 + 6 * i, "a", sign=60 + 6 * i) for i in (6, 8)] == [-1133, 1133]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=6, max_size=6), st.integers(1, 4))
def test_the_requirement_scales_with_the_portfolio(quantities, times):
    """Every SPAN step (scan, spread counts, delivery, credits, SOM) is positively homogeneous: n times the
    positions, n times the risk."""
    file = read_risk_file(SAMPLE)
    q = np.array([quantities], dtype=np.int64)
    one = span_arrays.margin(file, file.contracts, q)
    many = span_arrays.margin(file, file.contracts, q * times)
    assert np.allclose(many.risk, one.risk * times, rtol=1e-12, atol=1e-9)
    assert np.allclose(many.net_option_value, one.net_option_value * times)
    assert (one.risk >= 0).all()


def test_tiered_scanning_sums_each_scan_tier_worst_loss(tmp_path):
    """With a type S record making Dec and Mar their own scan tiers, the calendar spread no longer nets in the
    scan: each tier's worst loss counts (Dec long on the extreme down move, Mar short on the extreme up)."""
    scan_tiers = "S ES    1002" + "01202612202612" + "02202703202703"
    lines = SAMPLE.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("3 ES"))
    path = tmp_path / "tiered.pa2"
    path.write_text("\n".join(lines[:at + 1] + [scan_tiers] + lines[at + 1:]) + "\n")
    positions = tmp_path / "positions.csv"
    positions.write_text(HEADER + "A1,CME,ES,202612,,,2,0\nA1,CME,ES,202703,,,0,1\n")
    done = tokenclear("margin", "--method", "span", "--params", str(path), "--positions", str(positions),
                      "--format", "json")
    row = by_account(contract(done.stdout, "margin"))["A1"]
    assert Decimal(row["component_scan_risk"]) == scan((2, ES_DEC)) + scan((-1, ES_MAR))
    assert scan((2, ES_DEC)) + scan((-1, ES_MAR)) > scan((2, ES_DEC), (-1, ES_MAR))
