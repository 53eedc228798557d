"""A member's default carried out on chain (tokenclear.default.manage): porting moves positions and collateral
together, the seized collateral is sold by DvP, the waterfall's layers are paid from the default-fund accounts
and the survivors' wallets in the order and amounts worked out here independently, a refused assessment is
reported and paid around; the book equals the chain after, and a second run does nothing."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest
from sqlalchemy import select

from tokenclear.clearing.demo import Demo
from tokenclear.default import drill, fund, manage
from tokenclear.ledger.chain import embedded_chain
from tokenclear.settings import Settings
from tokenclear.store.models import Account, DefaultCase, FundSizing, Holding, Position
from tokenclear.store.store import open_store

MEMBER, SCENARIO = "M03", "lehman"
CENT = Decimal("0.01")


def holdings(store) -> dict[tuple[str, str], int]:
    with store.session() as session:
        return {(h.account_id, h.asset): int(h.units) for h in session.scalars(select(Holding))}


def positions(store) -> dict[tuple[str, str], int]:
    with store.session() as session:
        return {(p.account_id, p.instrument): int(p.quantity) for p in session.scalars(select(Position))}


def net_by_instrument(book: dict[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, instrument), quantity in book.items():
        out[instrument] = out.get(instrument, 0) + quantity
    return out


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    """A six-member demo; the survivors' fund holdings cut to 100 USD each so the default reaches the
    assessments; M05's wallet frozen so its assessment is refused; then M03's default under lehman."""
    path = tmp_path_factory.mktemp("default") / "book.db"
    store = open_store(f"sqlite:///{path}")
    demo = Demo(settings=Settings(), chain=embedded_chain(), store=store, scenario="svb", members=6)
    result = demo.run()
    ledger, workflow = demo.ledger, demo.workflow
    for member in ("M01", "M02", "M04", "M05", "M06", fund.CCP):  # keep 100 USD in each survivor's fund account
        onchain = bytes.fromhex(demo.store_account(fund.fund_account(member))[2:])
        units = ledger.held(onchain, fund.FUND_TOKEN) - 100 * 10**6
        if units > 0:
            ledger.release(f"test:cut:{member}", onchain, fund.FUND_TOKEN, units)
    workflow.sync()
    frozen = demo.wallets()[4]  # M05
    ledger.token("TUSD").send("freeze", frozen, True, b"sanctions-screening".ljust(32, b"\0"),
                              sender=ledger.roles.token_agent)
    before = {"holdings": holdings(store), "positions": positions(store),
              "balances": {w: ledger.balance("TUSD", w) for w in
                           (ledger.operator, ledger.roles.default_manager, *demo.wallets())}}
    wallet = drill.liquidity_provider(demo)
    before["lp"] = ledger.balance("TUSD", wallet)
    # M01 is eager to take risk: it bids almost nothing and wins every lot within its capacity
    parties = manage.Parties(liquidity_provider=wallet, liquidity_account=drill.LIQUIDITY_ACCOUNT,
                             appetite={"M01": 0.9999})
    case = manage.open_case(demo.settings, workflow, MEMBER, SCENARIO, parties, at=demo.clock.now(),
                            as_of=str(demo.days[-1]))
    case = manage.run(workflow, MEMBER)
    return demo, result, case, before, wallet


def test_porting_moves_positions_and_collateral_together(managed):
    demo, _, case, before, _ = managed
    plan, store = case.plan, demo.store
    assert plan["ported"] == ["M03-CUST"]  # covered under lehman by its own collateral: ported
    new = f"{plan['receiver']}-PORT-M03-CUST"
    after = holdings(store)
    for (account, symbol), units in before["holdings"].items():
        if account == "M03-CUST" and units:
            assert after[(new, symbol)] == units and after[("M03-CUST", symbol)] == 0
            assert demo.ledger.held(bytes.fromhex(demo.store_account(new)[2:]), symbol) == units
    moved = {instrument: q for (account, instrument), q in before["positions"].items() if account == "M03-CUST"}
    assert moved and {i: q for (a, i), q in positions(store).items() if a == new} == moved
    with store.session() as session:
        assert session.get(Account, new).member_id == plan["receiver"]
        assert not [p for p in session.scalars(select(Position)) if p.account_id.startswith("M03-")]


def test_the_book_stays_matched_and_equals_the_chain(managed):
    demo, _, case, before, _ = managed
    assert net_by_instrument(positions(demo.store)) == net_by_instrument(before["positions"])
    assert all(q == 0 for q in net_by_instrument(before["positions"]).values())  # a matched book nets to zero
    assert demo.workflow.reconcile() == []
    assert case.status == "closed"


def test_waterfall_layers_worked_by_hand(managed):
    demo, _, case, before, wallet = managed
    plan, ledger = case.plan, demo.ledger
    layers = {one["name"]: one for one in plan["layers"]}
    loss = Decimal(plan["loss"])
    assert loss == Decimal(plan["position_loss"]) + Decimal(plan["closeout_cost"]) > Decimal(plan["raised"])
    fund_usd = {m: Decimal(before["holdings"].get((fund.fund_account(m), "TUSD"), 0)) / 10**6
                for m in ("M01", "M02", "M03", "M04", "M05", "M06", fund.CCP)}
    left = loss
    expected = []
    for available in (Decimal(plan["raised"]), fund_usd["M03"], fund_usd[fund.CCP],
                      sum(fund_usd[m] for m in ("M01", "M02", "M04", "M05", "M06"))):
        used = min(left, available)
        expected.append(used)
        left -= used
    got = [Decimal(one["used"]) for one in plan["layers"][:4]]
    assert got == expected and left > 0  # the survivors' 500 USD do not cover it: assessments follow
    survivors = {m: Decimal(v) for m, v in layers["survivors' default-fund contributions"]["by_member"].items()}
    assert survivors == {m: Decimal(100) for m in ("M01", "M02", "M04", "M05", "M06")}
    assessed = layers["assessments (up to 1 x the contribution)"]
    assert Decimal(assessed["used"]) == min(left, Decimal(500))
    # every fund account now holds what it held less what the waterfall took from it, to the micro-unit
    after = holdings(demo.store)
    for member, amount in {"M03": got[1], fund.CCP: got[2], **survivors}.items():
        account = fund.fund_account(member)
        assert after[(account, "TUSD")] == before["holdings"][(account, "TUSD")] - int(amount * 10**6)
    # M05 (frozen) could not pay its assessment: reported, and the loss paid on is that much less
    step = case.done[f"dm:{MEMBER}:assess:M05"]
    assert "frozen" in step["refused"]
    refused = Decimal(step["amount"])
    paid_in = sum(Decimal(v) for m, v in assessed["by_member"].items() if m != "M05")
    for member in ("M01", "M02", "M04", "M06"):
        share = Decimal(assessed["by_member"][member])
        bids = sum(Decimal(lot["price"]) for lot in plan["auction"] if lot["winner"] == member)
        assert ledger.balance("TUSD", demo.wallets()[int(member[1:]) - 1]) == \
            before["balances"][demo.wallets()[int(member[1:]) - 1]] - int(share * 10**6) + int(bids * 10**6)
    won = sum(Decimal(lot["price"]) for lot in plan["auction"] if lot["winner"])  # paid to auction winners
    lp_cost = Decimal(plan["closeout_cost"]) - won
    assert ledger.balance("TUSD", wallet) - before["lp"] == int(lp_cost * 10**6) - sum(
        int(Decimal(s["params"]["cash_units"])) for s in plan["steps"] if s["kind"] == "dvp")
    covered = sum(got) + paid_in  # what came into the liquidation wallet
    to_ccp = ledger.balance("TUSD", ledger.operator) - before["balances"][ledger.operator]
    assert Decimal(to_ccp) / 10**6 == (covered - lp_cost - won).quantize(CENT, rounding=ROUND_DOWN)
    assert refused == Decimal(assessed["by_member"]["M05"])
    assert ledger.balance("TUSD", ledger.roles.default_manager) == before["balances"][ledger.roles.default_manager]


def test_every_lot_is_auctioned_and_closed_at_the_lower_of_its_best_bid_and_the_market(managed):
    _, _, case, _, _ = managed
    plan = case.plan
    assert plan["auction"] and Decimal(plan["closeout_cost"]) <= Decimal(plan["market_closeout_cost"])
    for lot in plan["auction"]:
        best = min((Decimal(b["price"]) for b in lot["bids"]), default=None)
        if lot["winner"] is None:
            assert best is None or best > Decimal(lot["reserve"])
        else:
            assert Decimal(lot["price"]) == best <= Decimal(lot["reserve"])
        assert all(b["member"] not in (MEMBER, "M08", "LP") for b in lot["bids"])  # not the defaulters nor the LP


def test_a_lot_won_at_auction_moves_to_the_winner(managed):
    demo, _, case, before, _ = managed
    won = [lot for lot in case.plan["auction"] if lot["winner"]]
    assert won and {lot["winner"] for lot in won} == {"M01"}
    after = positions(demo.store)
    for lot in won:  # the lot's instruments: what M01 held plus what M03's house held
        step = next(s for s in case.plan["steps"] if s["key"] == f"dm:{MEMBER}:positions:M03-HOUSE:{lot['lot']}")
        for instrument in step["params"]["instruments"]:
            assert after.get(("M01-HOUSE", instrument), 0) == before["positions"].get(("M01-HOUSE", instrument), 0) \
                + before["positions"][("M03-HOUSE", instrument)]


def test_a_second_run_does_nothing(managed):
    demo, _, case, _, _ = managed
    events = len(demo.ledger.vault_events())
    settled = len(demo.ledger.settlement.history())
    again = manage.run(demo.workflow, MEMBER)
    assert again.done == case.done
    assert len(demo.ledger.vault_events()) == events and len(demo.ledger.settlement.history()) == settled
    with demo.store.session() as session:
        assert session.get(DefaultCase, MEMBER).status == "closed"


@pytest.mark.anvil
@pytest.mark.integration
@pytest.mark.parametrize("failpoint", ["after-send:port", "before-send:dvp", "after-send:apply_fund"])
def test_sigkill_during_default_management_then_restart_finishes_it_once(tmp_path, failpoint):
    import signal

    from tests.test_cli import tokenclear_env
    from tokenclear.ledger.anvil import anvil
    from tokenclear.ledger.connect import open_chain
    from tokenclear.ledger.ledger import instruction_key

    with anvil() as node:
        url = f"sqlite:///{tmp_path / 'book.db'}"
        keys = dict(zip(("admin_key", "parameter_key", "default_manager_key", "token_agent_key"), node.role_keys,
                        strict=True))  # a key per role: the liquidation wallet is not the CCP's cash wallet
        env = {f"TOKENCLEAR_{name.upper()}": key for name, key in keys.items()}
        done = tokenclear_env(["demo", "--rpc-url", node.url, "--database", url, "--members", "6", "--default",
                               MEMBER, "--default-scenario", SCENARIO, "--json"],
                              {"TOKENCLEAR_PRIVATE_KEY": node.funder_key, "TOKENCLEAR_FAILPOINT": failpoint, **env})
        assert done.returncode == -signal.SIGKILL, done.stderr
        store = open_store(url)
        kind = failpoint.split(":")[1]
        assert [one.kind for one in store.in_flight()] == [kind]
        with store.session() as session:
            assert session.get(DefaultCase, MEMBER).status == "open"
        settings = Settings(private_key=node.funder_key, **keys)
        demo = Demo(settings=settings, chain=open_chain(settings, node.url), store=store, scenario="svb",
                    members=6, default_member=MEMBER, default_scenario=SCENARIO)
        workflow, completed = demo.resume()
        assert completed == 1
        case = manage.run(workflow, MEMBER)
        assert case.status == "closed" and set(case.done) == {one["key"] for one in case.plan["steps"]}
        vault = [e for e in demo.ledger.vault_events() if e.name in ("Ported", "Seized", "FundApplied")]
        settlement = demo.ledger.settlement.history()
        for one in case.plan["steps"]:  # each step took effect exactly once
            if one["kind"] in ("port", "seize", "apply_fund"):
                wanted = instruction_key(one["key"])
                assert sum(1 for e in vault if bytes(e.args["key"]) == wanted) == 1, one["key"]
            elif one["kind"] == "dvp":
                wanted = instruction_key(one["key"])
                assert sum(1 for e in settlement if e.name == "DvPSettled" and bytes(e.args["key"]) == wanted) == 1
            elif one["kind"] == "settle_payments":
                wanted = instruction_key(f"{one['key']}#0")
                assert sum(1 for e in settlement if e.name == "BatchSettled" and bytes(e.args["key"]) == wanted) == 1
        assert workflow.reconcile() == []
        assert demo.ledger.balance("TUSD", demo.ledger.roles.default_manager) == 0  # everything raised paid out
        if failpoint == "after-send:apply_fund":  # the operator commands on the same stored book
            operator_commands(url, node.url, {"TOKENCLEAR_PRIVATE_KEY": node.funder_key, **env}, case)


def operator_commands(url: str, rpc: str, env: dict, case) -> None:
    """`tokenclear default-fund` sizes the fund on the book at its last cycle's date, in every format;
    `tokenclear default --database` shows the closed case again (it is not run twice)."""
    import json

    from tests.test_cli import tokenclear_env

    sized = tokenclear_env(["default-fund", "--database", url, "--rpc-url", rpc, "--format", "json"], env)
    assert sized.returncode == 0, sized.stderr
    out = json.loads(sized.stdout)
    assert out["metadata"]["as_of"] == "2023-03-13"  # the book's last cycle, not the data's last date
    rows = {row["member"]: row for row in out["rows"]}
    assert MEMBER not in rows  # in default: its contribution is in use
    for row in rows.values():
        assert Decimal(row["to_add"]) - Decimal(row["to_take_back"]) == Decimal(row["contribution"]) - \
            Decimal(row["held"])
    with open_store(url).session() as session:
        opening = session.get(FundSizing, 1).contributions  # what each member pledged at the opening
    for member, amount in opening.items():
        if member != MEMBER and Decimal(amount) > 0:
            used = Decimal(next((layer["by_member"].get(member, "0") for layer in case.plan["layers"]
                                 if layer["name"].startswith("survivors'")), "0"))
            assert Decimal(rows[member]["held"]) == Decimal(amount) - used
    for fmt in ("table", "csv"):
        shown = tokenclear_env(["default-fund", "--database", url, "--rpc-url", rpc, "--format", fmt], env)
        assert shown.returncode == 0 and "lehman" in shown.stdout
    again = tokenclear_env(["default", "--scenario", SCENARIO, "--member", MEMBER, "--database", url, "--rpc-url",
                            rpc, "--format", "json"], env)
    assert again.returncode == 0, again.stderr
    shown = json.loads(again.stdout)
    assert shown["metadata"]["status"] == "closed" and shown["metadata"]["reconciliation"] == "clean"
    assert [row["key"] for row in shown["rows"]] == [step["key"] for step in case.plan["steps"]]
    assert all(row["done"] for row in shown["rows"])


def test_a_member_already_in_default_is_no_survivor(tmp_path):
    """Nine members: M08 answers no call and is defaulted during the demo. When M03 defaults next, M08's fund
    contribution is kept for its own default (not in the survivors' layer), and M08 neither bids nor receives
    ported customers."""
    from tokenclear.store import queries

    store = open_store(f"sqlite:///{tmp_path / 'book.db'}")
    demo = Demo(settings=Settings(), chain=embedded_chain(), store=store, scenario="svb", members=9,
                default_member=MEMBER, default_scenario=SCENARIO)
    result = demo.run()
    with store.session() as session:
        defaulted = {a.member_id for a in queries.margin_accounts(session) if queries.in_default(session, a.id)}
        held = {a.member_id: int(h.units) for a in session.scalars(select(Account))
                if a.segregation == fund.FUND_SEGREGATION and (h := session.get(Holding, (a.id, "TUSD")))}
    assert defaulted == {MEMBER, "M08"}
    plan = result.default
    survivors = next(layer for layer in plan["layers"] if layer["name"].startswith("survivors'"))
    assert held["M08"] > 0  # it has a contribution that would count
    # the layer used nothing, so the fund accounts still hold what they held when the plan was made
    assert not survivors["by_member"]
    assert Decimal(survivors["available"]) == sum(manage.usd_of(units) for member, units in held.items()
                                                  if member not in (MEMBER, "M08", fund.CCP))
    assert all(bid["member"] != "M08" for lot in plan["auction"] for bid in lot["bids"])
    assert plan["receiver"] != "M08"
