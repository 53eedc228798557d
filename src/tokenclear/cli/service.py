"""``tokenclear serve`` (the API, the dashboard and the scheduler in one process) and ``tokenclear clients``
(the service's OAuth2 clients)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from tokenclear.cli.app import RpcUrlOpt, app, fail, get_settings, stderr, stdout
from tokenclear.errors import InputError, TokenclearError

clients_app = typer.Typer(help="The service's API clients (OAuth2 client credentials).", no_args_is_help=True)
app.add_typer(clients_app, name="clients")

DEFAULT_SPEED = 60.0
DatabaseOpt = Annotated[str | None, typer.Option("--database", help="SQLAlchemy URL of the book (default: "
                                                 "TOKENCLEAR_DATABASE_URL, else a new SQLite file under "
                                                 "TOKENCLEAR_WORK_DIR)")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    database: DatabaseOpt = None,
    rpc_url: RpcUrlOpt = None,
    clock: Annotated[str, typer.Option("--clock", help="wall (the real time) or replay (from --from at --speed)")]
    = "wall",
    start: Annotated[str | None, typer.Option("--from", help="replay start, ISO 8601 with its zone, e.g. "
                                              "2023-03-10T00:00Z")] = None,
    speed: Annotated[float | None, typer.Option(help="replay seconds per wall second (3600: an hour a second; "
                                                "default 60)")] = None,
    members: Annotated[int | None, typer.Option(help="members of a new book (the demo's generated book; default "
                                                "50)", min=2)] = None,
    tick: Annotated[float, typer.Option(help="wall seconds between the scheduler's looks at what is due",
                                        min=0.05)] = 1.0,
    verbose: Annotated[bool, typer.Option(help="log every instruction, price decision and request (stderr)")] = False,
) -> None:
    """Serve the clearing system: the HTTP API (/api, OpenAPI docs at /docs), the dashboard (/) and the scheduler
    (end-of-day cycles, intraday revaluation, call deadlines, monthly haircut review and fund sizing)."""
    import uvicorn

    from tokenclear import logs
    from tokenclear.service.app import build

    settings = get_settings()
    logs.configure(level=logging.INFO if verbose else logging.WARNING)
    try:
        service_clock = _clock(clock, start, speed, settings)
        stderr.print("opening the book (a new one takes seconds on the embedded EVM, minutes on py-evm or a node) ...")
        app_, service, scheduler = build(settings, database=database, rpc_url=rpc_url, clock=service_clock,
                                         members=members, tick_s=tick)
    except TokenclearError as error:
        raise fail(error) from None
    base = f"http://{host}:{port}"
    stdout.print(f"book      {service.database}")
    stdout.print(f"chain     {service.chain.described} (chain id {service.chain.chain_id})")
    stdout.print(f"clock     {_described(service_clock)}")
    if service.credentials is not None:
        stdout.print(f"clients   {service.credentials} (the secrets of ccp, regulator, feed and member-Mxx; "
                     "shown only there)")
    if service.recovered:
        stdout.print(f"recovery  {service.recovered} instruction(s) left in flight were completed")
    for warning in service.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")
    stdout.print(f"dashboard {base}/")
    stdout.print(f"API       {base}/api  (OpenAPI docs {base}/docs, tokens at {base}/oauth/token)")
    uvicorn.run(app_, host=host, port=port, log_level="info" if verbose else "warning", access_log=verbose)


def _clock(kind: str, start: str | None, speed: float | None, settings):
    from tokenclear.service.clock import ReplayClock, WallClock, parse_moment

    if kind == "replay":
        if start is None:
            raise InputError("a replay starts somewhere: give --from, e.g. 2023-03-10T00:00Z", field="--from")
        return ReplayClock(parse_moment(start), DEFAULT_SPEED if speed is None else speed)
    if kind != "wall":
        raise InputError(f"'{kind}': wall or replay", field="--clock")
    for name, value in (("--from", start), ("--speed", speed)):
        if value is not None:
            raise InputError(f"{name} is for --clock replay (the wall clock runs at its own pace)", field=name)
    _check_fresh_data(settings)
    return WallClock()


def _check_fresh_data(settings) -> None:
    """The wall clock needs yesterday's closes: refuse a data folder that ends earlier, naming its last date."""
    from datetime import UTC, datetime

    import numpy as np

    from tokenclear.market.files import load_folder

    market = load_folder(settings.prices_dir, ["usdc_usd", "btc_usd"])
    last = min(market.get(name).dates[-1] for name in ("usdc_usd", "btc_usd"))
    today = np.datetime64(datetime.now(UTC).date(), "D")
    if today - last > np.timedelta64(settings.max_stale_days + 1, "D"):
        raise InputError(f"the price data in {settings.prices_dir} ends {last}: a service on the wall clock values "
                         f"at yesterday's closes ({today - 1}); refresh the data folder, or replay history with "
                         "--clock replay --from 2023-03-10T00:00Z", field="--clock")


def _described(clock) -> str:
    info = clock.describe()
    if info["kind"] == "replay":
        return f"replay from {info['start']} at {info['speed']:,.0f}x"
    return "wall (UTC)"


@clients_app.command("add")
def clients_add(
    client_id: Annotated[str, typer.Argument(help="the client's id")],
    role: Annotated[str, typer.Option(help="ccp, member, feed or regulator")],
    database: Annotated[str, typer.Option("--database", help="SQLAlchemy URL of the served book")],
    member: Annotated[str | None, typer.Option(help="the member a member's client acts for")] = None,
) -> None:
    """Register an API client; its secret is printed once (stored only as an argon2 hash)."""
    from tokenclear.service.auth import add_client
    from tokenclear.store.store import open_store

    try:
        secret = add_client(open_store(database), client_id, role, member)
    except TokenclearError as error:
        raise fail(error) from None
    stdout.print(f"client_id     {client_id}\nrole          {role}" + (f"\nmember        {member}" if member else ""))
    stdout.print(f"client_secret {secret}")
