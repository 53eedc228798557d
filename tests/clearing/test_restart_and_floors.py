"""A restart values collateral as before it (risk state and guard state live with the cycle), every
cycle posts floors the vault enforces, and the cycle's requirement is the `margin` command's."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import select

from tokenclear import runner
from tokenclear.clearing import coverage, requirements
from tokenclear.clearing.demo import Demo
from tokenclear.errors import TransactionReverted
from tokenclear.ledger.chain import embedded_chain
from tokenclear.ledger.privacy import verify_commitment
from tokenclear.settings import Settings
from tokenclear.store.models import Account, Cycle, Requirement
from tokenclear.store.store import open_store


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """The SVB demo with 12 members through its first two cycles."""
    url = f"sqlite:///{tmp_path_factory.mktemp('book') / 'book.db'}"
    demo = Demo(settings=Settings(), chain=embedded_chain(), store=open_store(url), scenario="svb", members=12)
    result = demo.setup()
    for day in demo.days[:2]:
        demo.step(day, result)
    return demo


def latest_requirements(store) -> tuple[str, dict[str, Decimal]]:
    with store.session() as session:
        cycle = session.scalar(select(Cycle).order_by(Cycle.at.desc()))
        rows = session.scalars(select(Requirement).where(Requirement.cycle_id == cycle.id))
        return cycle.key, {row.account_id: row.requirement for row in rows}


def test_a_restart_counts_the_same_collateral_and_keeps_the_guards_memory(two_days):
    demo = two_days
    before_guard = demo.workflow.guard.state()
    with demo.store.session() as session:
        accounts = list(session.scalars(select(Account).order_by(Account.id)))
        required = {account.id: Decimal("50000.00") for account in accounts}
        before = demo.workflow.counted(session, accounts, required)
    assert demo.workflow.risk_state().correlation  # the last cycle measured wrong-way risk
    workflow, completed = demo.resume()  # a new process would build exactly this: nothing in memory carries over
    assert completed == 0
    with demo.store.session() as session:
        after = workflow.counted(session, accounts, required)
    assert after == before
    assert workflow.guard.state() == before_guard
    assert before_guard["ETH"]["history"]  # a TWAP history to carry on from, not an empty guard


def test_every_cycle_posts_floors_the_vault_enforces(two_days):
    demo = two_days
    ledger, workflow = demo.ledger, demo.workflow
    key, requirements = latest_requirements(demo.store)
    with demo.store.session() as session:
        accounts = {a.id: bytes.fromhex(a.onchain_id[2:]) for a in session.scalars(select(Account))}
    for account_id, required in requirements.items():
        onchain = accounts[account_id]
        assert ledger.required_floor(onchain) == int(required * 10**6)
        exact, salt = workflow.requirement_opening(key, account_id)
        assert exact == int(required * 10**6)
        assert verify_commitment(ledger.vault.call("commitment", onchain), exact, salt)
        assert ledger.vault.call("verify_requirement", onchain, exact, salt)
    # the chain refuses a release that would break the floor, even one the book never checked
    account_id = max(requirements, key=lambda a: ledger.collateral_value(accounts[a]) - ledger.required_floor(
        accounts[a]))
    onchain = accounts[account_id]
    excess = ledger.collateral_value(onchain) - ledger.required_floor(onchain)
    assert excess > 0
    tusd = ledger.asset_parameters("TUSD")
    too_much = coverage.units_for(excess + 1, price_e8=tusd.price_e8, haircut_bps=tusd.haircut_bps,
                                  decimals=tusd.decimals)
    assert too_much <= ledger.held(onchain, "TUSD")
    with pytest.raises(TransactionReverted, match="breach the requirement"):
        ledger.release("floor-test", onchain, "TUSD", too_much)


def test_the_cycle_and_the_margin_command_compute_one_requirement(two_days):
    demo = two_days
    day = demo.days[1]
    workflow = demo.workflow
    measured = requirements.measure(workflow.risk, workflow.book(), workflow.registry, workflow.prices, day)
    inputs = runner.Inputs(demo.risk.catalogue, demo.risk.specs, demo.book, demo.risk.market,
                           demo.settings.prices_dir)
    command = runner.run_book_margin(demo.settings, inputs, runner.risk_setup(demo.settings), as_of=str(day),
                                     method="hsvar")
    assert {row.account: row.margin for row in command.accounts} == measured.requirement_usd
    assert any(row.apc_addon > 0 for row in command.accounts)  # the settings' stressed-weight APC, in both


def test_settings_reach_every_margin_figure():
    settings = Settings(confidence=0.9, mpor_days=1, apc="none", holiday_addon=False)
    setup = runner.risk_setup(settings)
    assert (setup.confidence, setup.mpor_days, setup.options.apc, setup.options.holiday) == (0.9, 1, None, False)
    assert (setup.config.confidence, setup.config.mpor_days) == (0.9, 1)
    explicit = runner.risk_setup(settings, confidence=0.995, apc="buffer", holiday=True)
    assert (explicit.confidence, explicit.options.apc, explicit.options.holiday) == (0.995, "buffer", True)
    default = runner.risk_setup(Settings())
    assert (default.confidence, default.mpor_days) == (None, None)  # each class its own (99%/2d, 99.5%/5d)
    assert (default.config.confidence, default.config.mpor_days) == (0.99, 2)
    with pytest.raises(runner.InputError, match="TOKENCLEAR_APC"):
        runner.risk_setup(Settings(apc="sometimes"), field="TOKENCLEAR_STRESS_PERIOD")
    assert np.isclose(default.options.apc_released_fraction, 0.0)
