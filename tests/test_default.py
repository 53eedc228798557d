"""Default management, first part (issue 15): the close-out cost by the square-root law on weekday volumes and
the waterfall in its order, worked by hand; the `tokenclear default` replay in every format."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import context_of, future
from tests.test_cli import ROOT, tokenclear
from tokenclear.default import closeout, waterfall


def test_weekday_profiles_come_from_the_volumes_and_the_calendar():
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-15"))  # Monday 1st .. Sunday 14th
    volumes = np.where((days.astype(np.int64) + 3) % 7 >= 5, 50.0, 100.0)  # weekends trade half
    profile = closeout.weekday_profile(days, volumes)
    mean = volumes.mean()
    assert profile[1] == pytest.approx(100 / mean) and profile[5] == pytest.approx(50 / mean)
    assert closeout.weekday(np.datetime64("2024-01-06")) == 5  # a Saturday
    assert list(closeout.calendar_profile("XNYS")) == [1, 1, 1, 1, 1, 0, 0]
    assert list(closeout.next_open(np.stack([closeout.calendar_profile("XNYS"), np.ones(7)]), 5)) == [2, 0]


def test_the_square_root_cost_and_the_saturday_premium():
    # 100 m USD to sell, 1 bn a day on average, 2% daily vol: 0.02 x sqrt(0.1) x 100 m = 632,455.53
    cost = closeout.impact_cost(np.array([-100e6]), np.array([1e9]), np.array([0.02]), np.array([1.0]))
    assert cost[0] == pytest.approx(0.02 * math.sqrt(0.1) * 100e6)
    saturday = closeout.impact_cost(np.array([100e6]), np.array([1e9]), np.array([0.02]), np.array([0.8]))
    assert saturday[0] / cost[0] == pytest.approx(math.sqrt(1 / 0.8))  # thinner volume: sqrt(1/0.8) dearer
    closed = closeout.impact_cost(np.array([1.0, 0.0]), np.array([1e9, 1e9]), np.array([0.02, 0.02]),
                                  np.array([0.0, 0.0]))
    assert math.isnan(closed[0]) and closed[1] == 0  # no market that day; nothing to trade


def test_exposure_is_the_delta_equivalent_notional():
    context = context_of({"x": np.linspace(90.0, 100.0, 300)}, [future("XF", "x", "10")], [("A", "XF", 3)])
    exposure = closeout.exposures(context.resolved, context.book.quantity.astype(float), 1)
    assert exposure[0, 0] == pytest.approx(3 * 10 * context.resolved.forward[0])


def test_the_waterfall_uses_each_layer_in_order():
    flow = waterfall.run(Decimal("1000.00"), margin=Decimal("400"), own_contribution=Decimal("100"),
                         skin_in_the_game=Decimal("50"), survivors={"B": Decimal("200"), "C": Decimal("100")},
                         assessment_multiple=Decimal("0.5"), vm_gains={"B": Decimal("30"), "C": Decimal("-5")})
    used = [layer.used for layer in flow.layers]
    # 400 margin, 100 own, 50 capital, 300 survivors, 150 assessments (0.5 x): 1,000; VM gains untouched
    assert used == [400, 100, 50, 300, 150, 0]
    assert flow.tear_up == Decimal("0") and flow.layers[5].used == Decimal("0")
    short = waterfall.run(Decimal("1100.00"), margin=Decimal("400"), own_contribution=Decimal("100"),
                          skin_in_the_game=Decimal("50"), survivors={"B": Decimal("200"), "C": Decimal("100")},
                          assessment_multiple=Decimal("0.5"), vm_gains={"B": Decimal("30")})
    assert short.layers[5].used == Decimal("30") and short.tear_up == Decimal("70")
    assert short.survivors_paid == {"B": Decimal("330.00"), "C": Decimal("150.00")}
    covered = waterfall.run(Decimal("300"), margin=Decimal("400"), own_contribution=Decimal("100"),
                            skin_in_the_game=Decimal(0), survivors={"B": Decimal("200")})
    assert [layer.used for layer in covered.layers][1:] == [0] * 5 and covered.tear_up == 0


@settings(max_examples=100, deadline=None)
@given(st.decimals(0, 10**7, places=2), st.dictionaries(st.sampled_from("BCDEF"), st.decimals(0, 10**6, places=2),
                                                         max_size=5))
def test_the_waterfall_accounts_for_every_cent(loss, survivors):
    flow = waterfall.run(loss, margin=Decimal("1000"), own_contribution=Decimal("10"),
                         skin_in_the_game=Decimal("5"), survivors=survivors)
    assert sum((layer.used for layer in flow.layers), Decimal(0)) + flow.tear_up == loss
    for layer in flow.layers:
        assert layer.used <= max(layer.available, Decimal(0))
        if layer.by_member:
            assert sum(layer.by_member.values(), Decimal(0)) == layer.used


@pytest.mark.integration
def test_the_default_replay_costs_more_on_a_saturday_and_its_waterfall_adds_up():
    done = tokenclear("default", "--scenario", "lehman", "--member", "M13", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    sat, tue = out["rows"]
    assert (sat["day"], tue["day"]) == ("sat", "tue")
    assert Decimal(sat["market_closeout_cost"]) > Decimal(tue["market_closeout_cost"]) > 0  # bitcoin: ~20% less
    for row in (sat, tue):  # each lot at the lower of its winning bid and the market
        assert Decimal(row["closeout_cost"]) <= Decimal(row["market_closeout_cost"])
    for row in out["rows"]:
        layers = sum(Decimal(value) for key, value in row.items()
                     if key not in ("day", "closeout_cost", "market_closeout_cost", "collateral_sale_cost",
                                    "outage_hours", "outage_cost",
                                    "survivors_collateral_fall",
                                    "newly_uncovered", "days_to_close_out", "waits_for", "loss"))
        assert layers == Decimal(row["loss"])  # every cent of the loss is met by a layer or left for tear-up
        assert Decimal(row["loss"]) == Decimal(out["metadata"]["position_loss"]) + Decimal(row["closeout_cost"]) \
            + Decimal(row["collateral_sale_cost"]) + Decimal(row["outage_cost"])
    assert out["metadata"]["closed_out"] == "M13-HOUSE"
    bad = tokenclear("default", "--scenario", "lehman", "--member", "M99")
    assert bad.returncode == 2 and "--member: no member 'M99'" in bad.stderr
    table = tokenclear("default", "--scenario", "ftx", "--member", "M09", "--days", "sun,wed")
    assert table.returncode == 0 and "close-out cost" in table.stdout and "sun" in table.stdout


@pytest.mark.integration
def test_selling_the_defaulters_ether_moves_its_price_and_uncovers_a_survivor(tmp_path):
    """The depeg spiral's step on ether: A defaults in ftx holding 20,000 ETH; selling them at their stressed
    price Q costs sigma x sqrt(Q / ADV) x Q and takes ether down by sigma x sqrt(Q / ADV), which B, covered by
    its ether before the sale, feels. Every figure is recomputed here from the shipped files."""
    import csv as csvlib

    (tmp_path / "book.csv").write_text("account,instrument,quantity\nA-HOUSE,BTCZ23,300\nB-HOUSE,BTCZ23,2\n")
    with open(ROOT / "data" / "market" / "eth_usd.csv") as handle:
        closes_by_date = [(np.datetime64(r["date"]), float(r["close"])) for r in csvlib.DictReader(handle)]
    closes = np.array([c for _, c in closes_by_date])
    dates = np.array([d for d, _ in closes_by_date])
    as_of = np.datetime64("2023-08-28")
    price = closes[dates <= as_of][-1]
    window = (dates >= np.datetime64("2022-11-07")) & (dates <= np.datetime64("2022-11-11"))
    ratio = closes[window].min() / closes[dates < np.datetime64("2022-11-07")][-1]
    with open(ROOT / "data" / "volume" / "eth_usd.csv") as handle:
        volume = [(np.datetime64(r["date"]), float(r["volume"])) for r in csvlib.DictReader(handle)]
    adv = np.mean([v for d, v in volume if d <= as_of][-60:])
    sigma = np.std(np.diff(np.log(closes)))
    probe = _write(tmp_path, "probe.csv", "account,asset,quantity\nA-HOUSE,ETH,20000\nB-HOUSE,ETH,1\n")
    done = tokenclear("stress", "--positions", str(tmp_path / "book.csv"), "--collateral", str(probe),
                      "--scenarios", "ftx", "--as-of", "2023-08-28", "--format", "json")
    assert done.returncode == 0, done.stderr
    b = next(row for row in json.loads(done.stdout)["rows"] if row["member"] == "B")
    per_unit = float(b["collateral_after_stress"])  # one ETH after the ftx low and its haircut
    units = float(b["loss"]) / per_unit * 1.0005  # B's ether covers its loss by 0.05%
    collateral = _write(tmp_path, "collateral.csv",
                        f"account,asset,quantity\nA-HOUSE,ETH,20000\nB-HOUSE,ETH,{units}\n")
    done = tokenclear("default", "--scenario", "ftx", "--member", "A", "--positions", str(tmp_path / "book.csv"),
                      "--collateral", str(collateral), "--days", "tue", "--as-of", "2023-08-28", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    q = 20_000 * price * ratio
    impact = sigma * math.sqrt(q / adv)
    (row,) = out["rows"]
    assert float(row["collateral_sale_cost"]) == pytest.approx(impact * q, rel=1e-6)
    (after,) = out["prices_after_sale"]
    assert after["asset"] == "ETH" and after["price"] == pytest.approx(price * ratio * (1 - impact), rel=1e-9)
    assert float(row["survivors_collateral_fall"]) == pytest.approx(units * per_unit * impact, abs=0.01)
    assert row["newly_uncovered"] == "B-HOUSE"  # covered before the sale, short after it


def _write(folder, name: str, text: str):
    path = folder / name
    path.write_text(text)
    return path


def test_a_sealed_bid_auction_with_known_bids():
    from tokenclear.default import auction

    # two lots: 10 m USD long bitcoin (daily vol 4%, market close-out 900,000), 1 m short oil (2%, 500)
    exposure, sigma, reserve = np.array([10e6, -1e6]), np.array([0.04, 0.02]), np.array([900_000.0, 500.0])
    own = np.array([[-4e6, 0.0],  # A: short 4 m bitcoin, takes the lot partly as a hedge
                    [0.0, 0.0],  # B: flat, the most appetite
                    [5e6, 0.0]])  # C: long already, and too small for the bitcoin lot
    capacity, appetite = np.array([50e6, 50e6, 5e6]), np.array([0.2, 0.6, 0.9])
    prices = auction.bids(exposure, sigma, own, capacity, appetite)
    risk = 2.326 * 0.04 * np.sqrt(2.0) * 10e6
    added_a = (abs(-4e6 + 10e6) - 4e6) / 10e6  # 0.2 of the lot adds to A's exposure
    assert prices[0, 0] == pytest.approx(0.8 * risk * added_a)
    assert prices[1, 0] == pytest.approx(0.4 * risk)
    assert np.isnan(prices[2, 0])  # beyond C's capacity: no bid
    oil = 2.326 * 0.02 * np.sqrt(2.0) * 1e6
    assert prices[2, 1] == pytest.approx(0.1 * oil)  # C flat in oil, appetite 0.9
    lots = auction.award(["btc_usd", "wti"], exposure, reserve, prices, ["A", "B", "C"], capacity)
    btc, wti = lots
    assert btc.winner == "A" and btc.price == pytest.approx(0.8 * risk * added_a)  # 210,526 < 900,000
    assert [(b.member, b.won) for b in btc.bids] == [("A", True), ("B", False)]  # the losing bid is kept
    assert wti.winner is None and wti.price == 500.0  # every bid (>= 6,580) costs more than the market's 500
    assert len(wti.bids) == 3 and not any(b.won for b in wti.bids)


def test_outages_hold_the_close_out_back_and_cost_the_adverse_move_meanwhile():
    """The feeds silent H hours: the positions wait and may move by 2.326 x sigma x sqrt(H / 24) x |E| per factor
    (worked here on two factors); cme_halt (10 h) and chain_outage (6 h) add it to the loss on the shipped book; a
    scenario without outages adds nothing."""
    from types import SimpleNamespace

    from tokenclear.default.replay import outage_cost, replay
    from tokenclear.settings import Settings

    halted = SimpleNamespace(hours=lambda kind: 10.0 if kind == "feed_outage" else 0.0)
    worked = outage_cost(halted, np.array([1e6, -2e6]), np.array([0.02, 0.01]), None, 0, np.array([True]))
    assert worked == Decimal(repr(2.326 * math.sqrt(10 / 24) * (0.02 * 1e6 + 0.01 * 2e6))).quantize(Decimal("0.01"))
    settings = Settings()
    halt = replay(settings, scenario="cme_halt", member="M13", days=["tue"])
    (one,) = halt.closeouts
    assert one.outage_hours == 10 and one.outage_cost > 0
    assert one.loss == halt.position_loss + one.cost + one.collateral_cost + one.outage_cost
    calm = replay(settings, scenario="ftx", member="M13", days=["tue"]).closeouts[0]
    assert calm.outage_hours == 0 and calm.outage_cost == 0
    chain = replay(settings, scenario="chain_outage", member="M13", days=["tue"]).closeouts[0]
    assert chain.outage_hours == 6 and chain.outage_cost > 0
