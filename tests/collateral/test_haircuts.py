"""Haircuts derived from data: worked examples, the field's sanity orderings, and properties."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from tests.test_cli import tokenclear
from tokenclear.collateral.assets import Registry
from tokenclear.collateral.haircuts import HaircutConfig, calibrate, round_up
from tokenclear.collateral.review import compare
from tokenclear.market.history import MarketData, PriceSeries

AS_OF = np.datetime64("2023-08-29")


def table(reference, market, names=None, registry=None, **config):
    prices, volumes = market
    registry = registry or (reference.registry.subset(names) if names else reference.registry)
    return calibrate(registry, market=prices, volumes=volumes, floors=reference.floors,
                     as_of=np.datetime64(config.pop("as_of", AS_OF)), config=HaircutConfig(**config),
                     schedule=reference.schedule_floors)


def test_worked_example_on_a_synthetic_series(reference):
    rng = np.random.default_rng(3)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.02, 400))
    closes[300:340] *= np.cumprod(1 + rng.normal(-0.004, 0.06, 40))  # a stressed stretch
    dates = np.datetime64("2022-01-01") + np.arange(closes.size).astype("timedelta64[D]")
    prices = MarketData({"x": PriceSeries("x", dates, closes)})
    asset = replace(reference.registry.get("ETH"), asset="X", price_series="x", stress_series=None,
                    volume_series=None, adv_usd=1e12, settlement_lag_hours=0.0)
    config = dict(apc="none", lookback=200, stress_window=40, confidence=0.99, mpor_days=2)
    result = calibrate(Registry((asset,)), market=prices, volumes=MarketData(), floors=reference.floors,
                       as_of=dates[-1], config=HaircutConfig(**config))
    recent = closes[-201:]
    by_hand = max(np.quantile(1 - recent[1:] / recent[:-1], 0.99), np.quantile(1 - recent[2:] / recent[:-2], 0.99))
    assert result.market[0] == pytest.approx(by_hand, rel=1e-12)
    # stressed-weight: the most volatile 40 returns, found by brute force
    daily = closes[1:] / closes[:-1] - 1
    start = max(range(daily.size - 39), key=lambda i: float((daily[i:i + 40] ** 2).sum()))
    stressed_closes = closes[start:start + 41]
    stressed = max(np.quantile(1 - stressed_closes[1:] / stressed_closes[:-1], 0.99),
                   np.quantile(1 - stressed_closes[2:] / stressed_closes[:-2], 0.99))
    weighted = calibrate(Registry((asset,)), market=prices, volumes=MarketData(), floors=reference.floors,
                         as_of=dates[-1], config=HaircutConfig(**{**config, "apc": "stressed-weight"}))
    assert weighted.market[0] == pytest.approx(max(by_hand, 0.75 * by_hand + 0.25 * stressed), rel=1e-12)
    assert weighted.market[0] > by_hand  # the stressed stretch is outside the last 200 days' worst
    assert weighted.published[0] == pytest.approx(np.ceil(weighted.total[0] / 0.005) * 0.005)


def test_parametric_and_floor_components(reference, market):
    names = ["TBILL", "UST_5_10Y", "GOLD", "USD"]
    result = table(reference, market, names)
    z = norm.ppf(0.999)  # Eurex Clearing's collateral confidence, the default
    bill, notes, gold = (reference.registry.get(name) for name in names[:3])

    def horizon(asset) -> float:  # MPOR plus the settlement lag (T+1 adds a day)
        return 2 + asset.settlement_lag_hours / 24

    assert result.market[0] == pytest.approx(z * bill.duration_years * bill.rate_vol_bp * 1e-4 * np.sqrt(horizon(bill)))
    assert result.market[1] == pytest.approx(z * notes.duration_years * notes.rate_vol_bp * 1e-4
                                             * np.sqrt(horizon(notes)))
    assert result.market[2] == pytest.approx(z * gold.annual_vol * np.sqrt(horizon(gold) / 252))
    floor = reference.floors.floor(bill)
    assert result.market[0] < floor and result.credit[0] == pytest.approx(floor - result.market[0])  # floor binds
    assert result.total[3] == 0.0 and result.published[3] == 0.0  # USD cash against a USD requirement
    # CME's published schedule: 4.5% for 5-10 year Treasuries and 15% for gold top up the data-derived figure
    assert result.floor[1] == pytest.approx(0.045 - result.market[1]) and result.total[1] == pytest.approx(0.045)
    assert result.floor[2] == pytest.approx(0.15 - result.market[2] - result.credit[2])


def test_published_schedule_floors_cover_equities_gold_funds_and_treasuries(reference, market):
    result = table(reference, market)
    published = {asset.asset: reference.schedule_floors.floor(asset).floor for asset in reference.registry.assets
                 if reference.schedule_floors.floor(asset) is not None}
    assert {"SPY", "JPM", "GOLD", "TMMF", "TMMFD", "TBILL", "UST_1_5Y", "UST_5_10Y", "UST_10_30Y"} <= set(published)
    for asset, level in published.items():
        assert result.of(asset) >= level - 1e-12, asset
        i = result.index(asset)
        raw = result.market[i] + result.liquidity[i] + result.fx[i] + result.depeg[i] + result.credit[i]
        assert result.floor[i] == pytest.approx(max(level - raw, 0.0)), asset
    without = calibrate(reference.registry, market=market[0], volumes=market[1], floors=reference.floors,
                        as_of=AS_OF)
    assert without.floor.max() == 0.0 and without.of("SPY") < 0.30  # the floor is what lifts SPY


def test_depeg_decays_with_a_stated_half_life(reference, market):
    months_later = table(reference, market, ["USDC"], as_of="2023-08-28")
    age = (np.datetime64("2023-08-28") - np.datetime64("2023-03-11")).astype(int)
    assert (1 - 0.9715) * 0.5 ** (age / 90) < 0.01 and months_later.depeg[0] == pytest.approx(0.01)
    slow = table(reference, market, ["USDC"], as_of="2023-08-28", depeg_half_life_days=1000.0)
    assert slow.depeg[0] == pytest.approx((1 - 0.9715) * 0.5 ** (age / 1000), rel=1e-9)


def test_the_fields_sanity_orderings(reference, market):
    result = table(reference, market)
    of = result.of
    assert of("USDC") < of("ETH") < of("SOL")
    assert of("TBILL") < 0.02 and of("TMMF") <= 0.03  # CME: IEF2 money funds 3%
    assert of("UST_1_5Y") < of("UST_5_10Y") < of("UST_10_30Y")
    assert of("BTC") < of("ETH")
    assert result.fx[result.index("JPY")] > 0 and result.fx[result.index("USDC")] == 0


def test_usdc_haircut_widens_over_the_svb_weekend_and_the_review_names_depeg(reference, market):
    before = table(reference, market, ["USDC", "USDT"], as_of="2023-03-10")
    after = table(reference, market, ["USDC", "USDT"], as_of="2023-03-13")
    assert after.depeg[0] == pytest.approx((1 - 0.9715) * 0.5 ** (2 / 90), rel=1e-9)  # the 03-11 close, 2 days old
    assert before.depeg[0] == pytest.approx(0.01)  # the floor: USDC had not been below 0.998 before
    assert after.published[0] > before.published[0]
    previous = {row["asset"]: {k: v for k, v in row.items() if k != "asset"} for row in before.rows()}
    changes = {change.asset: change for change in compare(previous, after)}
    assert changes["USDC"].driver == "depeg" and changes["USDC"].change > 0
    assert changes["USDT"].change == 0


@settings(max_examples=25, deadline=None)
@given(lag=st.floats(0, 120), extra=st.floats(0, 120))
def test_haircut_rises_with_settlement_lag(reference, market, lag, extra):
    names = ["ETH", "SPY", "UST_10_30Y", "JPY"]
    base = reference.registry.subset(names)
    slow = Registry(tuple(replace(a, settlement_lag_hours=lag + extra) for a in base.assets))
    fast = Registry(tuple(replace(a, settlement_lag_hours=lag) for a in base.assets))
    t_slow, t_fast = table(reference, market, registry=slow), table(reference, market, registry=fast)
    assert np.all(t_slow.total >= t_fast.total - 1e-15)
    assert np.all(t_slow.published >= t_fast.published)
    if extra >= 24:  # strictly, where no published floor holds the fast haircut up
        free = t_fast.floor == 0
        assert np.all(t_slow.total[free] > t_fast.total[free])


@settings(max_examples=25, deadline=None)
@given(size=st.floats(1e5, 1e10), factor=st.floats(1.0, 50.0))
def test_haircut_rises_with_size_against_volume(reference, market, size, factor):
    names = ["SOL", "DAI", "JPM"]
    small = table(reference, market, names, position_usd=size)
    large = table(reference, market, names, position_usd=size * factor)
    assert np.all(large.total >= small.total - 1e-15) and np.all(large.published >= small.published)
    beyond = large.days_to_liquidate > 1
    assert np.all(large.liquidity[beyond] > 0)
    strictly = beyond & (factor > 1.001) & (large.market > 0) & (small.total < 1.0) & (small.floor == 0)  # caps
    assert np.all(large.total[strictly] > small.total[strictly])


@settings(max_examples=10, deadline=None)
@given(currency=st.sampled_from(["EUR", "JPY", "GBP", "CHF"]), asset=st.sampled_from(["USDC", "SPY", "TBILL", "BTC"]))
def test_haircut_rises_with_currency_mismatch(reference, market, currency, asset):
    from tokenclear.collateral import files
    from tokenclear.settings import PROJECT_DATA

    one = reference.registry.get(asset)
    foreign = Registry((replace(one, currency=currency),))
    prices, volumes = files.load_market(PROJECT_DATA / "market", PROJECT_DATA / "volume", foreign, "USD")
    mismatched = calibrate(foreign, market=prices, volumes=volumes, floors=reference.floors, as_of=AS_OF)
    matched = calibrate(reference.registry.subset([asset]), market=market[0], volumes=market[1],
                        floors=reference.floors, as_of=AS_OF)  # both without the published floors
    assert mismatched.fx[0] > 0 and mismatched.total[0] > matched.total[0]


def test_round_up_to_the_grid():
    assert list(round_up(np.array([0.0, 0.005, 0.0050000000001, 0.0051, 0.173746]), 0.005)) == pytest.approx(
        [0.0, 0.005, 0.005, 0.01, 0.175])


def test_cli_table_csv_and_monthly_review(tmp_path, reference, market):
    old = tmp_path / "2023-02.csv"
    done = tokenclear("haircuts", "--as-of", "2023-03-10", "--out", str(old), "--format", "csv")
    assert done.returncode == 0, done.stderr
    with old.open() as handle:
        rows = {row["asset"]: row for row in csv.DictReader(handle)}
    before = table(reference, market, as_of="2023-03-10")  # the same calibration, in-process
    after = table(reference, market, as_of="2023-03-13")
    assert {name: float(row["published"]) for name, row in rows.items()} == pytest.approx(
        dict(zip(before.assets, before.published.tolist(), strict=True)))
    review = tokenclear("haircuts", "--as-of", "2023-03-13", "--compare", str(old), "--format", "json")
    assert review.returncode == 0, review.stderr
    body = json.loads(review.stdout)
    usdc = next(change for change in body["review"] if change["asset"] == "USDC")
    assert usdc["driver"] == "depeg"
    assert usdc["change"] == pytest.approx(after.of("USDC") - before.of("USDC")) and usdc["change"] > 0
    printed = tokenclear("haircuts", "--as-of", "2023-03-13", "--compare", str(old))
    assert "monthly review" in printed.stdout and "depeg" in printed.stdout
    lines = old.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith("USDC,"))
    fields = lines[number - 1].split(",")
    fields[-1] = "1.5"  # a published haircut above 100%
    lines[number - 1] = ",".join(fields)
    old.write_text("\n".join(lines) + "\n")
    broken = tokenclear("haircuts", "--compare", str(old))
    assert broken.returncode == 2 and f"line {number} field 'published'" in broken.stderr
