"""The command line end to end, through the installed ``tokenclear`` entry point and ``make demo``."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def tokenclear(*args: str) -> subprocess.CompletedProcess[str]:
    return tokenclear_env(list(args), {})


def tokenclear_env(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command with extra environment variables."""
    executable = Path(sys.executable).with_name("tokenclear")
    return subprocess.run([str(executable), *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, **env})


def test_margin_json_has_every_account_with_components():
    done = tokenclear("margin", "--method", "hsvar", "--as-of", "2023-03-10", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    positions = (ROOT / "data/demo/positions.csv").read_text().splitlines()[1:]
    assert {row["account"] for row in rows} == {line.split(",")[0] for line in positions}
    for row in rows:
        assert row["method"] == "hsvar" and row["margin_usd"] >= 0
        parts = (row["base_usd"] + row["holiday_addon_usd"] + row["history_addon_usd"]
                 + row["concentration_addon_usd"] + row["apc_usd"] - row["net_option_value_usd"])
        assert row["margin_usd"] == pytest.approx(max(parts, 0.0), abs=0.05)  # long options' value is credited
    crypto = next(row for row in rows if row["account"] == "M01-HOUSE")
    assert crypto["holiday_addon_usd"] > 0  # Friday: the weekend trades, cash waits until Monday
    big = next(row for row in rows if row["account"] == "M13-HOUSE")
    assert big["concentration_addon_usd"] > 0


@pytest.mark.parametrize("method", ["fhs", "span", "asvar", "notional"])
def test_every_method_runs_from_the_cli(method):
    done = tokenclear("margin", "--method", method, "--format", "csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("account,method,margin_usd") and len(lines) > 10
    assert all(line.split(",")[1] == method for line in lines[1:])


def test_bad_positions_exit_2_with_file_line_and_field(tmp_path):
    bad = tmp_path / "positions.csv"
    bad.write_text("account,instrument,quantity\nA,BTCZ23,1\nA,BTCZ5,2\n")
    done = tokenclear("margin", "--positions", str(bad))
    assert done.returncode == 2
    assert "line 3" in done.stderr and "instrument" in done.stderr and "BTCZ5" in done.stderr


def test_params_backtest_and_vm(tmp_path):
    out = tmp_path / "span.json"
    assert tokenclear("params", "span", "--as-of", "2023-03-10", "--out", str(out)).returncode == 0
    params = json.loads(out.read_text())
    assert len(params["price_scan"]) == len(params["names"]) and set(params["extreme_fraction"]) == {0.35}
    done = tokenclear("params", "asvar", "--as-of", "2023-03-15")
    assert json.loads(done.stdout)["published"] == "2023-03-10"
    chart = tmp_path / "bt.png"
    done = tokenclear("backtest", "--lookback", "250", "--account", "M01-HOUSE", "--format", "json",
                      "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["observations"] > 150 and summary["traffic_light"] in ("green", "yellow", "red")
    assert summary["step"] == 2  # the MPOR: independent windows by default
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = tokenclear("vm", "--from", "2023-03-09", "--to", "2023-03-13", "--format", "json")
    rows = {row["account"]: row["vm"] for row in json.loads(done.stdout)}
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
