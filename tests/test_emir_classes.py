"""EMIR parameters per instrument class (Art. 24 confidence, Art. 26 MPOR) in one run over a
mixed book, and the short-history add-on (Art. 25(3))."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

import numpy as np
import pytest

from tests.conftest import context_of, future, random_walk
from tests.test_cli import ROOT, tokenclear_env
from tokenclear.errors import InputError
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin_files import load_classes
from tokenclear.money import CENT


def test_history_shorter_than_required_takes_the_square_root_add_on():
    prices = random_walk(61, 102)  # 100 two-day scenarios on the 24/7 grid
    context = context_of({"x": prices}, [future("X", "x", "10")], [("a", "X", 4)], required_history=250)
    run = run_margin(context, "hsvar", Options(holiday=False))
    row = run.accounts[0]
    moves = prices[2:] / prices[:-2] - 1
    base = np.quantile(-4 * 10 * prices[-1] * moves, 0.99)
    assert context.history_scenarios == 100
    assert float(row.base) == pytest.approx(base, abs=0.01)
    assert float(row.history_addon) == pytest.approx(base * (np.sqrt(250 / 100) - 1), abs=0.02)
    assert float(row.margin) == pytest.approx(base * np.sqrt(2.5), abs=0.03)
    assert any("Art. 25" in warning for warning in run.warnings)
    enough = context_of({"x": prices}, [future("X", "x", "10")], [("a", "X", 4)], required_history=100)
    assert float(run_margin(enough, "hsvar", Options(holiday=False)).accounts[0].history_addon) == 0.0


@pytest.fixture()
def mixed_data(tmp_path):
    """The shipped data with one OTC instrument: a BTC forward cleared as an OTC derivative."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data, ignore=shutil.ignore_patterns("demo"))
    with (data / "instruments.csv").open("a") as handle:
        handle.write("BTC-FWD-Z23,future,btc_usd,1,USD,2023-12-29,,,,,otc,,\n")
    positions = tmp_path / "mixed.csv"
    positions.write_text("account,instrument,quantity\nA,BTCZ23,2\nA,BTC-FWD-Z23,-3\nB,BTCZ23,1\n")
    return data, positions


def run_json(data, positions, *extra):
    done = tokenclear_env(["margin", "--positions", str(positions), "--as-of", "2023-08-25", "--stress-period",
                           "none", "--no-concentration-addon", "--no-holiday-addon", "--format", "json", *extra],
                          {"TOKENCLEAR_DATA_DIR": str(data)})
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    return {row["account"]: {**row, "margin": Decimal(row["margin"])} for row in rows}, done.stderr


def test_a_mixed_book_is_margined_class_by_class_and_summed(mixed_data, tmp_path):
    data, positions = mixed_data
    rows, stderr = run_json(data, positions)
    assert "listed instruments: 99.0% over 2 days" in stderr and "otc instruments: 99.5% over 5 days" in stderr
    # each class alone, with its own parameters, from the same files
    listed = tmp_path / "listed.csv"
    listed.write_text("account,instrument,quantity\nA,BTCZ23,2\nB,BTCZ23,1\n")
    otc = tmp_path / "otc.csv"
    otc.write_text("account,instrument,quantity\nA,BTC-FWD-Z23,-3\n")
    alone_listed, _ = run_json(data, listed, "--confidence", "0.99", "--mpor-days", "2")
    alone_otc, _ = run_json(data, otc, "--confidence", "0.995", "--mpor-days", "5")
    assert abs(rows["A"]["margin"] - alone_listed["A"]["margin"] - alone_otc["A"]["margin"]) <= CENT
    assert rows["B"]["margin"] == alone_listed["B"]["margin"]
    # no offset across classes: the long future and the short forward would nearly net in one class
    one_class, override = run_json(data, positions, "--confidence", "0.99", "--mpor-days", "2")
    assert "set for every class" in override
    otc_at_listed = run_json(data, otc, "--confidence", "0.99", "--mpor-days", "2")[0]["A"]["margin"]
    assert abs(one_class["A"]["margin"] - alone_listed["A"]["margin"] - otc_at_listed) <= CENT


def test_classes_file_is_validated(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text("class,confidence,mpor_days,source\nlisted,0.99,2,EMIR\n")
    with pytest.raises(InputError, match="no row for class"):
        load_classes(path)
    path.write_text("class,confidence,mpor_days,source\nlisted,0.99,2.5,EMIR\notc,0.995,5,EMIR\n")
    with pytest.raises(InputError) as caught:
        load_classes(path)
    assert caught.value.line == 2 and caught.value.field == "mpor_days"
