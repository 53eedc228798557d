"""The command line end to end, through the installed ``tokenclear`` entry point and ``make demo``."""

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tokenclear import __version__ as tokenclear_version
from tokenclear.cli.output import cell

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def tokenclear(*args: str) -> subprocess.CompletedProcess[str]:
    return tokenclear_env(list(args), {})


def tokenclear_env(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command with extra environment variables."""
    executable = Path(sys.executable).with_name("tokenclear")
    return subprocess.run([str(executable), *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, **env})


MONEY = ("margin", "base", "holiday_addon", "history_addon", "concentration_addon", "stress_addon", "apc_addon",
         "net_option_value")


def contract(text: str, command: str) -> dict:
    """The JSON output contract (docs/output.md): an object with the version, metadata, warnings and rows;
    money as decimal strings, never a float."""
    body = json.loads(text)
    assert body["tokenclear"] == {"version": tokenclear_version, "command": command}
    assert isinstance(body["metadata"], dict) and isinstance(body["warnings"], list)
    for row in body["rows"]:
        for name in MONEY:
            if name in row:
                assert isinstance(row[name], str) and Decimal(row[name]).as_tuple().exponent == -2, (name, row)
    return body


def csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """(preamble lines without '# ', rows) of a CSV output."""
    lines = text.splitlines()
    preamble = [line[2:] for line in lines if line.startswith("# ")]
    return preamble, list(csv.DictReader(line for line in lines if not line.startswith("#")))


def test_margin_json_has_every_account_with_components():
    done = tokenclear("margin", "--method", "hsvar", "--as-of", "2023-03-10", "--format", "json")
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "margin")
    meta = body["metadata"]
    assert (meta["as_of"], meta["method"], meta["currency"], meta["classes"]) == (
        "2023-03-10", "hsvar", "USD", {"listed": {"confidence": 0.99, "mpor_days": 2}})
    assert meta["scenarios"] > 250 and meta["inputs"]["positions"]["sha256"] == hashlib.sha256(
        (ROOT / "data/demo/positions.csv").read_bytes()).hexdigest()
    assert any("stress period" in warning for warning in body["warnings"])
    rows = [{key: Decimal(value) if key in MONEY else value for key, value in row.items()} for row in body["rows"]]
    positions = (ROOT / "data/demo/positions.csv").read_text().splitlines()[1:]
    assert {row["account"] for row in rows} == {line.split(",")[0] for line in positions}
    for row in rows:
        assert row["method"] == "hsvar" and row["margin"] >= 0
        parts = (row["base"] + row["holiday_addon"] + row["history_addon"]
                 + row["concentration_addon"] + row["apc_addon"] - row["net_option_value"])
        assert abs(row["margin"] - max(parts, Decimal(0))) <= Decimal("0.05")  # long options' value is credited
    crypto = next(row for row in rows if row["account"] == "M01-HOUSE")
    assert crypto["holiday_addon"] > 0  # Friday: the weekend trades, cash waits until Monday
    big = next(row for row in rows if row["account"] == "M13-HOUSE")
    assert big["concentration_addon"] > 0


@pytest.mark.parametrize("method", ["fhs", "span", "asvar", "notional"])
def test_every_method_runs_from_the_cli(method):
    done = tokenclear("margin", "--method", method, "--format", "csv")
    assert done.returncode == 0, done.stderr
    preamble, rows = csv_rows(done.stdout)
    assert preamble[0] == f"tokenclear {tokenclear_version} margin" and f"method: {method}" in preamble
    assert list(rows[0])[:3] == ["account", "method", "margin"] and len(rows) > 10
    assert all(row["method"] == method for row in rows)
    json_rows = contract(tokenclear("margin", "--method", method, "--format", "json").stdout, "margin")["rows"]
    assert [{key: cell(value) for key, value in row.items()} for row in json_rows] == rows  # one contract


def test_bad_positions_exit_2_with_file_line_and_field(tmp_path):
    bad = tmp_path / "positions.csv"
    bad.write_text("account,instrument,quantity\nA,BTCZ23,1\nA,BTCZ5,2\n")
    done = tokenclear("margin", "--positions", str(bad))
    assert done.returncode == 2
    assert "line 3" in done.stderr and "instrument" in done.stderr and "BTCZ5" in done.stderr


def test_params_backtest_and_vm(tmp_path):
    out = tmp_path / "span.json"
    assert tokenclear("params", "span", "--as-of", "2023-03-10", "--out", str(out)).returncode == 0
    params = contract(out.read_text(), "params span")
    assert params["rows"] and {row["extreme_fraction"] for row in params["rows"]} == {0.35}
    assert {row["product"] for row in params["rows"]} >= {"btc_usd", "eth_usd", "spx"}
    done = tokenclear("params", "asvar", "--as-of", "2023-03-15")
    assert json.loads(done.stdout)["published"] == "2023-03-10"
    chart = tmp_path / "bt.png"
    done = tokenclear("backtest", "--lookback", "250", "--account", "M01-HOUSE", "--format", "json",
                      "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    body = contract(done.stdout, "backtest")
    summary = body["metadata"]
    assert summary["observations"] > 150 and summary["traffic_light"] in ("green", "yellow", "red")
    assert summary["verdict"] in ("pass", "fail") and len(body["rows"]) == summary["observations"]
    assert sum(row["exception"] for row in body["rows"]) == summary["exceptions"]
    assert summary["step"] == 2  # the MPOR: independent windows by default
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = tokenclear("vm", "--from", "2023-03-09", "--to", "2023-03-13", "--format", "json")
    rows = {row["account"]: row["vm"] for row in contract(done.stdout, "vm")["rows"]}
    assert rows["M01-HOUSE"] == "-" + rows["M01-CUST"]  # equal and opposite books


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_readme_demo_command_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert (ROOT / ".ci/run").read_text().strip().endswith("make test")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    done = subprocess.run(["make", "demo"], capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert "SVB failure and the USDC depeg weekend" in done.stdout
    assert "margin calls:" in done.stdout and "reconciliation: clean" in done.stdout
