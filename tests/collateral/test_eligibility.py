"""Eligibility: the most specific rule in effect decides, and the CLI says which."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_cli import tokenclear
from tokenclear.collateral.eligibility import Rule, Schedules


def test_a_tokenized_bill_is_a_treasury_to_the_ccp_table(reference):
    decision = reference.schedules.decide(reference.registry.get("TBILL"), "CME", np.datetime64("2026-01-05"))
    assert decision.eligible
    assert decision.rule.kind == "sovereign_bond" and decision.rule.issuer_country == "US"
    assert decision.rule.source.startswith("ccp_non_cash_collateral.csv:")


@pytest.mark.parametrize(("asset", "ccp", "date", "eligible", "rule"), [
    ("USDC", "CME", "2026-01-05", False, None),  # the non-cash table lists no stablecoin
    ("JGB_5_10Y", "Eurex", "2026-01-05", True, "table-sovereign_bond-jp-jpy"),
    ("JGB_5_10Y", "OCC", "2026-01-05", False, None),
    ("SPY", "OCC", "2026-01-05", True, "table-etf-any-usd"),
    ("GOLD", "ice-clear-europe", "2026-01-05", True, "table-gold-any-usd"),
    ("BTC", "CFTC_PILOT", "2025-11-30", False, None),  # before the pilot
    ("BTC", "CFTC_PILOT", "2025-12-01", True, "btc"),
    ("SOL", "CFTC_PILOT", "2026-01-05", False, "other-crypto"),
    ("USDC", "CFTC_PILOT", "2026-01-05", True, "usdc"),  # the asset rule beats the kind rule
    ("USDT", "CFTC_PILOT", "2026-01-05", False, "other-stablecoins"),
    ("TMMF", "CFTC_PILOT", "2026-01-05", True, "tokenized-mmf"),
    ("DAI", "tokenclear", "2023-03-10", True, "dai"),  # a versioned schedule: delisted after the depeg
    ("DAI", "tokenclear", "2023-03-11", False, "dai-delisted"),
])
def test_decisions_and_the_rule_that_made_them(reference, asset, ccp, date, eligible, rule):
    decision = reference.schedules.decide(reference.registry.get(asset), ccp, np.datetime64(date))
    assert decision.eligible is eligible
    assert (decision.rule.rule if decision.rule else None) == rule
    assert asset in decision.explain() and ("eligible" in decision.explain())


def test_specificity_then_ineligible_wins_a_tie(reference):
    usdc = reference.registry.get("USDC")
    start = np.datetime64("2024-01-01")
    broad = Rule("X", "stablecoins", start, None, True, kind="stablecoin")
    narrow = Rule("X", "usd-stablecoins-on-chain", start, None, False, kind="stablecoin", tokenized=True,
                  currency="USD")
    named = Rule("X", "usdc", start, None, True, asset="USDC")
    assert not Schedules((broad, narrow)).decide(usdc, "X", start).eligible  # two fields beat one
    assert Schedules((broad, narrow, named)).decide(usdc, "X", start).rule is named  # the asset beats any fields
    tie = Rule("X", "stablecoins-no", start, None, False, kind="stablecoin")
    assert Schedules((broad, tie)).decide(usdc, "X", start).rule is tie


def test_cli_answers_yes_or_no_with_the_rule():
    yes = tokenclear("eligible", "TBILL", "--ccp", "CME", "--date", "2026-01-05", "--json")
    assert yes.returncode == 0, yes.stderr
    body = json.loads(yes.stdout)["rows"][0]
    assert body["eligible"] is True and body["rule"] == "table-sovereign_bond-us-usd"
    no = tokenclear("eligible", "USDC", "--ccp", "CME", "--date", "2026-01-05")
    assert no.returncode == 1 and no.stdout.startswith("no") and "no rule in effect" in no.stdout
    bad = tokenclear("eligible", "USDC", "--ccp", "NYSE")
    assert bad.returncode == 2 and "unknown clearing house" in bad.stderr
    bad_date = tokenclear("eligible", "USDC", "--ccp", "CME", "--date", "2026-02-30")
    assert bad_date.returncode == 2 and "--date" in bad_date.stderr
