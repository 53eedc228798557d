"""Stress testing (issue 15, first part): the scenario library as validated data, historical moves from the
shipped closes, stress losses beyond collateral, Cover 2, contributions and the reverse stress multiple: worked
examples computed by hand, invariants by hypothesis, and the command in every format."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import context_of, future, series
from tests.test_cli import ROOT, tokenclear
from tokenclear.errors import InputError
from tokenclear.instruments.underlyings import Underlying
from tokenclear.market.history import MarketData
from tokenclear.stress import history
from tokenclear.stress.losses import Shocks, StressBook, contributions, cover2, losses, reverse_multiple
from tokenclear.stress.scenarios import load_library, select

LIBRARY = ROOT / "data" / "stress"


def test_the_shipped_library_names_every_crisis_the_issue_asks_for_with_its_source():
    library = load_library(LIBRARY)
    assert {"svb", "ftx", "terra", "lehman", "wti_negative", "gulf_war", "usdc_low", "stablecoin_failure",
            "bridge_hack", "chf_floor", "silver_crash", "cme_halt", "chain_outage"} <= set(library)
    assert library["svb"].start == np.datetime64("2023-03-10") and library["svb"].end == np.datetime64("2023-03-13")
    assert library["cme_halt"].hours("feed_outage") == 10 and library["chain_outage"].hours("chain_outage") == 6
    assert library["usdc_low"].builds_on == "svb"
    assert all(one.source for one in library.values())
    assert [one.name for one in select(library, "ftx, svb,ftx")] == ["ftx", "svb"]
    with pytest.raises(InputError, match="unknown scenario nope"):
        select(library, "svb,nope")


HEAD = "scenario,type,builds_on,start,end,description,source\n"
SHOCK_HEAD = "scenario,kind,target,value,unit,source\n"


@pytest.mark.parametrize("scenarios, shocks, where, words", [
    ("x,historical,,2023-03-13,2023-03-10,d,s\n", "", ("scenarios.csv", 2, "end"), "needs start <= end"),
    ("x,guess,,,,d,s\n", "", ("scenarios.csv", 2, "type"), "type 'guess' is not one of"),
    ("x,hypothetical,,2023-01-01,,d,s\n", "", ("scenarios.csv", 2, "start"), "spans no dates"),
    ("x,hypothetical,,,,d,\n", "", ("scenarios.csv", 2, "source"), "states its source"),
    ("x,hypothetical,y,,,d,s\n", "", ("scenarios.csv", 2, "builds_on"), "'y' is not a scenario"),
    ("x,hypothetical,,,,d,s\n", "y,move,btc_usd,-0.1,relative,s\n", ("shocks.csv", 2, "scenario"),
     "unknown scenario 'y'"),
    ("x,hypothetical,,,,d,s\n", "x,melt,btc_usd,-0.1,relative,s\n", ("shocks.csv", 2, "kind"), "kind 'melt'"),
    ("x,hypothetical,,,,d,s\n", "x,move,btc_usd,-0.1,percent,s\n", ("shocks.csv", 2, "unit"),
     "relative or absolute"),
    ("x,hypothetical,,,,d,s\n", "x,haircut,USDC,1.5,fraction,s\n", ("shocks.csv", 2, "value"), "1.5 is outside"),
    ("x,hypothetical,,,,d,s\n", "x,liquidity,someday,0.5,multiplier,s\n", ("shocks.csv", 2, "target"),
     "a weekday"),
    ("x,hypothetical,,,,d,s\n", "x,move,btc_usd,abc,relative,s\n", ("shocks.csv", 2, "value"), "not a number"),
])
def test_a_bad_scenario_file_names_file_line_and_field(tmp_path, scenarios, shocks, where, words):
    (tmp_path / "scenarios.csv").write_text(HEAD + scenarios)
    (tmp_path / "shocks.csv").write_text(SHOCK_HEAD + shocks)
    with pytest.raises(InputError, match=words) as caught:
        load_library(tmp_path)
    assert (caught.value.path.endswith(where[0]), caught.value.line, caught.value.field) == (True, *where[1:])


def test_historical_moves_come_from_the_closes_around_the_window_or_the_proxy_times_beta():
    start = np.datetime64("2020-01-01")
    market = MarketData({"a": series("a", [100, 101, 90, 80, 85]), "oil": series("oil", [20, 18, -30, 10, 12]),
                         "p": series("p", [50, 50, 45, 40, 44], start - 30)})
    specs = [Underlying("a"), Underlying("oil", returns="absolute"),
             Underlying("b", stress_proxy="p", stress_beta=2.0), Underlying("c")]
    moves, notes = history.window_moves(market, specs, {"p": Underlying("p")}, start + 2, start + 3)
    # a: from the close before the window (101) to its last close (80); oil absolute: 18 -> 10
    assert moves[0] == pytest.approx(80 / 101 - 1) and moves[1] == pytest.approx(-8.0)
    assert moves[3] == 0 and any("for b, c (nor for a stress proxy)" in note for note in notes)
    # b has no series: p over a window where p has no closes -> 0 as well
    assert moves[2] == 0
    moves, _ = history.window_moves(market, specs, {"p": Underlying("p")}, start - 28, start - 27)
    assert moves[2] == pytest.approx(2.0 * (40 / 50 - 1))  # 2x the proxy's move: 50 before, 40 at the end
    lows = history.window_lows(market, ["a", None], start + 1, start + 4)
    assert lows[0] == pytest.approx(80 / 100) and lows[1] == 1.0  # the depeg low, not the recovered close


def one_future_book(collateral_units: list[float], haircut: float = 0.1):
    """Two accounts of two members on one future (multiplier 10, price 100 today): A long 5, B short 5."""
    prices = {"x": np.linspace(90.0, 100.0, 300)}
    context = context_of(prices, [future("XF", "x", "10")], [("A-HOUSE", "XF", 5), ("B-HOUSE", "XF", -5)])
    return StressBook(["A-HOUSE", "B-HOUSE"], ["A", "B"], np.array([0, 1]), context.resolved,
                      context.book.quantity.astype(float), np.array([[u] for u in collateral_units]),
                      np.array([1.0]), np.array([haircut]), 2.0)


def shock(move: float, ratio: float = 1.0, haircut: float = 0.1, frozen: bool = False) -> Shocks:
    return Shocks(np.array([move]), np.array([ratio]), np.array([haircut]), np.array([frozen]))


def test_a_worked_example_of_losses_cover2_contributions_and_the_reverse_multiple():
    book = one_future_book([1_000.0, 2_000.0])
    # -30%: A (long 5 x 10 x 100) loses 1,500; its 1,000 units at 1.00 less 10% count 900: 600 uncovered.
    # +20%: B (short) loses 1,000 against 2,000 x 0.9 = 1,800: covered. Price to 0.5 with haircut 20%: 800.
    result = losses(book, [shock(-0.30), shock(0.20, ratio=0.5, haircut=0.2), shock(-0.30, frozen=True)])
    assert result.loss[0] == pytest.approx([1_500.0, -1_500.0])
    assert result.collateral[0] == pytest.approx([900.0, 1_800.0])
    assert result.by_group[0] == pytest.approx([600.0, 0.0])
    assert result.by_group[1] == pytest.approx([0.0, 1_000.0 - 2_000 * 0.5 * 0.8])  # 200
    assert result.by_group[2] == pytest.approx([1_500.0, 0.0])  # a frozen token counts for nothing
    cover = cover2(result.by_group)
    assert cover.fund == pytest.approx(1_500.0) and cover.scenario == 2 and cover.groups[0] == 0
    assert cover.per_scenario == pytest.approx([600.0, 200.0, 1_500.0])
    assert contributions(cover.fund, result.by_group) == pytest.approx([1_500 * 1_500 / 1_700, 1_500 * 200 / 1_700])
    # a linear book: A's uncovered at k x -30% is 1,500k - 900; it reaches 1,200 of resources at k = 1.4
    assert reverse_multiple(book, shock(-0.30), 1_200.0) == pytest.approx(1.4, rel=1e-3)
    assert math.isinf(reverse_multiple(book, shock(0.0), 1_200.0))  # no move: never exhausted


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.9, 2.0), min_size=1, max_size=6), st.lists(st.floats(0, 5_000), min_size=2,
                                                                          max_size=2))
def test_stress_invariants(moves, units):
    book = one_future_book(units)
    result = losses(book, [shock(m) for m in moves])
    assert (result.uncovered >= 0).all() and (result.by_group >= 0).all()
    cover = cover2(result.by_group)
    assert cover.fund >= result.by_group.max() - 1e-9  # Cover 2 is at least Cover 1
    assert sum(contributions(cover.fund, result.by_group)) == pytest.approx(cover.fund)


@pytest.mark.integration
def test_the_stress_command_sizes_the_fund_from_its_own_rows(tmp_path):
    chart = tmp_path / "stress.png"
    done = tokenclear("stress", "--format", "json", "--chart", str(chart), "--skin-in-the-game", "1000000")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    by_scenario: dict[str, list[tuple[Decimal, str]]] = {}
    for row in out["rows"]:
        by_scenario.setdefault(row["scenario"], []).append((Decimal(row["uncovered"]), row["member"]))
    cover = {name: sum(sorted(values, reverse=True)[i][0] for i in range(2)) for name, values in by_scenario.items()}
    worst = max(cover, key=cover.get)
    assert out["metadata"]["fund_scenario"] == worst
    assert abs(Decimal(out["metadata"]["default_fund"]) - cover[worst]) <= Decimal("0.02")
    assert out["metadata"]["skin_in_the_game"] == "1000000.00"
    total = sum(Decimal(one["contribution"]) for one in out["contributions"])
    assert abs(total - Decimal(out["metadata"]["default_fund"])) <= Decimal("0.01") * len(out["contributions"])
    assert set(by_scenario) == {one["scenario"] for one in out["scenarios"]} and chart.stat().st_size > 10_000
    usdc_low = next(one for one in out["scenarios"] if one["scenario"] == "usdc_low")
    assert usdc_low["builds_on"] == "svb" and Decimal(usdc_low["cover2"]) > 0  # the USDC-only member is short
    csv = tokenclear("stress", "--scenarios", "svb,usdc_low", "--format", "csv")
    assert csv.returncode == 0 and csv.stdout.startswith("# tokenclear") and "usdc_low,M01," in csv.stdout
    bad = tokenclear("stress", "--scenarios", "svb,nope")
    assert bad.returncode == 2 and "--scenarios: unknown scenario nope" in bad.stderr and bad.stdout == ""


@pytest.mark.integration
def test_the_shipped_demo_collateral_is_the_scripts_output(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "collateral.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "write_demo_collateral.py"), str(out)], check=True,
                   capture_output=True, cwd=ROOT)
    assert out.read_text() == (ROOT / "data" / "demo" / "collateral.csv").read_text()


def test_a_bad_collateral_file_names_file_line_and_field(tmp_path):
    from tokenclear.stress.run import read_collateral

    path = tmp_path / "collateral.csv"
    for text, line, field, words in (("account,asset,quantity\nA,GOLDX,1\n", 2, "asset", "unknown collateral"),
                                     ("account,asset,quantity\nA,USDC,-1\n", 2, "quantity", ">= 0"),
                                     ("account,asset,quantity\nA,USDC,1\nA,USDC,2\n", 3, "asset", "duplicate")):
        path.write_text(text)
        with pytest.raises(InputError, match=words) as caught:
            read_collateral(path, ["USDC", "ETH"])
        assert (caught.value.line, caught.value.field) == (line, field)


@pytest.mark.integration
def test_the_negative_oil_day_on_a_crude_future_book(tmp_path):
    """WTI spot closed at 18.31 USD on 2020-04-17 and -36.98 on 2020-04-20 (absolute moves): 10 long December 2026
    contracts of 1,000 barrels lose 55.29 x 10,000 x the Samuelson factor exp(-0.5 x years to expiry)."""
    (tmp_path / "oil.csv").write_text("account,instrument,quantity\nO01-HOUSE,CLZ26,10\nO02-HOUSE,CLZ26,-10\n")
    (tmp_path / "cash.csv").write_text("account,asset,quantity\nO01-HOUSE,USDC,50000\nO02-HOUSE,USDC,50000\n")
    done = tokenclear("stress", "--positions", str(tmp_path / "oil.csv"), "--collateral", str(tmp_path / "cash.csv"),
                      "--scenarios", "wti_negative", "--as-of", "2023-08-28", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {row["member"]: row for row in json.loads(done.stdout)["rows"]}
    years = (np.datetime64("2026-11-19") - np.datetime64("2023-08-28")).astype(int) / 365.25
    loss = (18.31 + 36.98) * 10_000 * math.exp(-0.5 * years)
    assert float(rows["O01"]["loss"]) == pytest.approx(loss, abs=0.01)
    assert float(rows["O02"]["loss"]) == pytest.approx(-loss, abs=0.01)
    collateral = float(rows["O01"]["collateral_after_stress"])
    assert loss > collateral  # 50,000 USDC after its haircut does not cover the day
    assert float(rows["O01"]["uncovered"]) == pytest.approx(loss - collateral, abs=0.01)
