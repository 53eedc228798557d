"""The HTTP API (FastAPI): OAuth2 client credentials at ``/oauth/token``, the resources under ``/api``, OpenAPI
docs at ``/docs``; the dashboard (:mod:`.dashboard`) in the same app. Every request is in the audit log with its
actor; every write takes an Idempotency-Key (:mod:`.idempotency`); errors are JSON ``{"detail", "field"}`` with
a 4xx status naming what to fix, and nothing of a refused request is written.

(No ``from __future__ import annotations`` here: FastAPI reads the dependencies declared inside
:func:`create_app` from the live annotations.)"""


import asyncio
import base64
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

import structlog
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from tokenclear import __version__
from tokenclear.clearing.instructions import WorkflowError
from tokenclear.errors import ConfigurationError, InputError, LedgerError, TokenclearError
from tokenclear.ledger.chain import ChainUnavailable
from tokenclear.service import actions, views
from tokenclear.service.auth import SCOPE_KEY as PRINCIPAL
from tokenclear.service.auth import Principal, Unauthorised, authenticate
from tokenclear.service.core import Service
from tokenclear.service.idempotency import KeyProblem, check_key, run_once, stored_answer
from tokenclear.service.scheduler import Scheduler
from tokenclear.service.views import Forbidden, NotFound
from tokenclear.service.whatif import WhatIf
from tokenclear.store.models import AuditEntry
from tokenclear.store.store import KeyReused, StoreError

COOKIE = "tokenclear_token"
READERS = ("ccp", "regulator", "member")


# ---- errors ------------------------------------------------------------------------------------------------
def error_answer(error: BaseException) -> tuple[int, dict]:
    """The status and body of a refused request."""
    if isinstance(error, Unauthorised):
        return 401, {"detail": str(error)}
    if isinstance(error, Forbidden):
        return 403, {"detail": str(error)}
    if isinstance(error, NotFound):
        return 404, {"detail": str(error)}
    if isinstance(error, KeyProblem):
        return error.status, {"detail": error.message, "field": "Idempotency-Key"}
    if isinstance(error, InputError):
        return 422, {"detail": str(error), "field": error.field, "line": error.line, "row": error.row}
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        return 422, {"detail": f"{field}: {first['msg']}", "field": field}
    if isinstance(error, (KeyReused, ConfigurationError, ValueError)):
        return 422, {"detail": str(error)}
    if isinstance(error, ChainUnavailable | StoreError):
        return 503, {"detail": str(error)}
    if isinstance(error, WorkflowError | LedgerError | TokenclearError):
        return 409, {"detail": str(error)}
    raise error


REFUSED = (Unauthorised, Forbidden, NotFound, KeyProblem, TokenclearError, ValidationError, ValueError)


# ---- request bodies ----------------------------------------------------------------------------------------
class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Units = Annotated[int | str, Field(description="token base units (an integer; as text for amounts beyond 2^53)")]


class PledgeIn(Body):
    account: str
    symbol: str = Field(description="TUSD, TMMF, TMMFD, TBILL, WETH or WBTC")
    units: Units


class ReleaseIn(PledgeIn):
    pass


class MemberIn(Body):
    id: str = Field(description="2 to 16 capital letters and digits")
    wallet: str = Field(description="the member's wallet address; one the service holds no key for is the "
                                    "member's own, and the member signs its own transactions")
    segregations: list[Literal["HOUSE", "CUSTOMER"]] = ["HOUSE", "CUSTOMER"]


class SignedIn(Body):
    raw: str = Field(description="a transaction signed with the member's own wallet, hex (0x...)")


class SubstitutionIn(Body):
    account: str
    out_symbol: str
    out_units: Units
    in_symbol: str
    in_units: Units


class AnswerIn(Body):
    symbol: str = Field(default=actions.CURE_TOKEN, description="the token pledged to cure the call")
    units: Units | None = Field(default=None, description="default: what covers the call at the vault's values now")


class PositionIn(Body):
    account: str
    instrument: str
    quantity: int


class PositionsIn(Body):
    positions: list[PositionIn]


class WhatIfPosition(Body):
    instrument: str
    quantity: int


class WhatIfIn(Body):
    account: str | None = Field(default=None, description="add the positions to this account's own")
    positions: list[WhatIfPosition]


class QuoteIn(Body):
    series: str = Field(description="usdc_usd, eth_usd or btc_usd")
    price: str | float = Field(description="USD per unit, as decimal text")
    source: str | None = None
    at: datetime | None = Field(default=None, description="default: the service clock's now")


class QuotesIn(Body):
    quotes: list[QuoteIn]


class TokenParametersIn(Body):
    haircut_floor_bps: int | None = Field(default=None, description="haircut never below this (bps); null: none")
    suspended: bool = False
    reason: str


class DefaultIn(Body):
    member: str
    scenario: str = Field(description="the stress scenario the default is managed under (data/stress)")


class CycleIn(Body):
    kind: Literal["scheduled", "intraday"] = "scheduled"


# ---- the app -----------------------------------------------------------------------------------------------
#: Writes in worker threads at once. Chain writes take the service's lock in turn (and a cycle holds it for
#: seconds); the others wait on the event loop, so the worker threads stay free for reads.
WRITERS = 4


def create_app(service: Service, scheduler: Scheduler | None = None) -> FastAPI:
    app = FastAPI(title="tokenclear", version=__version__,
                  description="Tokenized collateral and margin for derivatives clearing: the clearing house's "
                              "service. Money is decimal text (USD), token amounts integer base units.")
    oauth2 = OAuth2(flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl="/oauth/token")),
                    auto_error=False)
    what_if = WhatIf(service)
    app.state.service, app.state.scheduler = service, scheduler
    writers = asyncio.Semaphore(WRITERS)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse({"detail": f"{field or 'body'}: {first.get('msg', 'invalid')}", "field": field or None,
                             "errors": [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                                        for e in exc.errors()]}, status_code=422)

    for kind in REFUSED:
        @app.exception_handler(kind)
        async def refused(request: Request, exc: Exception) -> JSONResponse:
            status, body = error_answer(exc)
            return JSONResponse(body, status_code=status)

    audit = AuditWriter(service.store)
    app.state.audit = audit
    app.add_middleware(AuditMiddleware, writer=audit)

    # ---- who is calling ---------------------------------------------------------------------------------
    async def caller(request: Request, authorization: Annotated[str | None, Depends(oauth2)]) -> Principal:
        """(async: a token check is cheap, and a dependency that is not async costs a hop to a worker thread)"""
        token = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
        token = token or request.cookies.get(COOKIE)
        if not token:
            raise Unauthorised("no access token: get one at POST /oauth/token (client credentials) and send it "
                               "as 'Authorization: Bearer <token>'")
        principal = service.signer.check(token)
        request.scope[PRINCIPAL] = principal
        return principal

    def role(*roles: str) -> Callable[..., Principal]:
        async def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
            if principal.role not in roles:
                raise Forbidden(f"the {principal.role} role may not do this (it needs {' or '.join(roles)})")
            return principal
        return check

    Reader = Annotated[Principal, Depends(role(*READERS))]
    Writer = Annotated[Principal, Depends(role("ccp", "member"))]
    Operator = Annotated[Principal, Depends(role("ccp"))]
    Feed = Annotated[Principal, Depends(role("feed", "ccp"))]
    AuditReader = Annotated[Principal, Depends(role("ccp", "regulator"))]

    async def write(request: Request, principal: Principal, handler: Callable[[str], dict],
                    status: int = 200, *, book_only: bool = False) -> JSONResponse:
        """A write under its Idempotency-Key. A write that may take the service's lock (the chain, a cycle) waits
        for a writer's turn; ``book_only`` writes (quotes, positions: the database alone) do not."""
        key = check_key(request.headers.get("idempotency-key"))
        body = await request.body()

        def once() -> tuple[int, dict, bool]:
            def run() -> tuple[int, dict]:
                try:
                    return status, handler(key)
                except REFUSED as error:
                    return error_answer(error)
            return run_once(service.store, actor=principal.client, key=key, method=request.method,
                            path=request.url.path, body=body, handler=run)

        stored = await run_in_threadpool(lambda: stored_answer(service.store, actor=principal.client, key=key,
                                                               method=request.method, path=request.url.path,
                                                               body=body))
        if stored is not None:  # a replay: answered at once, without a turn to write
            return JSONResponse(stored[1], status_code=stored[0], headers={"Idempotent-Replayed": "true"})
        if book_only:
            code, answer, replayed = await run_in_threadpool(once)
        else:
            async with writers:  # a write waits for its turn here, not in a worker thread the reads need
                code, answer, replayed = await run_in_threadpool(once)
        return JSONResponse(answer, status_code=code, headers={"Idempotent-Replayed": str(replayed).lower()})

    # ---- OAuth2 -------------------------------------------------------------------------------------------
    @app.post("/oauth/token", tags=["auth"], summary="Exchange client credentials for an access token")
    def token(request: Request, grant_type: Annotated[str, Form()] = "client_credentials",
              client_id: Annotated[str | None, Form()] = None,
              client_secret: Annotated[str | None, Form()] = None) -> dict:
        if grant_type != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "detail": "grant_type: client_credentials only",
                                 "field": "grant_type"}, status_code=400)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):  # RFC 6749 §2.3.1: HTTP Basic is the preferred way
            try:
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise Unauthorised("Authorization: Basic is not base64 of client_id:client_secret") from None
        if not client_id or not client_secret:
            raise Unauthorised("client_id and client_secret are required (form fields or HTTP Basic)")
        principal = authenticate(service.store, client_id, client_secret)
        request.scope[PRINCIPAL] = principal
        access, expires = service.signer.issue(principal)
        return {"access_token": access, "token_type": "bearer", "expires_in": expires, "role": principal.role,
                "member": principal.member}

    # ---- status ---------------------------------------------------------------------------------------------
    @app.get("/api/status", tags=["service"])
    def status(principal: Annotated[Principal, Depends(caller)]) -> dict:
        return service_status(service, scheduler)

    @app.get("/api/members", tags=["book"])
    def members(principal: Reader) -> list[dict]:
        return views.members(service, principal)

    @app.post("/api/members", tags=["book"], summary="Onboard a member: its wallet allow-listed, its accounts opened")
    async def onboard_member(request: Request, body: MemberIn, principal: Operator) -> JSONResponse:
        return await write(request, principal, lambda key: actions.onboard_member(service, principal, body.id,
                                                                                  body.wallet, body.segregations))

    @app.get("/api/accounts", tags=["book"])
    def accounts(principal: Reader) -> list[dict]:
        return views.accounts(service, principal)

    @app.get("/api/accounts/{account}", tags=["book"])
    def account(account: str, principal: Reader) -> dict:
        return {**views.accounts(service, principal, account)[0],
                "positions": views.positions(service, principal, account),
                "collateral": views.collateral(service, principal, account)["accounts"],
                "calls": views.calls(service, principal, account_id=account)}

    @app.get("/api/positions", tags=["book"])
    def positions(principal: Reader, account: str | None = None) -> list[dict]:
        return views.positions(service, principal, account)

    @app.post("/api/positions", tags=["book"], summary="Replace the positions of the accounts named (JSON or CSV)")
    async def upload_positions(request: Request, principal: Writer) -> JSONResponse:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        raw = await request.body()
        if kind == "application/json":
            import json

            try:
                parsed = json.loads(raw or b"null")
            except ValueError as error:
                raise InputError(f"not JSON: {error}", field="body") from None
            rows = parsed.get("positions") if isinstance(parsed, dict) else parsed
            if not isinstance(rows, list):
                raise InputError("expected {\"positions\": [{account, instrument, quantity}, ...]}", field="positions")
            data, source = rows, "positions"
        elif kind in ("text/csv", "application/csv", "text/plain"):
            data, source = raw, "positions.csv"
        else:
            raise InputError(f"content type '{kind}': send application/json or text/csv", field="Content-Type")
        return await write(request, principal, lambda key: actions.upload_positions(service, principal, data, source),
                           book_only=True)

    @app.get("/api/requirements", tags=["margin"], summary="The last cycle's requirements with their drivers")
    def requirements(principal: Reader, account: str | None = None) -> dict:
        return views.requirements(service, principal, account)

    @app.get("/api/requirements/history", tags=["margin"])
    def requirement_history(principal: Reader, account: str | None = None) -> list[dict]:
        return views.requirement_history(service, principal, account)

    @app.post("/api/margin/what-if", tags=["margin"], summary="The margin of a hypothetical portfolio (no write)")
    def margin_what_if(body: WhatIfIn, principal: Reader) -> dict:
        return what_if.margin(principal, [p.model_dump() for p in body.positions], body.account)

    @app.get("/api/cycles", tags=["margin"])
    def cycles(principal: Reader) -> list[dict]:
        return views.cycles(service, principal, None if scheduler is None else scheduler.sessions_closed)

    @app.post("/api/cycles", tags=["margin"], summary="Run a cycle now (operator)")
    async def run_cycle(body: CycleIn, request: Request, principal: Operator) -> JSONResponse:
        return await write(request, principal, lambda key: actions.run_cycle(service, principal, body.kind))

    @app.get("/api/collateral", tags=["collateral"])
    def collateral(principal: Reader, account: str | None = None) -> dict:
        return views.collateral(service, principal, account)

    @app.get("/api/collateral/concentration", tags=["collateral"],
             summary="How each account uses each concentration limit, and what wrong-way risk keeps out")
    def concentration(principal: Reader, account: str | None = None) -> dict:
        return views.concentration(service, principal, account)

    @app.get("/api/collateral/haircuts", tags=["collateral"], summary="Haircuts now and through the cycles")
    def haircuts(principal: Reader) -> dict:
        return {"now": views.token_terms(service), "history": views.haircut_history(service),
                "reviews": views.reviews(service)}

    @app.get("/api/collateral/eligibility", tags=["collateral"])
    def eligibility(principal: Reader) -> list[dict]:
        return views.eligibility(service)

    @app.get("/api/calls", tags=["calls"])
    def calls(principal: Reader, state: str | None = None, account: str | None = None) -> list[dict]:
        return views.calls(service, principal, state=state, account_id=account)

    @app.get("/api/calls/{key:path}/colr.003", tags=["calls"], summary="The call as an ISO 20022 colr.003.001.05",
             response_class=Response)
    def call_message(key: str, principal: Reader) -> Response:
        views.call(service, principal, key)
        with service.lock:
            data = service.workflow.call_message(key)
        return Response(data, media_type="application/xml",
                        headers={"Content-Disposition": f'attachment; filename="{key.replace(":", "_")}.colr.003.xml"'})

    @app.post("/api/calls/{key:path}/answer", tags=["calls"],
              summary="Answer a call: JSON pledges collateral to cure it; an XML colr.004/colr.009 agrees or disputes")
    async def answer(key: str, request: Request, principal: Writer) -> JSONResponse:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        raw = await request.body()
        if kind in ("application/xml", "text/xml"):
            return await write(request, principal, lambda k: actions.answer_message(service, principal, key, raw))
        if kind != "application/json" and raw:
            raise InputError(f"content type '{kind}': application/json or application/xml", field="Content-Type")
        body = AnswerIn.model_validate_json(raw or b"{}")
        return await write(request, principal, lambda k: actions.answer_call(service, principal, k, key,
                                                                             symbol=body.symbol, units=body.units))

    @app.get("/api/calls/{key:path}", tags=["calls"], summary="A call with its state history")
    def call(key: str, principal: Reader) -> dict:
        return views.call(service, principal, key)

    @app.get("/api/instructions", tags=["instructions"])
    def instructions(principal: Reader, status: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict]:
        return views.instructions(service, principal, status=status, limit=limit)

    @app.post("/api/instructions/pledge", tags=["instructions"])
    async def pledge(body: PledgeIn, request: Request, principal: Writer) -> JSONResponse:
        return await write(request, principal, lambda key: actions.pledge(service, principal, key, body.account,
                                                                          body.symbol, body.units))

    @app.post("/api/instructions/release", tags=["instructions"], summary="Ask for collateral back")
    async def release(body: ReleaseIn, request: Request, principal: Writer) -> JSONResponse:
        return await write(request, principal, lambda key: actions.release(service, principal, key, body.account,
                                                                           body.symbol, body.units))

    @app.post("/api/instructions/substitution", tags=["instructions"])
    async def substitution(body: SubstitutionIn, request: Request, principal: Writer) -> JSONResponse:
        return await write(request, principal, lambda key: actions.substitute(
            service, principal, key, body.account, body.out_symbol, body.out_units, body.in_symbol, body.in_units))

    @app.get("/api/prices", tags=["prices"])
    def prices(principal: Reader) -> dict:
        return views.prices(service)

    @app.post("/api/prices", tags=["prices"], summary="Post quotes into the oracle guard (price feeds)")
    async def post_prices(body: QuotesIn, request: Request, principal: Feed) -> JSONResponse:
        quotes = [q.model_dump() for q in body.quotes]
        return await write(request, principal, lambda key: actions.post_prices(service, principal, quotes),
                           book_only=True)

    @app.get("/api/parameters", tags=["parameters"])
    def parameters(principal: Reader) -> dict:
        return views.parameters(service)

    @app.put("/api/parameters/tokens/{symbol}", tags=["parameters"], summary="A haircut floor or suspension (risk)")
    async def token_parameters(symbol: str, body: TokenParametersIn, request: Request,
                               principal: Operator) -> JSONResponse:
        return await write(request, principal, lambda key: actions.set_token_parameters(
            service, principal, key, symbol, haircut_floor_bps=body.haircut_floor_bps, suspended=body.suspended,
            reason=body.reason))

    @app.get("/api/chain", tags=["chain"])
    def chain(principal: Reader) -> dict:
        return views.chain(service)

    @app.post("/api/chain/unsigned/pledge", tags=["chain"],
              summary="The transactions a member with its own wallet signs to pledge (nothing is sent)")
    async def unsigned_pledge(request: Request, body: PledgeIn, principal: Writer) -> JSONResponse:
        return await write(request, principal, lambda key: actions.unsigned_pledge(service, principal, key,
                                                                                   body.account, body.symbol,
                                                                                   body.units))

    @app.post("/api/chain/transactions", tags=["chain"],
              summary="Relay a transaction a member signed with its own wallet; the book follows the vault")
    async def relay(request: Request, body: SignedIn, principal: Writer) -> JSONResponse:
        return await write(request, principal, lambda key: actions.relay(service, principal, body.raw))

    @app.post("/api/chain/reconcile", tags=["chain"], summary="Reconcile the book against the chain now")
    async def reconcile(request: Request, principal: Operator) -> JSONResponse:
        return await write(request, principal, lambda key: actions.reconcile(service, principal))

    @app.get("/api/default-fund", tags=["stress and default"])
    def default_fund(principal: Reader) -> dict:
        return views.default_fund(service, principal)

    @app.get("/api/defaults", tags=["stress and default"])
    def defaults(principal: Reader) -> list[dict]:
        return views.defaults(service, principal)

    @app.get("/api/reports/exposure", tags=["reports"], summary="The regulator's exposure report (JSON, HTML or PDF)",
             response_class=Response)
    def exposure_report(principal: AuditReader, format: Literal["json", "html", "pdf"] = "json") -> Response:
        from tokenclear.service import report

        with service.lock:
            figures = report.exposure(service)
        if format == "html":
            return Response(report.html(service, figures), media_type="text/html")
        if format == "pdf":
            return Response(report.pdf(service, figures), media_type="application/pdf",
                            headers={"Content-Disposition": 'attachment; filename="tokenclear-exposure.pdf"'})
        return JSONResponse(figures)

    @app.post("/api/defaults", tags=["stress and default"], summary="Declare a member in default and manage it")
    async def declare_default(body: DefaultIn, request: Request, principal: Operator) -> JSONResponse:
        return await write(request, principal, lambda key: actions.declare_default(service, principal, body.member,
                                                                                   body.scenario))

    @app.get("/api/audit", tags=["service"])
    def audit_log(principal: AuditReader, actor: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> list[dict]:
        return views.audit(service, actor=actor, limit=limit)

    from tokenclear.service import dashboard

    dashboard.mount(app, service, scheduler, caller)
    return app


def service_status(service: Service, scheduler: Scheduler | None) -> dict:
    with service.store.session() as session:
        from tokenclear.store import queries

        last = queries.last_closed_cycle(session)
    holder = service.leases.holder_of()
    return {"version": __version__, "instance": service.instance, "clock": service.clock.describe(),
            "now": service.clock.now().isoformat(), "database": _shown(service.database),
            "chain": service.chain.name, "evm": service.chain.evm,
            "last_cycle": None if last is None else views.cycle_head(last),
            "schedule": None if scheduler is None else {**scheduler.status, "calendars": scheduler.calendars,
                                                        "latest_closes": scheduler.closes},
            "lease": None if holder is None else {"holder": holder[0], "expires_at": views.iso(holder[1])},
            "recovered_instructions": service.recovered, "warnings": service.warnings}


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class AuditWriter:
    """Audit entries written by one thread in batches (a transaction every ``interval_s`` or ``batch`` entries), so
    a request does not wait for its own entry's commit. A process killed outright loses at most the last interval's
    entries; a stop flushes them all."""

    def __init__(self, store, *, interval_s: float = 0.2, batch: int = 500) -> None:
        self.store, self.interval_s, self.batch = store, interval_s, batch
        self._queue: queue.SimpleQueue[AuditEntry | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tokenclear-audit", daemon=True)
        self._thread.start()

    def add(self, entry: AuditEntry) -> None:
        self._queue.put(entry)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        done = False
        while not done:
            entries = []
            try:
                first = self._queue.get(timeout=self.interval_s)
            except queue.Empty:
                continue
            if first is None:
                done = True
            else:
                entries.append(first)
            while len(entries) < self.batch:
                try:
                    one = self._queue.get_nowait()
                except queue.Empty:
                    break
                if one is None:
                    done = True
                    break
                entries.append(one)
            self.flush(entries)

    def flush(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        try:
            with self.store.session() as session:
                session.add_all(entries)
        except StoreError as error:
            structlog.get_logger("tokenclear.audit").error("audit entries not written", count=len(entries),
                                                            error=str(error))


class AuditMiddleware:
    """Every request into the audit log with its actor (set by the authentication in the request's scope), its
    answer's status and its time (a plain ASGI middleware: no task group per request)."""

    def __init__(self, app, writer: AuditWriter) -> None:
        self.app, self.writer = app, writer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sent(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            principal = scope.get(PRINCIPAL)
            headers = dict(scope.get("headers") or [])
            key = headers.get(b"idempotency-key")
            self.writer.add(AuditEntry(
                at=datetime.now(UTC), actor=principal.client if principal else "anonymous",
                role=principal.role if principal else "-", method=scope["method"], path=scope["path"][:256],
                status_code=status["code"], idempotency_key=None if key is None else key.decode("latin-1")[:128],
                milliseconds=(time.perf_counter() - started) * 1000))
