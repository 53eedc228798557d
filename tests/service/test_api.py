"""The service's API on a real HTTP server: authentication, each role's reach (a member tries every endpoint on
another member's data), idempotent writes, clear refusals that write nothing, calls answered on chain, what-if
margin equal to the cycle's own, parameters and prices, and the audit log."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from decimal import Decimal

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from tests.service.conftest import cycle_now, grow
from tokenclear.store.models import AuditEntry, Position

pytestmark = pytest.mark.integration


def key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_tokens_are_needed_and_checked(served):
    assert httpx.get(f"{served.url}/api/accounts").status_code == 401
    assert httpx.get(f"{served.url}/api/accounts", headers={"Authorization": "Bearer x.y.z"}).status_code == 401
    wrong = httpx.post(f"{served.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": "ccp",
                                                          "client_secret": "not-it"})
    assert wrong.status_code == 401
    basic = httpx.post(f"{served.url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=("regulator", served.secrets["regulator"]))
    assert basic.status_code == 200 and basic.json()["role"] == "regulator"
    assert basic.json()["expires_in"] == served.service.settings.token_ttl_s
    other = httpx.post(f"{served.url}/oauth/token", data={"grant_type": "password"})
    assert other.status_code == 400 and other.json()["field"] == "grant_type"


def test_client_secrets_are_stored_as_argon2_hashes(served):
    from tokenclear.store.models import ApiClient

    with served.service.store.session() as session:
        stored = {c.id: c.secret_hash for c in session.scalars(select(ApiClient))}
    assert stored["ccp"].startswith("$argon2id$")
    assert all(secret not in stored[client] for client, secret in served.secrets.items())


OTHER = "M02-HOUSE"  # member M01 tries M02's data
READS = ["/api/accounts/{a}", "/api/positions?account={a}", "/api/requirements?account={a}",
         "/api/requirements/history?account={a}", "/api/collateral?account={a}", "/api/calls?account={a}",
         "/api/collateral/concentration?account={a}"]


@pytest.mark.parametrize("path", READS)
def test_a_member_cannot_read_another_members_rows(served, path):
    with served.client("member-M01") as m01:
        answer = m01.get(path.format(a=OTHER))
    assert answer.status_code == 404 and OTHER in answer.json()["detail"]
    with served.client("regulator") as regulator:
        assert regulator.get(path.format(a=OTHER)).status_code == 200


def test_a_member_lists_only_its_own(served):
    with served.client("member-M01") as m01:
        for path, owner in (("/api/accounts", "member"), ("/api/positions", "account"), ("/api/collateral", "member"),
                            ("/api/collateral/concentration", "member"),
                            ("/api/calls", "account"), ("/api/members", "id"), ("/api/requirements", "account")):
            body = m01.get(path).json()
            rows = body["accounts"] if isinstance(body, dict) else body
            assert rows or path == "/api/calls", path
            assert all(row[owner].startswith("M01") for row in rows), path
        with served.client("ccp") as ccp:
            mine = {a["onchain_id"] for a in ccp.get("/api/accounts").json() if a["member"] == "M01"}
            assert len(ccp.get("/api/instructions").json()) > len(m01.get("/api/instructions").json())
        shown = m01.get("/api/instructions").json()
        assert shown and {i["params"]["onchain_id"] for i in shown} <= mine
        fund = m01.get("/api/default-fund").json()["sizings"][0]
        assert set(fund["contributions_usd"]) <= {"M01"} and fund["members"] is None


def other_members_writes(served) -> list[tuple[str, str, dict]]:
    with served.client("ccp") as ccp:
        call = ccp.get("/api/calls", params={"account": OTHER}).json()
    call_key = call[0]["key"] if call else "call:none"
    return [("post", "/api/instructions/pledge", {"account": OTHER, "symbol": "TBILL", "units": 1000}),
            ("post", "/api/instructions/release", {"account": OTHER, "symbol": "TBILL", "units": 1000}),
            ("post", "/api/instructions/substitution", {"account": OTHER, "out_symbol": "TBILL", "out_units": 10,
                                                        "in_symbol": "TUSD", "in_units": 10}),
            ("post", "/api/positions", {"positions": [{"account": OTHER, "instrument": "BTCZ23", "quantity": 1}]}),
            ("post", f"/api/calls/{call_key}/answer", {"symbol": "TBILL"}),
            ("post", "/api/margin/what-if", {"account": OTHER, "positions": [{"instrument": "BTCZ23", "quantity": 1}]}),
            ("post", "/api/chain/unsigned/pledge", {"account": OTHER, "symbol": "TBILL", "units": 1000})]


def test_a_member_cannot_write_another_members_rows(served):
    before = served.service.ledger.held(bytes.fromhex(_onchain(served, OTHER)[2:]), "TBILL")
    with served.client("member-M01") as m01:
        for method, path, body in other_members_writes(served):
            answer = getattr(m01, method)(path, json=body, headers=key())
            assert answer.status_code in (404, 422), (path, answer.text)
            assert OTHER in answer.json()["detail"] or "none" in answer.json()["detail"], (path, answer.text)
    assert served.service.ledger.held(bytes.fromhex(_onchain(served, OTHER)[2:]), "TBILL") == before


def test_roles_that_may_not_write_or_read(served):
    with served.client("regulator") as regulator:
        for method, path, body in other_members_writes(served)[:5]:
            assert getattr(regulator, method)(path, json=body, headers=key()).status_code == 403, path
        assert regulator.put("/api/parameters/tokens/WETH", json={"haircut_floor_bps": 10, "reason": "x"},
                             headers=key()).status_code == 403
        for path, body in (("/api/members", {"id": "NEW1", "wallet": "0x" + "11" * 20}),
                           ("/api/chain/transactions", {"raw": "0x00"})):
            assert regulator.post(path, json=body, headers=key()).status_code == 403, path
        assert regulator.get("/api/audit").status_code == 200
    with served.client("feed") as feed:
        for path in ("/api/accounts", "/api/calls", "/api/collateral", "/api/parameters"):
            assert feed.get(path).status_code == 403, path
    with served.client("member-M01") as m01:
        assert m01.get("/api/audit").status_code == 403
        assert m01.post("/api/members", json={"id": "NEW1", "wallet": "0x" + "11" * 20},
                        headers=key()).status_code == 403  # onboarding is the clearing house's
        assert m01.post("/api/cycles", json={"kind": "scheduled"}, headers=key()).status_code == 403
        assert m01.post("/api/prices", json={"quotes": [{"series": "eth_usd", "price": "1"}]},
                        headers=key()).status_code == 403


def _onchain(served, account: str) -> str:
    with served.client("ccp") as ccp:
        return ccp.get(f"/api/accounts/{account}").json()["onchain_id"]


def test_a_pledge_replayed_under_its_key_is_applied_once(served):
    onchain = bytes.fromhex(_onchain(served, "M01-HOUSE")[2:])
    before = served.service.ledger.held(onchain, "TBILL")
    header = key()
    body = {"account": "M01-HOUSE", "symbol": "TBILL", "units": 5_000_000}
    with served.client("member-M01") as m01:
        first = m01.post("/api/instructions/pledge", json=body, headers=header)
        again = m01.post("/api/instructions/pledge", json=body, headers=header)
        assert first.status_code == again.status_code == 200, first.text
        assert first.json() == again.json()
        assert first.headers["Idempotent-Replayed"] == "false" and again.headers["Idempotent-Replayed"] == "true"
        assert served.service.ledger.held(onchain, "TBILL") == before + 5_000_000
        other = m01.post("/api/instructions/pledge", json={**body, "units": 6}, headers=header)
        assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
        missing = m01.post("/api/instructions/pledge", json=body)
        assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["detail"]
    assert served.service.ledger.held(onchain, "TBILL") == before + 5_000_000
    with served.service.store.session() as session:
        book = session.get(__import__("tokenclear.store.models", fromlist=["Holding"]).Holding, ("M01-HOUSE", "TBILL"))
        assert int(book.units) == before + 5_000_000  # the book followed the chain's event


@pytest.mark.parametrize(("body", "field"), [
    ({"account": "M01-HOUSE", "symbol": "TBILL", "units": -5}, "units"),
    ({"account": "M01-HOUSE", "symbol": "DOGE", "units": 5}, "symbol"),
    ({"account": "M01-HOUSE", "symbol": "TBILL", "units": "5.5"}, "units"),
    ({"account": "M01-HOUSE", "symbol": "TBILL", "units": 10**40}, "units"),
    ({"account": "M01-HOUSE", "symbol": "TBILL"}, "units"),
    ({"account": "M01-HOUSE", "symbol": "TBILL", "units": 5, "extra": 1}, "extra"),
])
def test_bad_pledges_name_the_field_and_send_nothing(served, body, field):
    onchain = bytes.fromhex(_onchain(served, "M01-HOUSE")[2:])
    before = served.service.ledger.held(onchain, "TBILL")
    with served.client("member-M01") as m01:
        answer = m01.post("/api/instructions/pledge", json=body, headers=key())
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field, answer.json()
    assert served.service.ledger.held(onchain, "TBILL") == before


def test_a_bad_positions_upload_names_its_line_and_writes_nothing(served):
    with served.client("member-M01") as m01:
        before = m01.get("/api/positions").json()
        csv = "account,instrument,quantity\nM01-HOUSE,BTCZ23,3\nM01-HOUSE,ETHZ23,two\n"
        answer = m01.post("/api/positions", content=csv, headers={**key(), "Content-Type": "text/csv"})
        assert answer.status_code == 422
        assert answer.json()["line"] == 3 and answer.json()["field"] == "quantity"
        assert "positions.csv line 3 field 'quantity'" in answer.json()["detail"]
        unknown = m01.post("/api/positions", json={"positions": [{"account": "M01-HOUSE", "instrument": "NOPE",
                                                                  "quantity": 1}]}, headers=key())
        assert unknown.status_code == 422 and unknown.json()["field"] == "instrument"
        assert m01.get("/api/positions").json() == before


def test_margin_call_cured_from_the_api_settles_on_chain(served):
    """A bigger position uploaded by the clearing house raises M03-HOUSE's requirement at the next cycle (run on
    the operator's order); the call is answered through the API and cured by a pledge on chain; the book
    reconciles."""
    grow(served, "M03-HOUSE", 4)
    cycle = cycle_now(served)
    with served.client("ccp") as ccp:
        calls = ccp.get("/api/calls", params={"account": "M03-HOUSE", "state": "issued"}).json()
        assert calls and calls[0]["key"] == f"call:{cycle}:M03-HOUSE"
    assert len(calls) == 1
    call = calls[0]
    with served.client("member-M03") as m03:
        message = m03.get(f"/api/calls/{call['key']}/colr.003")
        assert message.status_code == 200 and message.headers["content-type"].startswith("application/xml")
        assert call["message_id"].encode() in message.content
        onchain = bytes.fromhex(_onchain(served, "M03-HOUSE")[2:])
        before = served.service.ledger.held(onchain, "TBILL")
        cured = m03.post(f"/api/calls/{call['key']}/answer", json={"symbol": "TBILL"}, headers=key())
        assert cured.status_code == 200, cured.text
        assert cured.json()["state"] == "cured"
        pledged = int(cured.json()["pledged"]["units"])
        assert served.service.ledger.held(onchain, "TBILL") == before + pledged
        shown = m03.get(f"/api/calls/{call['key']}").json()
        assert [e["to"] for e in shown["history"]] == ["issued", "cured"]
        assert "main driver: positions" in shown["history"][0]["detail"]  # the quadrupled book, not the market
        drivers = m03.get("/api/requirements", params={"account": "M03-HOUSE"}).json()["accounts"][0]["drivers_usd"]
        assert Decimal(drivers["positions"]) > Decimal(call["amount_usd"]) / 2
    with served.client("ccp") as ccp:
        assert ccp.post("/api/chain/reconcile", headers=key()).json() == {"clean": True, "breaks": []}
        assert ccp.get("/api/chain").json()["reconciliation"]["clean"] is True


def test_what_if_of_an_accounts_own_positions_is_its_cycle_requirement(served):
    with served.client("ccp") as ccp:
        required = ccp.get("/api/requirements", params={"account": "M04-HOUSE"}).json()
        positions = ccp.get("/api/positions", params={"account": "M04-HOUSE"}).json()
        rows = [{"instrument": p["instrument"], "quantity": p["quantity"]} for p in positions]
        alone = ccp.post("/api/margin/what-if", json={"positions": rows}).json()
        assert alone["as_of"] == required["cycle"]["as_of"]
        assert alone["requirement_usd"] == required["accounts"][0]["requirement_usd"]
        assert alone["worst_scenario"] == required["accounts"][0]["worst_scenario"] is not None
        # split into many rows: the same portfolio, the same answer
        split = [{"instrument": r["instrument"], "quantity": 1 if r["quantity"] > 0 else -1}
                 for r in rows for _ in range(abs(r["quantity"]))]
        assert ccp.post("/api/margin/what-if", json={"positions": split}).json()["requirement_usd"] == \
            alone["requirement_usd"]
        added = ccp.post("/api/margin/what-if", json={"account": "M04-HOUSE", "positions": rows}).json()
        doubled = ccp.post("/api/margin/what-if",
                           json={"positions": [{**r, "quantity": 2 * r["quantity"]} for r in rows]}).json()
        assert added["requirement_usd"] == doubled["requirement_usd"]
        assert Decimal(added["change_usd"]) == Decimal(added["requirement_usd"]) - Decimal(alone["requirement_usd"])
        bad = ccp.post("/api/margin/what-if", json={"positions": [{"instrument": "BTCZ23", "quantity": 1.5}]})
        assert bad.status_code == 422 and bad.json()["field"].startswith("positions.0.quantity")


def test_a_release_that_breaks_cover_is_refused_and_sends_nothing(served):
    with served.client("member-M05") as m05:
        held = {t["symbol"]: int(t["units"]) for t in m05.get("/api/collateral").json()["accounts"][0]["tokens"]}
        symbol = max(held, key=held.get)
        answer = m05.post("/api/instructions/release", json={"account": "M05-HOUSE", "symbol": symbol,
                                                             "units": held[symbol]}, headers=key())
        assert answer.status_code == 409 and "release refused" in answer.json()["detail"]
        again = {t["symbol"]: int(t["units"]) for t in m05.get("/api/collateral").json()["accounts"][0]["tokens"]}
    assert again == held


def test_risk_parameters_apply_on_chain_and_survive_in_the_book(served):
    with served.client("ccp") as ccp:
        answer = ccp.put("/api/parameters/tokens/WETH", json={"haircut_floor_bps": 4000, "reason": "ETH merge risk"},
                         headers=key())
        assert answer.status_code == 200, answer.text
        assert served.service.ledger.asset_parameters("WETH").haircut_bps >= 4000
        assert ccp.get("/api/parameters").json()["haircut_floor_bps"] == {"WETH": 4000}
        blank = ccp.put("/api/parameters/tokens/WETH", json={"haircut_floor_bps": 4000, "reason": " "},
                        headers=key())
        assert blank.status_code == 422 and blank.json()["field"] == "reason"
        lifted = ccp.put("/api/parameters/tokens/WETH", json={"haircut_floor_bps": None, "reason": "lifted"},
                         headers=key())
        assert lifted.status_code == 200 and ccp.get("/api/parameters").json()["haircut_floor_bps"] == {}


def test_the_feed_posts_quotes_the_guard_reads(served):
    with served.client("feed") as feed:
        posted = feed.post("/api/prices", json={"quotes": [{"series": "eth_usd", "price": "1500.25"}]},
                           headers=key())
        assert posted.status_code == 200, posted.text
        bad = feed.post("/api/prices", json={"quotes": [{"series": "doge_usd", "price": "1"}]}, headers=key())
        assert bad.status_code == 422 and bad.json()["field"] == "quotes[0].series"
        negative = feed.post("/api/prices", json={"quotes": [{"series": "eth_usd", "price": "-3"}]}, headers=key())
        assert negative.status_code == 422 and negative.json()["field"] == "quotes[0].price"
    quotes = served.service.workflow.feed.quotes("eth_usd", served.clock.now())
    assert [(q.source, q.price) for q in quotes] == [("feed", 1500.25)]


def test_every_request_is_audited_with_its_actor(served):
    with served.client("member-M06") as m06:
        m06.get("/api/accounts")
        m06.post("/api/instructions/pledge", json={"account": "M06-HOUSE", "symbol": "TBILL", "units": 1},
                 headers={"Idempotency-Key": "audit-test"})
    deadline = time.monotonic() + 10
    while True:  # the audit is written in batches, a fraction of a second behind
        with served.service.store.session() as session:
            rows = session.scalars(select(AuditEntry).where(AuditEntry.actor == "member-M06")).all()
        if any(r.idempotency_key == "audit-test" for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {(r.method, r.path, r.status_code) for r in rows} >= {("GET", "/api/accounts", 200),
                                                                ("POST", "/api/instructions/pledge", 200)}
    assert any(r.idempotency_key == "audit-test" and r.role == "member" for r in rows)


def test_openapi_documents_every_resource(served):
    spec = httpx.get(f"{served.url}/openapi.json").json()
    for path in ("/oauth/token", "/api/accounts", "/api/positions", "/api/requirements", "/api/margin/what-if",
                 "/api/collateral", "/api/calls", "/api/instructions/pledge", "/api/instructions/release",
                 "/api/instructions/substitution", "/api/prices", "/api/parameters", "/api/chain",
                 "/api/default-fund"):
        assert path in spec["paths"], path
    assert httpx.get(f"{served.url}/docs").status_code == 200


def test_positions_upload_by_csv_replaces_only_the_accounts_named(served):
    with served.client("member-M06") as m06:
        csv = "account,instrument,quantity\nM06-CUST,BTCZ23,2\n"
        answer = m06.post("/api/positions", content=csv, headers={**key(), "Content-Type": "text/csv"})
        assert answer.status_code == 200, answer.text
    with served.service.store.session() as session:
        rows = session.scalars(select(Position).where(Position.account_id.like("M06-%"))).all()
    assert ("M06-CUST", "BTCZ23", 2) in {(p.account_id, p.instrument, p.quantity) for p in rows}
    assert any(p.account_id == "M06-HOUSE" for p in rows)


def test_the_exposure_report_adds_up_to_the_apis_figures(served):
    with served.client("regulator") as regulator:
        figures = regulator.get("/api/reports/exposure").json()
        requirements = regulator.get("/api/requirements").json()["accounts"]
        collateral = regulator.get("/api/collateral").json()["accounts"]
        html = regulator.get("/api/reports/exposure", params={"format": "html"})
        pdf = regulator.get("/api/reports/exposure", params={"format": "pdf"})
    assert Decimal(figures["initial_margin"]["total_usd"]) == sum(Decimal(r["requirement_usd"]) for r in requirements)
    assert Decimal(figures["initial_margin"]["house_usd"]) + Decimal(figures["initial_margin"]["client_usd"]) == \
        Decimal(figures["initial_margin"]["total_usd"])
    assert Decimal(figures["collateral"]["pre_haircut_usd"]) == sum(Decimal(a["market_value_usd"]) for a in collateral)
    assert Decimal(figures["collateral"]["post_haircut_usd"]) == sum(Decimal(a["post_haircut_usd"])
                                                                      for a in collateral)
    assert sum(figures["backtest"]["lights"].values()) == len(figures["backtest"]["accounts"]) > 0
    breaches = [Decimal(r["largest_breach_usd"]) for r in figures["backtest"]["accounts"]]
    assert Decimal(figures["backtest"]["largest_breach_usd"]) == max(breaches) >= 0
    assert all((b > 0) == (r["exceptions"] > 0) for b, r in zip(breaches, figures["backtest"]["accounts"],
                                                                 strict=True))
    sizing = figures["default_fund"][-1]
    one = sizing["largest_one"]  # 4.4.3: one member's largest uncovered stress loss is at most the two members'
    assert Decimal("0") <= Decimal(one["usd"]) <= Decimal(sizing["fund_usd"])
    assert one["member"] in sizing["contributions_usd"] or Decimal(one["usd"]) == 0
    assert figures["members"]["count"] == 6
    assert figures["calls"]["issued"] >= 1 and figures["default_fund"]
    assert html.status_code == 200 and "6.1" in html.text and "6.5" in html.text and "<svg" in html.text
    from tokenclear.service.dashboard import money

    assert money(figures["initial_margin"]["total_usd"]) in html.text
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and b"/Type /Page" in pdf.content
    with served.client("member-M01") as m01:
        assert m01.get("/api/reports/exposure").status_code == 403



def test_a_substitution_swaps_collateral_atomically_and_a_bad_one_sends_nothing(served):
    with served.client("member-M06") as m06:
        def held() -> dict[str, int]:
            rows = m06.get("/api/collateral", params={"account": "M06-HOUSE"}).json()["accounts"][0]["tokens"]
            return {t["symbol"]: int(t["units"]) for t in rows}

        before = held()
        body = {"account": "M06-HOUSE", "out_symbol": "TBILL", "out_units": 1_000_000, "in_symbol": "TUSD",
                "in_units": 2_000_000}
        done = m06.post("/api/instructions/substitution", json=body, headers=key())
        assert done.status_code == 200, done.text
        after = held()
        assert after["TBILL"] == before["TBILL"] - 1_000_000 and after["TUSD"] == before["TUSD"] + 2_000_000
        too_much = m06.post("/api/instructions/substitution", json={**body, "out_units": 10**30}, headers=key())
        assert too_much.status_code == 422 and too_much.json()["field"] == "out_units"
        same = m06.post("/api/instructions/substitution", json={**body, "in_symbol": "TBILL"}, headers=key())
        assert same.status_code == 422 and same.json()["field"] == "in_symbol"
        assert held() == after


def test_a_colr_004_upload_acknowledges_the_call(served):
    from tokenclear.clearing.iso20022 import answer_call

    with served.client("ccp") as ccp:
        call = ccp.get("/api/calls", params={"account": "M05-HOUSE"}).json()[0]
    with served.client("member-M05") as m05:
        request = m05.get(f"/api/calls/{call['key']}/colr.003").content
        answer = answer_call(request, transaction_id="M05-ANS-1", agreed=Decimal(call["amount_usd"]))
        done = m05.post(f"/api/calls/{call['key']}/answer", content=answer,
                        headers={**key(), "Content-Type": "application/xml"})
        assert done.status_code == 200, done.text
        history = m05.get(f"/api/calls/{call['key']}").json()["history"]
        assert any("agreed" in e["detail"] and "M05-ANS-1" in e["detail"] for e in history)
        broken = m05.post(f"/api/calls/{call['key']}/answer", content=b"<Document>",
                          headers={**key(), "Content-Type": "application/xml"})
        assert broken.status_code == 422
    with served.client("member-M01") as m01:  # another member cannot answer it, even with the right message
        assert m01.post(f"/api/calls/{call['key']}/answer", content=answer,
                        headers={**key(), "Content-Type": "application/xml"}).status_code == 404


def test_concentration_use_per_limit_adds_up_to_what_the_limits_keep_out(served):
    """Per account and limited group: held = the post-haircut value of its tokens in the group (issuer, the first
    dimension, sees the vault's values when wrong-way risk takes nothing), allowed = cap x requirement, kept out
    = what exceeds it; the wrong-way cut and every limit's kept-out sum to post-haircut less counted."""
    workflow = served.service.workflow
    with served.client("ccp") as ccp:
        uses = {a["account"]: a for a in ccp.get("/api/collateral/concentration").json()["accounts"]}
        held = {a["account"]: a for a in ccp.get("/api/collateral").json()["accounts"]}
        caps = {(c["dimension"], c["group"]): c["max_share_of_requirement"]
                for c in ccp.get("/api/parameters").json()["limits"]}
    assert uses.keys() == held.keys() and any(a["limits"] for a in uses.values())
    issuer = {t.symbol: workflow.registry.get(t.asset).issuer for t in workflow.tokens}
    for account, use in uses.items():
        tokens = held[account]["tokens"]
        requirement = Decimal(use["requirement_usd"])
        for limit in use["limits"]:
            cap = caps.get((limit["dimension"], limit["group"]), caps.get((limit["dimension"], "*")))
            assert limit["max_share_of_requirement"] == cap
            assert abs(Decimal(limit["allowed_usd"]) - Decimal(repr(cap)) * requirement) <= Decimal("0.01")
            over = max(Decimal(limit["held_usd"]) - Decimal(limit["allowed_usd"]), Decimal(0))
            assert abs(Decimal(limit["kept_out_usd"]) - over) <= Decimal("0.01")
            if limit["dimension"] == "issuer" and use["wrong_way_usd"] == "0.00":
                mine = [Decimal(t["post_haircut_usd"]) for t in tokens if issuer[t["symbol"]] == limit["group"]]
                assert abs(Decimal(limit["held_usd"]) - sum(mine)) <= Decimal("0.01") * (len(mine) + 1)
        kept = Decimal(use["wrong_way_usd"]) + sum(Decimal(x["kept_out_usd"]) for x in use["limits"])
        gap = Decimal(held[account]["post_haircut_usd"]) - Decimal(held[account]["counted_usd"])
        assert abs(kept - gap) <= Decimal("0.01") * (len(use["limits"]) + len(tokens) + 2), account
    assert any(Decimal(x["kept_out_usd"]) > 0 for u in uses.values() for x in u["limits"])  # a limit binds here


def test_reads_are_answered_while_queued_writes_wait_for_the_lock(served):
    """A cycle holds the service's lock for seconds: writes queued behind it wait for their turn on the event loop,
    not in the worker threads (40), so reads are still answered meanwhile; every queued write then lands once."""
    headers = {"Authorization": f"Bearer {served.token('member-M06')}"}
    body = {"account": "M06-CUST", "symbol": "TBILL", "units": 1}

    async def pledges() -> list[int]:
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=120) as client:
            answers = await asyncio.gather(*[client.post("/api/instructions/pledge", json=body,
                                                         headers={"Idempotency-Key": uuid.uuid4().hex})
                                             for _ in range(60)])  # more than the worker threads
            return [answer.status_code for answer in answers]

    result: dict = {}
    with served.client("member-M06") as m06:
        before = sum(int(t["units"]) for t in m06.get("/api/collateral", params={"account": "M06-CUST"}).json()
                     ["accounts"][0]["tokens"] if t["symbol"] == "TBILL")
        with served.service.lock:  # as a cycle would
            writer = threading.Thread(target=lambda: result.update(codes=asyncio.run(pledges())))
            writer.start()
            time.sleep(1.5)  # the pledges are queued by now
            started = time.monotonic()
            read = m06.get("/api/calls", params={"account": "M06-CUST"}, timeout=10)
            waited = time.monotonic() - started
            assert read.status_code == 200 and waited < 5, waited
            assert writer.is_alive()  # nothing wrote while the lock was held
        writer.join(120)
        after = sum(int(t["units"]) for t in m06.get("/api/collateral", params={"account": "M06-CUST"}).json()
                    ["accounts"][0]["tokens"] if t["symbol"] == "TBILL")
    assert result["codes"] == [200] * 60 and after == before + 60


def test_each_cycle_closes_the_sessions_of_its_date_on_every_product_calendar(served):
    """One end-of-day cycle at 00:00 UTC is every product calendar's: a calendar's session of the cycle's date
    has closed by then (XNYS by 21:00 UTC), so Friday's cycle closes XNYS and 24/7, Saturday's only 24/7."""
    with served.client("regulator") as regulator:
        cycles = {c["as_of"]: c for c in regulator.get("/api/cycles").json() if c["kind"] == "scheduled"}
        status = regulator.get("/api/status").json()["schedule"]
    assert set(status["calendars"]) == {"24/7", "XNYS"}  # the served book: crypto futures and E-mini
    assert status["latest_closes"] == {"24/7": "24:00 UTC", "XNYS": "21:00 UTC"}
    assert cycles["2023-03-10"]["sessions_closed"] == ["24/7", "XNYS"]  # Friday
    assert cycles["2023-03-11"]["sessions_closed"] == ["24/7"]  # Saturday: the E-mini keeps Friday's close


def test_a_calendar_closing_after_the_cycle_is_refused():
    from datetime import timedelta

    from tokenclear.errors import ConfigurationError
    from tokenclear.market.calendars import latest_close
    from tokenclear.service.scheduler import check_closes

    day = np.datetime64("2023-03-10")
    shipped = {name: latest_close(name, day - 365, day + 365) for name in ("24/7", "24/5", "XNYS", "CMES", "XTKS")}
    assert shipped["XNYS"] == timedelta(hours=21) and shipped["XTKS"] == timedelta(hours=6)  # 15:00 JST
    assert check_closes(shipped)["CMES"] <= "24:00 UTC"  # every shipped calendar closes by the midnight cycle
    with pytest.raises(ConfigurationError, match="calendar LATE's sessions close as late as 25:30 UTC"):
        check_closes({**shipped, "LATE": timedelta(hours=25, minutes=30)})
