"""Why an account was called: the shortfall's change split by driver (pure), and the demo's calls carry it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tests.clearing.test_workflow import run_demo
from tokenclear.clearing.demo import Demo
from tokenclear.clearing.drivers import DRIVERS, TokenTerms, Valuation, attribute, main_driver
from tokenclear.ledger.chain import embedded_chain
from tokenclear.settings import Settings
from tokenclear.store import queries
from tokenclear.store.models import CallEvent, Cycle, Requirement
from tokenclear.store.store import open_store


def test_a_depeg_weekend_worked_by_hand():
    """An account holding 100,000 TUSD and 10 WETH: USDC falls from 1.00 to 0.9715 and its haircut widens from
    2% to 4.5%; ETH rises from 1,400 to 1,450 (haircut 20% unchanged); the requirement rises from 150,000 to
    156,000, of which the weekend add-on goes from 20,000 to 24,000."""
    before, after = Valuation(Decimal("150000.00"), Decimal("20000.00")), Valuation(Decimal("156000.00"),
                                                                                    Decimal("24000.00"))
    terms_0 = {"TUSD": TokenTerms(1.00, 0.02), "WETH": TokenTerms(1400.0, 0.20)}
    terms_1 = {"TUSD": TokenTerms(0.9715, 0.045), "WETH": TokenTerms(1450.0, 0.20)}
    why = attribute(before, after, {"TUSD": 100_000.0, "WETH": 10.0}, terms_0, terms_1, {"TUSD"})
    assert why == {
        "weekend add-on": Decimal("4000.00"),
        "market moves": Decimal("2000.00"),  # (156,000 - 24,000) - (150,000 - 20,000)
        "positions": Decimal("0.00"),  # the same positions
        "stablecoin depeg": Decimal("2793.00"),  # 100,000 x 0.98 x 0.0285
        "collateral prices": Decimal("-400.00"),  # -10 x 0.8 x 50: ETH's rise lowers the shortfall
        "haircuts": Decimal("2428.75"),  # 100,000 x 0.9715 x 0.025
    }
    assert main_driver(why) == "weekend add-on"
    assert main_driver(dict.fromkeys(DRIVERS, Decimal("-1"))) == "none"


def test_the_demo_opens_covered_and_every_call_names_its_driver(tmp_path):
    demo, result = run_demo(f"sqlite:///{tmp_path / 'book.db'}", members=12)
    for step in result.steps:  # a matched book: VM paid equals VM received, each cycle
        assert Decimal(step["vm_paid_by_members_usd"]) == Decimal(step["vm_paid_to_members_usd"])
        assert sum(entry["calls"] for entry in step["drivers"].values()) == step["calls_issued"]
    with demo.store.session() as session:
        issued = [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.source == ""))]
    assert issued and all("main driver:" in detail for detail in issued)


def test_every_account_opens_fully_collateralised(tmp_path):
    """What counts (after wrong-way and limit cuts) reaches each account's opening requirement."""
    store = open_store(f"sqlite:///{tmp_path / 'book.db'}")
    demo = Demo(settings=Settings(), chain=embedded_chain(), store=store, scenario="svb", members=12)
    demo.setup()
    with store.session() as session:
        opening = session.scalar(select(Cycle).where(Cycle.kind == "opening"))
        required = {row.account_id: row.requirement for row in session.scalars(
            select(Requirement).where(Requirement.cycle_id == opening.id))}
        accounts = queries.margin_accounts(session)  # not the default-fund accounts
        counted = demo.workflow.counted(session, accounts, required)
    assert len(counted) == len(demo.book.accounts) > 0
    assert all(counted[account] >= required[account] for account in required), [
        (account, counted[account], required[account]) for account in required if counted[account] < required[account]]


def test_a_position_change_is_its_own_driver():
    """The same account whose positions changed: its previous positions would require 152,000 now (weekend add-on
    22,000 of it); the new ones require 156,000 (24,000). The 6,000 rise splits into 4,000 of positions, 2,000 of
    weekend add-on and 0 of market moves; with no change of positions, none of it is 'positions'."""
    before, after = Valuation(Decimal("150000.00"), Decimal("20000.00")), Valuation(Decimal("156000.00"),
                                                                                    Decimal("24000.00"))
    same = {"TUSD": TokenTerms(1.0, 0.02)}
    why = attribute(before, after, {"TUSD": 1.0}, same, same, {"TUSD"},
                    Valuation(Decimal("152000.00"), Decimal("22000.00")))
    assert (why["positions"], why["weekend add-on"], why["market moves"]) == (Decimal("4000.00"), Decimal("2000.00"),
                                                                              Decimal("0.00"))
    assert sum(why.values()) == after.requirement - before.requirement
    assert main_driver(why) == "positions"
    unchanged = attribute(before, after, {"TUSD": 1.0}, same, same, {"TUSD"})
    assert unchanged["positions"] == 0 and unchanged["market moves"] == Decimal("2000.00")
