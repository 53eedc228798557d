"""The shipped reference data loads, and every malformed file fails naming file, line and field."""

from __future__ import annotations

import csv

import pytest

from tokenclear.collateral import files
from tokenclear.errors import InputError

from .conftest import COLLATERAL


def test_registry_lists_the_assets_the_field_asks_for(reference):
    registry = reference.registry
    for name in ("USD", "EUR", "JPY", "USDC", "USDT", "DAI", "TMMF", "TBILL", "UST_1_5Y", "UST_10_30Y", "JGB_5_10Y",
                 "SPY", "GOLD", "BTC", "ETH", "SOL"):
        assert name in registry
    assert registry.get("TMMF").yield_model == "accruing" and registry.get("TMMFD").yield_model == "rebasing"
    assert registry.get("TBILL").tokenized and registry.get("TBILL").yield_model == "accreting"
    assert registry.get("UST_5_10Y").settlement_lag_hours == 24 and registry.get("USDC").settlement_lag_hours == 0
    assert registry.get("USDC").chains == ("ethereum", "solana")
    assert abs(registry.get("TMMF").yield_annual - 0.04) < 0.01


def test_ccp_table_becomes_one_rule_per_tick_and_currency(reference):
    with (COLLATERAL / "ccp_non_cash_collateral.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    expected = {ccp: sum(len(row["currency"].split("|")) for row in rows if row[ccp] == "1")
                for ccp in files.CCP_TABLE_COLUMNS}
    table_rules = [rule for rule in reference.schedules.rules if rule.source.startswith("ccp_non_cash")]
    counted = {ccp: sum(rule.schedule == ccp for rule in table_rules) for ccp in files.CCP_TABLE_COLUMNS}
    assert counted == expected
    assert expected["Eurex"] > expected["OCC"] > 0


def _rewrite(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _line_of(path, needle: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ("tokenclear,btc,2025-12-01,,eligible,BTC,", "tokenclear,btc,2025-12-01,,eligible,BTCX,", "asset",
     "unknown asset 'BTCX'"),
    ("tokenclear,btc,2025-12-01,", "tokenclear,btc,2025-13-01,", "effective_from", "not an ISO date"),
    ("tokenclear,sol,2021-01-01,,ineligible,SOL", "tokenclear,btc,2021-01-01,,ineligible,SOL", "rule",
     "duplicate rule id 'btc'"),
    ("tokenclear,sol,2021-01-01,,ineligible,SOL", "tokenclear,sol2,2021-01-01,,eligible,BTC", "effective_from",
     "duplicate rule: same match and overlapping dates"),
    ("tokenclear,gold,2021-01-01,,eligible,,gold", "tokenclear,gold,2021-01-01,,eligible,,bullion", "kind",
     "'bullion' is not one of"),
    ("tokenclear,gold,2021-01-01,,eligible", "tokenclear,gold,2021-01-01,,maybe", "decision", "not one of"),
])
def test_a_bad_schedule_row_names_file_line_and_field(data_copy, reference, old, new, field, message):
    path = data_copy / "schedules.csv"
    _rewrite(path, old, new)
    line = _line_of(path, new)
    with pytest.raises(InputError) as caught:
        files.load_schedules(files.CollateralFiles(data_copy), reference.registry)
    assert caught.value.path == str(path) and caught.value.line == line and caught.value.field == field
    assert message in str(caught.value)


def test_a_versioned_rule_may_follow_another_but_not_overlap(data_copy, reference):
    path = data_copy / "schedules.csv"
    with path.open("a") as handle:
        handle.write("tokenclear,sol-admitted,2027-01-01,,eligible,SOL,,,,,\n")
    with pytest.raises(InputError, match="overlapping"):
        files.load_schedules(files.CollateralFiles(data_copy), reference.registry)
    _rewrite(path, "tokenclear,sol,2021-01-01,,ineligible", "tokenclear,sol,2021-01-01,2026-12-31,ineligible")
    schedules = files.load_schedules(files.CollateralFiles(data_copy), reference.registry)
    sol = reference.registry.get("SOL")
    assert not schedules.decide(sol, "tokenclear", "2026-12-31").eligible
    assert schedules.decide(sol, "tokenclear", "2027-01-01").rule.rule == "sol-admitted"


@pytest.mark.parametrize(("old", "new", "field"), [
    ("USDT,Tether USD,stablecoin", "USDC,Tether USD,stablecoin", "asset"),
    (",series,usdc_usd,", ",serie,usdc_usd,", "price_model"),
    (",duration,,,0.25,5,", ",duration,,,,5,", "duration_years"),
    ("(regulated stablecoin),stablecoin,yes,USD", "(regulated stablecoin),stablecoin,yes,usd", "currency"),
    ("0.030,0.000,none,ethereum", "0.030,0.040,none,ethereum", "yield_pledged"),
])
def test_a_bad_registry_row_names_its_field(data_copy, old, new, field):
    path = data_copy / "assets.csv"
    _rewrite(path, old, new)
    with pytest.raises(InputError) as caught:
        files.load_registry(path)
    assert caught.value.field == field and caught.value.line == _line_of(path, new)


def test_every_asset_needs_a_credit_floor(data_copy, reference):
    path = data_copy / "credit_floors.csv"
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith(("crypto,", ",,")))
    path.write_text(text + "\n")
    with pytest.raises(InputError, match="no floor for asset BTC"):
        files.load_credit_floors(path, reference.registry)


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ("TBILL,,0.005,CME", "TBILLX,,0.005,CME", "asset", "unknown asset 'TBILLX'"),
    (",gold,0.150,CME", "GOLD,gold,0.150,CME", "asset", "an asset or a kind, not both"),
    (",gold,0.150,CME", ",bullion,0.150,CME", "kind", "'bullion' is not one of"),
    (",gold,0.150,CME", ",gold,1.5,CME", "floor", "must lie in"),
    (",gold,0.150,CME,", ",gold,0.150,,", "schedule", "the schedule and the source"),
    (",equity,0.300,CME", ",etf,0.300,CME", "kind", "duplicate floor for 'etf'"),
])
def test_a_bad_schedule_floor_names_file_line_and_field(data_copy, reference, old, new, field, message):
    path = data_copy / "schedule_floors.csv"
    _rewrite(path, old, new)
    line = max(number for number, text in enumerate(path.read_text().splitlines(), start=1) if new in text)
    with pytest.raises(InputError) as caught:
        files.load_schedule_floors(path, reference.registry)
    assert caught.value.path == str(path) and caught.value.line == line and caught.value.field == field
    assert message in str(caught.value)


def test_schedule_floors_cite_their_source_and_a_review_file_without_them_still_loads(reference, tmp_path):
    floors = reference.schedule_floors
    assert floors.floor(reference.registry.get("SPY")).floor == 0.30
    assert "CME" in floors.floor(reference.registry.get("GOLD")).source
    assert floors.floor(reference.registry.get("BTC")) is None  # no CCP schedule publishes one
    old = tmp_path / "old.csv"  # written before the floor component existed
    old.write_text("asset,market,liquidity,fx,depeg,credit,published\nUSDC,0.01,0,0,0.01,0,0.02\n")
    assert files.load_haircut_table(old)["USDC"]["floor"] == 0.0
