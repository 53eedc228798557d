"""The dashboard in a real browser (Debian's Chromium driven by Playwright; no browser is downloaded): log in as
the clearing house and as a member, the figures on the pages equal the API's, a member cannot see another's
data, tables sort, and a call answered from the page settles on chain. Screenshots of the main pages are saved
under ``test-output/screenshots`` (``TOKENCLEAR_TEST_OUTPUT`` to move it)."""

from __future__ import annotations

import os
import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.service.conftest import cycle_now, grow
from tokenclear.service.dashboard import money

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(os.environ.get("TOKENCLEAR_TEST_OUTPUT", Path(__file__).resolve().parents[2] / "test-output"))
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                 "(make test installs it: scripts/ensure-chromium.sh)")]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        one = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield one
        one.close()


def logged_in(browser, served, client: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{served.url}/login")
    page.fill("#client_id", client)
    page.fill("#client_secret", served.secrets[client])
    page.click("#login")
    page.wait_for_url(f"{served.url}/")
    return page


def shot(page, name: str) -> None:
    folder = OUTPUT / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_the_clearing_house_sees_the_apis_figures(browser, served):
    page = logged_in(browser, served, "ccp")
    with served.client("ccp") as api:
        history = api.get("/api/requirements/history").json()
        accounts = {a["id"]: a for a in api.get("/api/accounts").json()}
        chain = api.get("/api/chain").json()
        terms = api.get("/api/collateral/haircuts").json()
    assert page.inner_text("#total-requirement") == money(history[-1]["requirement_usd"])
    assert page.inner_text("#total-collateral") == money(history[-1]["collateral_usd"])
    assert page.locator(".chart svg").count() == 1
    shot(page, "ccp-overview")
    page.click("text=Members and accounts")
    page.wait_for_url(f"{served.url}/accounts")
    rows = page.locator("#accounts tbody tr")
    assert rows.count() == len(accounts)
    for i in range(rows.count()):
        row = rows.nth(i)
        shown = accounts[row.get_attribute("data-account")]
        assert row.locator(".requirement").inner_text() == money(shown["requirement_usd"])
        assert row.locator(".collateral").inner_text() == money(shown["collateral_usd"])
    page.click("#accounts th:has-text('Requirement (USD)')")  # sorts ascending
    values = [Decimal(t.replace(",", "") or "0") for t in page.locator("#accounts .requirement").all_inner_texts()]
    assert values == sorted(values)
    page.click("#accounts th:has-text('Requirement (USD)')")
    values = [Decimal(t.replace(",", "") or "0") for t in page.locator("#accounts .requirement").all_inner_texts()]
    assert values == sorted(values, reverse=True)
    shot(page, "ccp-accounts")
    page.goto(f"{served.url}/accounts/M01-HOUSE")
    assert page.inner_text("#requirement") == money(accounts["M01-HOUSE"]["requirement_usd"])
    shot(page, "ccp-account-M01-HOUSE")
    page.goto(f"{served.url}/collateral")
    depeg = next(h for h in terms["history"] if h["as_of"] == "2023-03-11")["tokens"]["TUSD"]
    assert depeg["price_usd"] < 0.99  # the USDC depeg of 2023-03-11 ...
    row = page.locator("#haircut-history tbody tr", has_text="2023-03-12 00:00:00 UTC").inner_text()  # its cycle
    assert f"{100 * depeg['haircut']:.2f}" in row and f"{depeg['price_usd']:.6f}" in row  # ... on the page
    with served.client("ccp") as api:
        uses = [(a["account"], x) for a in api.get("/api/collateral/concentration").json()["accounts"]
                for x in a["limits"]]
    shown_limits = page.locator("#limits tbody tr")
    assert shown_limits.count() == len(uses) > 0
    for i, (account, use) in enumerate(uses):  # each limit's use and what it keeps out, as the API has them
        cells = shown_limits.nth(i).locator("td").all_inner_texts()
        assert cells[:3] == [account, use["dimension"], use["group"]]
        assert cells[6] == f"{100 * use['use']:,.1f}" and cells[7] == money(use["kept_out_usd"])
    shot(page, "ccp-collateral")
    page.goto(f"{served.url}/chain")
    assert page.inner_text("#block").replace(",", "").isdigit()
    assert chain["contracts"]["vault"] in page.inner_text("#contracts")
    assert int(page.inner_text("#block").replace(",", "")) >= chain["block"]
    shot(page, "ccp-chain")
    page.goto(f"{served.url}/reports")
    shot(page, "ccp-reports")


def test_a_member_sees_only_its_own(browser, served):
    page = logged_in(browser, served, "member-M02")
    page.click("text=My accounts")
    page.wait_for_url(f"{served.url}/accounts")
    shown = set(page.locator("#accounts tbody tr").evaluate_all("rows => rows.map(r => r.dataset.account)"))
    assert shown and all(account.startswith("M02-") for account in shown)
    other = page.goto(f"{served.url}/accounts/M01-HOUSE")
    assert other.status == 404 and "M01" not in page.inner_text("body").replace("M01-HOUSE'", "")
    page.goto(f"{served.url}/calls")
    assert all(text.startswith("M02") for text in page.locator("#calls tbody tr td:nth-child(2)").all_inner_texts()
               if text != "none")
    page.goto(f"{served.url}/collateral")
    concentration = page.locator("#concentration tbody tr td:first-child").all_inner_texts()
    assert concentration and all(text.startswith("M02") for text in concentration)
    limited = page.locator("#limits tbody tr td:first-child").all_inner_texts()
    assert limited and all(text.startswith("M02") for text in limited)
    shot(page, "member-collateral")


def test_a_call_answered_from_the_page_settles_on_chain(browser, served):
    grow(served, "M02-HOUSE", 2)
    cycle_now(served)
    with served.client("ccp") as api:
        call = api.get("/api/calls", params={"account": "M02-HOUSE", "state": "issued"}).json()[0]
    with served.client("ccp") as api:
        onchain = bytes.fromhex(api.get("/api/accounts/M02-HOUSE").json()["onchain_id"][2:])
    before = served.service.ledger.held(onchain, "TBILL")
    page = logged_in(browser, served, "member-M02")
    page.goto(f"{served.url}/calls")
    row = page.locator(f"#calls tr[data-key='{call['key']}']")
    assert row.locator(".amount").inner_text() == money(call["amount_usd"])
    assert row.locator(".countdown").inner_text() not in ("", "overdue")
    shot(page, "member-calls")
    row.locator("button.answer").click()
    page.wait_for_url(f"**/calls/{call['key']}")
    assert page.inner_text("#call-state") == "cured"
    shot(page, "member-call-cured")
    assert served.service.ledger.held(onchain, "TBILL") > before  # the cure is on chain
    with served.client("member-M02") as api:
        assert api.get(f"/api/calls/{call['key']}").json()["state"] == "cured"
    with served.client("ccp") as api:
        assert api.post("/api/chain/reconcile", headers={"Idempotency-Key": uuid.uuid4().hex}).json()["clean"]
