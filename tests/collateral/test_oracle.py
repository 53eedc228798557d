"""The oracle guard: a manipulated source, a stale source and a flash move, each as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from tokenclear.errors import ConfigurationError
from tokenclear.market.oracle import GuardConfig, OracleGuard, Quote, twap

T0 = datetime(2023, 3, 10, 12, 0, tzinfo=UTC)


def quotes(at: datetime, **prices: float) -> list[Quote]:
    return [Quote(source, price, at) for source, price in prices.items()]


def warm(guard: OracleGuard, price: float = 1.0, minutes: int = 60) -> datetime:
    """Steady prices every minute for an hour; returns the time of the last update."""
    for minute in range(minutes):
        at = T0 + timedelta(minutes=minute)
        assert guard.update("USDC", quotes(at, a=price, b=price, c=price), at).status == "accepted"
    return T0 + timedelta(minutes=minutes - 1)


def test_a_single_manipulated_source_is_dropped():
    guard = OracleGuard()
    now = warm(guard) + timedelta(minutes=1)
    decision = guard.update("USDC", quotes(now, a=1.0001, b=0.9999, c=0.80), now)
    assert decision.status == "accepted" and decision.price == pytest.approx(1.0)
    assert decision.outliers == {"c": 0.80} and "dropped outlier(s) c" in decision.reason


def test_a_stale_source_is_left_out_and_a_lost_quorum_falls_back():
    guard = OracleGuard(GuardConfig(max_age_s=300))
    now = warm(guard) + timedelta(minutes=1)
    old = now - timedelta(minutes=10)
    mixed = [Quote("a", 1.0, now), Quote("b", 1.0, now), Quote("c", 0.5, old)]
    decision = guard.update("USDC", mixed, now)
    assert decision.status == "accepted" and decision.stale == {"c": 0.5} and decision.price == 1.0
    lost = guard.update("USDC", [Quote("a", 1.0, now), Quote("b", 0.97, old), Quote("c", 0.97, old)],
                        now + timedelta(seconds=1))
    assert lost.status == "fallback" and lost.price == 1.0 and lost.haircut_addon == 0.05
    assert "1 fresh source(s), 2 needed" in lost.reason
    future = guard.update("USDC", quotes(now + timedelta(hours=1), a=1.0, b=1.0), now + timedelta(seconds=2))
    assert future.status == "fallback"  # quotes stamped an hour ahead are not trusted


def test_a_flash_move_trips_the_breaker_and_a_lasting_one_is_accepted():
    guard = OracleGuard(GuardConfig(max_twap_deviation=0.10, twap_window_s=3600, fallback_addon=0.05))
    now = warm(guard, price=100.0)
    flash = now + timedelta(minutes=1)
    decision = guard.update("USDC", quotes(flash, a=70.0, b=70.1, c=69.9), flash)
    assert decision.status == "fallback" and decision.price == 100.0
    assert decision.haircut_addon == pytest.approx(0.30, abs=0.002)  # widened by the move, above 5%
    back = flash + timedelta(minutes=1)
    assert guard.update("USDC", quotes(back, a=100.0, b=100.0), back).status == "accepted"
    # a move that lasts: the TWAP catches up and the new level is accepted within the window
    statuses = []
    for minute in range(2, 62):
        at = flash + timedelta(minutes=minute)
        statuses.append(guard.update("USDC", quotes(at, a=80.0, b=80.0, c=80.0), at).status)
    assert statuses[0] == "fallback" and statuses[-1] == "accepted"
    first = statuses.index("accepted")
    assert all(status == "accepted" for status in statuses[first:])


def test_halt_mode_and_stale_last_good_stop_valuation():
    guard = OracleGuard(GuardConfig(fallback="halt"))
    now = warm(guard, minutes=5) + timedelta(minutes=1)
    halted = guard.update("USDC", quotes(now, a=1.0), now)
    assert halted.status == "halted" and halted.price is None and not halted.usable
    keeper = OracleGuard(GuardConfig(max_last_good_age_s=600))
    now = warm(keeper, minutes=5) + timedelta(hours=1)
    assert keeper.update("USDC", [], now).status == "halted"  # the last good price is an hour old


def test_sources_that_disagree_trip_the_breaker():
    guard = OracleGuard()
    decision = guard.update("ETH", quotes(T0, a=1500.0, b=1600.0, c=1700.0), T0)
    assert decision.status == "halted" and "disagree" in decision.reason  # no last good price yet


def test_every_decision_is_logged_with_its_inputs():
    guard = OracleGuard()
    with capture_logs() as logs:
        guard.update("BTC", quotes(T0, a=20_000.0, b=20_010.0, c=25_000.0), T0)
    assert len(logs) == 1 and logs[0]["event"] == "price decision"
    entry = logs[0]
    assert entry["asset"] == "BTC" and entry["fresh"] == {"a": 20_000.0, "b": 20_010.0, "c": 25_000.0}
    assert entry["outliers"] == {"c": 25_000.0} and entry["price"] == pytest.approx(20_005.0)
    assert guard.decisions[-1].as_log() == {k: v for k, v in entry.items() if k not in ("event", "log_level")}


def test_twap_weights_by_time_held():
    path = [(T0, 100.0), (T0 + timedelta(minutes=45), 200.0)]
    assert twap(path, T0 + timedelta(minutes=60), 3600) == pytest.approx((100 * 45 + 200 * 15) / 60)
    assert twap(path, T0 + timedelta(minutes=120), 3600) == pytest.approx(200.0)
    assert twap([], T0, 60) is None


def test_bad_configuration_is_refused():
    with pytest.raises(ConfigurationError):
        GuardConfig(fallback="guess")
    with pytest.raises(ValueError, match="timezone"):
        OracleGuard().update("X", [], datetime(2023, 1, 1))
