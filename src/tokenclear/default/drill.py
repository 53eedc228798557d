"""The demo's default fund and default drill (``tokenclear demo --default M07``): the fund sized by Cover 2 on the
opening book and collected on chain, then one member's default managed end to end with a liquidity provider
(:mod:`tokenclear.default.manage`)."""

from __future__ import annotations

from decimal import Decimal

from tokenclear.clearing.onboarding import AccountRow, onboard
from tokenclear.default import fund, manage
from tokenclear.store.models import DefaultCase

#: The demo's skin in the game: a quarter of the fund (a stated assumption; EMIR RTS 153/2013 Art. 35 sets it
#: at 25% of the CCP's minimum capital, which the demo does not model).
SKIN_SHARE = Decimal("0.25")
LIQUIDITY_MEMBER, LIQUIDITY_ACCOUNT = "LP", "LP-HOUSE"
#: What the liquidity provider brings: stablecoin to buy collateral, and bills pledged for the positions it takes.
LP_CASH_MICRO = 2_000_000_000 * 10**6
LP_BILLS_MICRO = 500_000_000 * 10**6


def collect_fund(demo, *, as_of: str) -> fund.Sizing:
    """Open the default-fund accounts, size the fund on the book as it opens, and have each member pledge its
    contribution and the CCP its skin in the game, in the stablecoin."""
    ledger, workflow = demo.ledger, demo.workflow
    fund.open_accounts(workflow, sorted(demo.plans), ccp_wallet=ledger.operator)
    workflow.sync()
    sizing = fund.size(demo.settings, workflow, at=demo.clock.now(), as_of=as_of)
    payers = {member: (plan.wallet, sizing.contributions.get(member, Decimal(0)))
              for member, plan in demo.plans.items()}
    payers[fund.CCP] = (ledger.operator, (sizing.fund * SKIN_SHARE).quantize(manage.CENT))
    ledger.authorise(ledger.operator)  # the CCP pledges its own capital as a member would
    for member, (wallet, amount) in sorted(payers.items()):
        units = manage.micro(amount)
        if units <= 0:
            continue
        ledger.issue(fund.FUND_TOKEN, wallet, units)
        onchain = bytes.fromhex(demo.store_account(fund.fund_account(member))[2:])
        ledger.pledge(f"fund:{sizing.id}:{member}", onchain, fund.FUND_TOKEN, units, wallet)
    workflow.sync()
    return sizing


def liquidity_provider(demo) -> str:
    """Onboard the demo's liquidity provider (:func:`onboard_liquidity_provider`) on a new wallet."""
    return onboard_liquidity_provider(demo.store, demo.ledger, demo.workflow, demo.chain.new_account(), salt=demo.SALT)


def onboard_liquidity_provider(store, ledger, workflow, wallet: str, *, salt: bytes) -> str:
    """Onboard the liquidity provider (a member that buys seized collateral and takes closed-out positions) on
    ``wallet`` with its cash and bills pledged; returns the wallet."""
    from tokenclear.clearing.coverage import units_for
    from tokenclear.store.models import Account

    onboard(store, ledger, [AccountRow(LIQUIDITY_ACCOUNT, LIQUIDITY_MEMBER, "HOUSE", wallet)], salt=salt)
    ledger.authorise(wallet)
    ledger.issue(fund.FUND_TOKEN, wallet, LP_CASH_MICRO)
    bill = ledger.asset_parameters("TBILL")
    bills = units_for(LP_BILLS_MICRO, price_e8=bill.price_e8, haircut_bps=bill.haircut_bps, decimals=bill.decimals)
    ledger.issue("TBILL", wallet, bills)
    with store.session() as session:
        onchain = session.get(Account, LIQUIDITY_ACCOUNT).onchain_id
    ledger.pledge("lp:opening", bytes.fromhex(onchain[2:]), "TBILL", bills, wallet)
    workflow.sync()
    return wallet


def drill(demo, member: str, scenario: str) -> dict:
    """``member``'s default under ``scenario``, opened and run on chain; the case's plan and results."""
    wallet = liquidity_provider(demo)
    parties = manage.Parties(liquidity_provider=wallet, liquidity_account=LIQUIDITY_ACCOUNT)
    manage.open_case(demo.settings, demo.workflow, member, scenario, parties, at=demo.clock.now(),
                     as_of=str(demo.days[-1]))
    case = manage.run(demo.workflow, member)
    return summary(case)


def summary(case: DefaultCase) -> dict:
    plan = case.plan
    return {"member": case.member_id, "status": case.status, **{k: v for k, v in plan.items() if k != "steps"},
            "steps": [{"key": one["key"], "what": one["what"], "result": case.done.get(one["key"])}
                      for one in plan["steps"]]}
