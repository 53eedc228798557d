"""The dashboard: server-rendered pages (Jinja2) over the same views as the API, for the clearing house's risk
desk, the regulator and each member (who sees only its own accounts). Log-in exchanges the client's credentials
for the same access token as the API, kept in an HttpOnly, SameSite=Strict cookie. Small scripts sort tables and
count deadlines down; charts are SVG drawn on the server (:mod:`.charts`), so nothing is fetched from the
network."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from tokenclear.service import actions, charts, views
from tokenclear.service.auth import SCOPE_KEY, Principal, Unauthorised, authenticate
from tokenclear.service.core import Service
from tokenclear.service.idempotency import run_once

TEMPLATES = Path(__file__).resolve().parent / "templates"
COOKIE = "tokenclear_token"


class LoginNeeded(Exception):
    pass


def money(value) -> str:
    """USD text with thousands separators and two decimals ('' for None)."""
    if value is None or value == "":
        return ""
    return f"{Decimal(str(value)):,.2f}"


def units(value) -> str:
    return "" if value is None else f"{int(value):,}"


def moment(text: str | None) -> str:
    return "" if not text else datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S UTC")


def mount(app: FastAPI, service: Service, scheduler, caller) -> None:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters.update(money=money, units=units, moment=moment)

    def who(request: Request) -> Principal:
        token = request.cookies.get(COOKIE)
        if not token:
            raise LoginNeeded()
        try:
            principal = service.signer.check(token)
        except Unauthorised:
            raise LoginNeeded() from None
        request.scope[SCOPE_KEY] = principal
        if principal.role == "feed":
            raise views.Forbidden("the feed role has no dashboard")
        return principal

    @app.exception_handler(LoginNeeded)
    async def login_needed(request: Request, exc: LoginNeeded):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    def page(request: Request, name: str, principal: Principal, **context) -> HTMLResponse:
        from tokenclear.service.api import service_status

        status = service_status(service, scheduler)
        return templates.TemplateResponse(request, name, {"me": principal, "status": status,
                                                          "speed": status["clock"]["speed"], **context})

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/", error: str | None = None):
        return templates.TemplateResponse(request, "login.html", {"next": next, "error": error, "me": None})

    @app.post("/login", include_in_schema=False)
    def login(request: Request, client_id: str = Form(...), client_secret: str = Form(...), next: str = Form("/")):
        try:
            principal = authenticate(service.store, client_id, client_secret)
        except Unauthorised as error:
            return templates.TemplateResponse(request, "login.html", {"next": next, "error": str(error), "me": None},
                                              status_code=401)
        request.scope[SCOPE_KEY] = principal
        token, expires = service.signer.issue(principal)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=expires, httponly=True, samesite="strict")
        return response

    @app.get("/logout", include_in_schema=False)
    def logout():
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request):
        me = who(request)
        history = views.requirement_history(service, me)
        times = [datetime.fromisoformat(h["at"]) for h in history]
        chart = charts.lines({"requirement": (times, [float(h["requirement_usd"]) for h in history]),
                              "collateral counted": (times, [float(h["collateral_usd"]) for h in history])},
                             unit="USD", title="Requirement and collateral that counts, by cycle") if history else ""
        calls = views.calls(service, me)
        by_state: dict[str, dict] = {}
        for one in calls:
            entry = by_state.setdefault(one["state"], {"count": 0, "amount": Decimal(0)})
            entry["count"] += 1
            entry["amount"] += Decimal(one["amount_usd"])
        cycles = views.cycles(service, me)
        chain = views.chain(service) if me.reads_all else None
        return page(request, "overview.html", me, chart=chart, by_state=by_state, history=history[-10:],
                    open_calls=[c for c in calls if c["state"] not in ("cured", "defaulted")],
                    last_cycle=cycles[-1] if cycles else None, chain=chain, key=secrets.token_hex(12))

    @app.get("/accounts", response_class=HTMLResponse, include_in_schema=False)
    def accounts(request: Request):
        me = who(request)
        return page(request, "accounts.html", me, accounts=views.accounts(service, me))

    @app.get("/accounts/{account}", response_class=HTMLResponse, include_in_schema=False)
    def account(request: Request, account: str):
        me = who(request)
        head = views.accounts(service, me, account)[0]
        requirement = views.requirements(service, me, account)
        history = views.requirement_history(service, me, account)
        times = [datetime.fromisoformat(h["at"]) for h in history]
        chart = charts.lines({"requirement": (times, [float(h["requirement_usd"]) for h in history]),
                              "collateral counted": (times, [float(h["collateral_usd"]) for h in history])},
                             unit="USD", title=f"{account}: requirement and collateral, by cycle") if history else ""
        return page(request, "account.html", me, account=head, chart=chart,
                    requirement=(requirement["accounts"] or [None])[0], cycle=requirement["cycle"],
                    positions=views.positions(service, me, account),
                    collateral=views.collateral(service, me, account)["accounts"],
                    limits=views.concentration(service, me, account)["accounts"], one_account=True,
                    calls=views.calls(service, me, account_id=account), key=secrets.token_hex(12))

    @app.get("/collateral", response_class=HTMLResponse, include_in_schema=False)
    def collateral(request: Request):
        me = who(request)
        history = views.haircut_history(service)
        times = [datetime.fromisoformat(h["at"]) for h in history]
        symbols = sorted({s for h in history for s in h["tokens"]})
        haircut_chart = charts.lines(
            {s: (times, [100 * h["tokens"].get(s, {}).get("haircut", 0) for h in history]) for s in symbols},
            unit="haircut (%)", title="Haircut per token, by cycle") if history else ""
        usdc_chart = charts.lines(
            {"USDC (TUSD) price": (times, [h["tokens"].get("TUSD", {}).get("price_usd", 0) for h in history])},
            unit="USD per USDC", title="The stablecoin's price as the vault valued it, by cycle",
            right={"TUSD haircut": (times, [100 * h["tokens"].get("TUSD", {}).get("haircut", 0) for h in history])},
            right_unit="haircut (%)") if history else ""
        schedules = sorted({e["schedule"] for e in views.eligibility(service)})
        matrix: dict[str, dict] = {}
        for e in views.eligibility(service):
            matrix.setdefault(e["symbol"], {"asset": e["asset"]})[e["schedule"]] = e
        return page(request, "collateral.html", me, chart=haircut_chart, usdc_chart=usdc_chart, history=history,
                    symbols=symbols, terms=views.token_terms(service), schedules=schedules, matrix=matrix,
                    reviews=views.reviews(service), holdings=views.collateral(service, me)["accounts"],
                    limits=views.concentration(service, me)["accounts"], one_account=False)

    @app.get("/calls", response_class=HTMLResponse, include_in_schema=False)
    def calls(request: Request):
        me = who(request)
        return page(request, "calls.html", me, calls=views.calls(service, me), key=secrets.token_hex(12))

    @app.get("/calls/{key:path}", response_class=HTMLResponse, include_in_schema=False)
    def call(request: Request, key: str):
        me = who(request)
        return page(request, "call.html", me, call=views.call(service, me, key), key=secrets.token_hex(12))

    @app.post("/calls/{call_key:path}/answer", include_in_schema=False)
    async def answer(request: Request, call_key: str):
        me = who(request)
        form = await request.form()
        key = str(form.get("idempotency_key") or "")
        body = f"{call_key}|{form.get('symbol', actions.CURE_TOKEN)}".encode()

        def run() -> tuple[int, dict]:
            from tokenclear.service.api import REFUSED, error_answer

            try:
                return 200, actions.answer_call(service, me, key, call_key,
                                                symbol=str(form.get("symbol") or actions.CURE_TOKEN))
            except REFUSED as error:
                return error_answer(error)

        status, result, _ = await run_in_threadpool(lambda: run_once(
            service.store, actor=me.client, key=f"page:{key}", method="POST", path=request.url.path, body=body,
            handler=run))
        if status != 200:
            return page(request, "call.html", me, call=views.call(service, me, call_key), key=secrets.token_hex(12),
                        error=result.get("detail"))
        return RedirectResponse(f"/calls/{call_key}", status_code=303)

    @app.get("/chain", response_class=HTMLResponse, include_in_schema=False)
    def chain(request: Request):
        me = who(request)
        return page(request, "chain.html", me, chain=views.chain(service), key=secrets.token_hex(12),
                    instructions=views.instructions(service, me, limit=50))

    @app.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports(request: Request):
        me = who(request)
        return page(request, "reports.html", me, fund=views.default_fund(service, me),
                    defaults=views.defaults(service, me), reviews=views.reviews(service),
                    audit=views.audit(service, limit=50) if me.reads_all else [])
