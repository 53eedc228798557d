"""Stale or wrong collateral values (issue 14, medium 5): every vault price carries its time and a maximum age
per asset (a fund's is its NAV time); releases and substitutions that depend on a stale price are refused,
pledges are not; an asset made ineligible no longer counts in the account's value."""

from __future__ import annotations

import pytest

from tests.ledger.conftest import ETH, USD
from tokenclear.errors import TransactionReverted
from tokenclear.ledger.ledger import FUND_PRICE_AGE_S

DAY = 86_400


def test_a_stale_price_stops_releases_and_substitutions_until_it_is_refreshed(world):
    ledger, chain = world.ledger, world.chain
    ledger.pledge("p:weth", world.m1_house, "WETH", 2 * ETH, world.m1)
    ledger.pledge("p:tusd", world.m1_house, "TUSD", 1_000 * USD, world.m1)
    assert ledger.price_age("WETH") <= 60
    chain.advance_time(2 * DAY + 60)  # past the 2-day default of a pushed price
    assert ledger.price_age("WETH") > 2 * DAY
    with pytest.raises(TransactionReverted, match="stale price"):
        ledger.release("r:stale", world.m1_house, "TUSD", 10 * USD)  # the account's WETH value is stale
    with pytest.raises(TransactionReverted, match="stale price"):
        ledger.substitute("s:stale", world.m1_house, "TUSD", 100 * USD, "WETH", ETH // 10, world.m1)
    ledger.pledge("p:more", world.m1_house, "TUSD", 1 * USD, world.m1)  # adding collateral is always safe
    ledger.set_prices({"WETH": 1_500 * 10**8, "TUSD": 10**8})
    ledger.release("r:fresh", world.m1_house, "TUSD", 10 * USD)
    ledger.substitute("s:fresh", world.m1_house, "TUSD", 100 * USD, "WETH", ETH // 10, world.m1)
    assert ledger.held(world.m1_house, "TUSD") == 891 * USD


def test_a_fund_share_is_as_fresh_as_its_nav(world):
    ledger, chain = world.ledger, world.chain
    fund = ledger.token("TMMF")
    ledger.pledge("p:fund", world.m1_house, "TMMF", 1_000 * USD, world.m1)
    chain.advance_time(FUND_PRICE_AGE_S + 60)
    ledger.set_prices({"WETH": 1_500 * 10**8, "TUSD": 10**8})  # pushing the others does not refresh a NAV
    assert ledger.price_age("TMMF") > FUND_PRICE_AGE_S
    with pytest.raises(TransactionReverted, match="stale price"):
        ledger.release("r:fund", world.m1_house, "TMMF", USD)
    fund.send("set_nav", 100_010_000, sender=world.agent)
    ledger.release("r:fund", world.m1_house, "TMMF", USD)
    assert ledger.price_age("TBILL") == 0  # a bill's accreted price is computed now


def test_the_maximum_age_is_the_parameter_roles_per_asset(world):
    ledger = world.ledger
    vault, weth = ledger.vault, ledger.token("WETH").address
    assert vault.call("assets", weth)[6] == 2 * DAY
    with pytest.raises(TransactionReverted, match="missing role"):
        vault.send("set_max_age", weth, 10 * DAY, sender=world.m1)
    with pytest.raises(TransactionReverted, match="must be positive"):
        vault.send("set_max_age", weth, 0, sender=world.parameter)
    vault.send("set_max_age", weth, 3600, sender=world.parameter)
    ledger.pledge("p:weth", world.m1_house, "WETH", ETH, world.m1)
    world.chain.advance_time(3700)
    with pytest.raises(TransactionReverted, match="stale price"):
        ledger.release("r:hour", world.m1_house, "WETH", ETH // 2)


def test_an_ineligible_asset_counts_for_nothing(world):
    ledger = world.ledger
    ledger.pledge("p:weth", world.m1_house, "WETH", 2 * ETH, world.m1)
    ledger.pledge("p:tusd", world.m1_house, "TUSD", 1_000 * USD, world.m1)
    both = ledger.collateral_value(world.m1_house)
    weth = ledger.vault.call("value_of", ledger.token("WETH").address, 2 * ETH)
    assert weth == 2 * 1_500 * USD * 70 // 100 and both == weth + 1_000 * USD  # 30% haircut, TUSD at par
    ledger.set_asset("WETH", haircut_bps=3_000, price_e8=1_500 * 10**8, eligible=False)
    assert ledger.collateral_value(world.m1_house) == 1_000 * USD
