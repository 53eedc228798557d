"""The clearing commands of the ``tokenclear`` CLI: ``demo``, and the operator's ``book load``, ``cycle``,
``calls`` and ``reconcile`` on a book kept in a database with its chain on a JSON-RPC node."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tokenclear.cli.app import (
    Format,
    RpcUrlOpt,
    WideOpt,
    app,
    book_app,
    fail,
    get_settings,
    progress_bar,
    stderr,
    stdout,
)
from tokenclear.cli.output import Report, cell, emit, plain
from tokenclear.errors import InputError, TokenclearError


@app.command()
def demo(
    scenario: Annotated[str, typer.Option(help="svb (2023-03-10..13), ftx (2022-11-07..11), terra (2022-05-06..12)")]
    = "svb",
    members: Annotated[int, typer.Option(help="clearing members in the demo book")] = 50,
    rpc_url: RpcUrlOpt = None,
    database: Annotated[str | None, typer.Option("--database", help="SQLAlchemy URL (default: a new SQLite file "
                                                 "under TOKENCLEAR_WORK_DIR)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
    verbose: Annotated[bool, typer.Option(help="log every instruction, price decision and call (stderr)")] = False,
    default: Annotated[str | None, typer.Option("--default", help="after the last cycle, manage this member's "
                                                "default on chain (it answers no call), e.g. M07")] = None,
    default_scenario: Annotated[str | None, typer.Option(help="the stress scenario the default is managed under "
                                                         "(data/stress; default: --scenario)")] = None,
) -> None:
    """Replay a real stress window end to end: margin, haircuts, calls cured on chain, the default fund, a
    member's default managed on chain (--default), reconciliation."""
    from tokenclear import logs
    from tokenclear.clearing.demo import Demo, default_database
    from tokenclear.ledger.connect import open_chain
    from tokenclear.store.store import open_store

    settings = get_settings()
    logs.configure(level=logging.INFO if verbose else logging.ERROR)  # the report carries the warnings
    try:
        Demo.check(scenario, members, default)  # before anything is created: a refused run leaves no file behind
        if default_scenario is not None:
            from tokenclear.stress.scenarios import load_library

            library = load_library(settings.data_dir / "stress")
            if default_scenario not in library:
                raise InputError(f"unknown scenario '{default_scenario}'; choose one of {', '.join(library)}",
                                 field="--default-scenario")
        with progress_bar("{task.description:<40}") as progress:
            task = progress.add_task("opening the book", total=None)
            chain = open_chain(settings, rpc_url)
            url = database or settings.database_url or default_database(settings.work_dir)
            store = open_store(url)
            _refuse_a_used_book(store, url)

            def advance(text: str) -> None:
                progress.update(task, description=text, advance=1)

            runner = Demo(settings=settings, chain=chain, store=store, scenario=scenario, members=members,
                          progress=advance, default_member=default, default_scenario=default_scenario)
            progress.update(task, total=runner.stages)
            result = runner.run()
    except TokenclearError as error:
        raise fail(error) from None
    result.database = _book(url)
    emit_demo(result, "json" if as_json else output.value)


def _refuse_a_used_book(store, url: str) -> None:
    from tokenclear.clearing import system
    from tokenclear.errors import ConfigurationError

    try:
        record = system.recorded_deployment(store)
    except ConfigurationError:
        return
    raise ConfigurationError(f"the book at {_book(url)} already holds a clearing system (chain {record['chain_id']}, "
                             f"vault {record['addresses']['vault']}): run the demo on a new --database, or operate "
                             "this book with `tokenclear cycle`")


def emit_demo(result, output: str) -> None:
    """The demo's report: one row per cycle (totals, VM both ways, and what moved the shortfall, by driver),
    the calls, reconciliation and the chain in sections."""
    from tokenclear.clearing.drivers import DRIVERS

    body = result.to_dict()
    rows = []
    for step in body["steps"]:
        prices = step["prices"]
        row = {"as_of": step["as_of"], "at": step["at"], "usdc": prices.get("USDC"), "eth": prices.get("ETH"),
               "btc": prices.get("BTC"), "tusd_haircut_bps": step["haircuts_bps"]["TUSD"],
               "requirement": Decimal(step["requirement_usd"]), "collateral": Decimal(step["collateral_usd"]),
               "calls": step["calls_issued"], "called": Decimal(step["called_usd"]),
               "vm_paid_by_members": Decimal(step["vm_paid_by_members_usd"]),
               "vm_paid_to_members": Decimal(step["vm_paid_to_members_usd"]),
               "released": Decimal(step.get("released_usd", "0"))}
        for name in DRIVERS:
            entry = step["drivers"].get(name, {"calls": 0, "usd": "0"})
            key = name.replace(" ", "_").replace("-", "_")
            row[f"{key}_calls"], row[key] = entry["calls"], Decimal(entry["usd"])
        rows.append(row)
    warnings = body["chain"].get("warnings", []) + [
        f"{step['as_of']}: {w}" for step in body["steps"] for w in dict.fromkeys(step.get("warnings", []))] + [
        f"default of {body['default']['member']}: {note}" for note in (body["default"] or {}).get("notes", [])]
    metadata = {"scenario": body["scenario"], "description": body["description"], "members": body["members"],
                "accounts": body["accounts"], "currency": "USD", "book": body["database"],
                "chain": body["chain"]["name"], "evm": body["chain"]["evm"],
                "drivers": "USD each driver added to the shortfall of every account since the previous cycle "
                           "(> 0 raises it); *_calls: calls it was the main driver of"}
    sections = {"calls": body["calls"], "reconciliation": body["reconciliation"], "chain": body["chain"],
                "default_fund": body["default_fund"], **({"default": body["default"]} if body["default"] else {}),
                "book_totals_units": body["book_totals_units"],
                "price_move_to_settled_s": body["price_move_to_settled_s"],
                "chain_time_per_pledge_s": body["chain_time_per_pledge_s"]}

    def table(_) -> None:
        steps = Table(title=f"{result.description}: {result.members} members, {result.accounts} accounts "
                            "(thousand USD; exact in json/csv)", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      collapse_padding=True)
        for name in ("closes", "USDC", "haircut", "required", "collateral", "calls", "called", "VM paid",
                     "released"):
            steps.add_column(name, justify="left" if name == "closes" else "right", no_wrap=True)
        for row in rows:
            steps.add_row(row["as_of"][5:], f"{row['usdc']:.4f}", f"{row['tusd_haircut_bps'] / 100:.2f}%",
                          *(f"{row[name] / 1000:,.0f}" for name in ("requirement", "collateral")), str(row["calls"]),
                          *(f"{row[name] / 1000:,.0f}" for name in ("called", "vm_paid_by_members", "released")))
        stdout.print(steps)
        why = Table(title="what moved the shortfall since the previous cycle (USD, > 0 raises it; calls: main driver)",
                    box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        why.add_column("driver")
        for row in rows:
            why.add_column(row["as_of"][5:], justify="right", no_wrap=True)
        for name in DRIVERS:
            key = name.replace(" ", "_").replace("-", "_")
            why.add_row(name, *(f"{row[key]:,.0f} ({row[key + '_calls']})" for row in rows))
        stdout.print(why)
        stdout.print("VM paid by members equals VM paid to them each cycle (a matched book), in the stablecoin at "
                     "its market price")
        states = ", ".join(f"{state} {entry['count']}" for state, entry in sorted(body["calls"]["by_state"].items()))
        timing = body["price_move_to_settled_s"]
        stdout.print(f"margin calls: {body['calls']['issued']} for {float(body['calls']['amount_usd']):,.0f} USD "
                     f"({states or 'none'})")
        if timing["count"]:
            stdout.print(f"price move to collateral settled on chain: median {timing['median'] / 60:.1f} min, "
                         f"max {timing['max'] / 60:.1f} min (the member's answer included; the chain itself took "
                         f"{body['chain_time_per_pledge_s'] * 1000:.0f} ms a pledge)")
        fund = body["default_fund"]
        stdout.print(f"default fund (Cover 2 on the opening book, as of {fund['as_of']}): "
                     f"{float(fund['fund']):,.2f} USD, set by {fund['scenario']} ({' + '.join(fund['members'])}), "
                     f"collected on chain; CCP skin in the game {float(fund['skin_in_the_game']):,.2f}")
        if body["default"]:
            from tokenclear.cli.stress import print_case

            print_case(body["default"])
        recon = body["reconciliation"]
        verdict = "clean: book == chain for every account and token" if recon["clean"] else \
            f"{len(recon['breaks'])} break(s)"
        stdout.print(f"reconciliation: {verdict}")
        chain = body["chain"]
        engine = f" ({chain['evm']})" if chain.get("evm") else ""
        stdout.print(f"chain {chain['name']}{engine} (id {chain['chain_id']}), vault "
                     f"{chain['contracts']['vault']}; book: {body['database']}")

    emit(Report("demo", rows, metadata, warnings, sections), output, table)


DatabaseOpt = Annotated[str | None, typer.Option("--database", help="SQLAlchemy URL of the book (default: "
                                                 "TOKENCLEAR_DATABASE_URL)")]


def _open(database: str | None, rpc_url: str | None):
    """The book and its chain. The operator commands work on a book that outlives them, so both must be
    named: a database URL and a JSON-RPC node (the embedded EVM ends with the command)."""
    from tokenclear.errors import ConfigurationError
    from tokenclear.ledger.connect import open_chain
    from tokenclear.store.store import open_store

    url, settings = _book_url(database), get_settings()
    if not (rpc_url or settings.rpc_url):
        raise ConfigurationError("the embedded EVM lives only as long as one command; the book's chain must be a "
                                 "node: pass --rpc-url or set TOKENCLEAR_RPC_URL (e.g. anvil --state FILE)")
    return settings, open_store(url), open_chain(settings, rpc_url)


def _emit(report: Report, output: str, title: str, columns: list[str] | None = None) -> None:
    """``columns``: the table's (default: every field; json and csv always carry every field)."""
    def table(_: Report) -> None:
        view = Table(title=title, box=box.SIMPLE_HEAD)
        names = columns or (list(report.rows[0]) if report.rows else ["(none)"])
        for name in names:
            view.add_column(name)
        for row in report.rows:
            view.add_row(*(cell(plain(row[name])) for name in names))
        stdout.print(view)

    emit(report, output, table)


def _book(url) -> str:
    """The book's URL (a string or SQLAlchemy URL) as shown in output: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@book_app.command("load")
def book_load(
    accounts: Annotated[Path | None, typer.Option("--accounts", help="CSV account,member,segregation,wallet")] = None,
    positions: Annotated[Path | None, typer.Option("--positions", help="CSV account,instrument,quantity: the "
                                                   "end-of-day positions (replace the book's)")] = None,
    deployment: Annotated[Path | None, typer.Option("--deployment", help="a deployment record from `tokenclear "
                                                    "ledger deploy --out FILE`: use it instead of deploying")] = None,
    database: DatabaseOpt = None,
    rpc_url: RpcUrlOpt = None,
) -> None:
    """Onboard accounts (allow-list, vault accounts) and load positions; deploys the clearing system on the
    first load (or records --deployment). Loading the same files again changes nothing."""
    from tokenclear.book.positions import load_positions as read_positions
    from tokenclear.clearing import onboarding, system
    from tokenclear.errors import ConfigurationError
    from tokenclear.instruments.catalogue import load_catalogue
    from tokenclear.ledger.connect import deployment_roles
    from tokenclear.ledger.ledger import Ledger

    try:
        if accounts is None and positions is None:
            raise ConfigurationError("nothing to load: pass --accounts, --positions or both")
        settings, store, chain = _open(database, rpc_url)
        rows = onboarding.read_accounts(accounts) if accounts else []
        book = read_positions(positions, load_catalogue(settings.instruments_file)) if positions else None
        try:
            ledger = system.attach_ledger(store, chain)
        except ConfigurationError:
            if deployment is not None:
                ledger = Ledger.attach(chain, onboarding.read_deployment(deployment))
                stderr.print(f"recorded the deployment of {deployment}: vault {ledger.vault.address}")
            else:
                roles, notes = deployment_roles(settings, chain)
                ledger = Ledger.deploy(chain, roles=roles)
                for note in notes:
                    stderr.print(f"[yellow]warning:[/] {note}")
                stderr.print(f"deployed the clearing system on chain {chain.chain_id}: vault {ledger.vault.address}")
            system.record_deployment(store, ledger)
        else:
            if deployment is not None and onboarding.read_deployment(deployment) != system.recorded_deployment(store):
                raise ConfigurationError(f"the book already records another deployment than {deployment}")
        opened = onboarding.onboard(store, ledger, rows, salt=onboarding.account_salt(store), path=accounts)
        loaded = onboarding.load_positions(store, book, path=positions) if book is not None else None
    except TokenclearError as error:
        raise fail(error) from None
    stdout.print(f"accounts opened: {opened} (of {len(rows)} in the file)"
                 + ("" if loaded is None else f"; positions loaded: {loaded}"))


@app.command()
def cycle(
    at: Annotated[str | None, typer.Option("--at", help="when the cycle runs, ISO UTC (default: now)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="closes of YYYY-MM-DD (default: the day before "
                                              "--at)")] = None,
    database: DatabaseOpt = None,
    rpc_url: RpcUrlOpt = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv (one row per token, the totals "
                                                        "in the metadata)")] = Format.table,
) -> None:
    """Escalate or default calls past their deadline, then one margin cycle on the book: prices, haircuts, VM,
    requirements, calls, floors on chain."""
    from datetime import UTC, datetime

    from tokenclear.clearing import system
    from tokenclear.clearing.interfaces import SimulatedClock, SystemClock
    from tokenclear.runner import parse_as_of

    try:
        moment = datetime.now(UTC)
        if at is not None:
            try:
                moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                raise InputError(f"'{at}' is not an ISO time", field="--at") from None
            if moment.tzinfo is None:
                raise InputError(f"'{at}' has no time zone: write it in UTC (…Z or +00:00)", field="--at")
        settings, store, chain = _open(database, rpc_url)
        day = parse_as_of(as_of)
        workflow = system.open_workflow(settings, store, chain, SimulatedClock(moment) if at else SystemClock())
        recovery = workflow.recover()
        moved: list[tuple[str, str]] = []  # calls past their deadline escalate, past the grace default
        while step := workflow.process_due():
            moved += step
        summary = workflow.run_cycle(moment, as_of=day)
    except TokenclearError as error:
        raise fail(error) from None
    metadata = {"key": summary.key, "at": summary.at, "as_of": summary.as_of,
                "currency": "USD", "instructions_recovered": len(recovery),
                "requirement": summary.requirement_usd, "collateral": summary.collateral_usd,
                "calls_issued": summary.calls_issued, "called": summary.called_usd,
                "vm_paid_by_members": summary.vm_paid_by_members_usd,
                "vm_paid_to_members": summary.vm_paid_to_members_usd, "book": _book(store.engine.url)}
    rows = [{"token": token.symbol, "asset": token.asset, "haircut_bps": summary.haircuts_bps.get(token.symbol),
             "price": summary.prices.get(token.asset), "price_status": summary.price_status.get(token.asset)}
            for token in system.TOKENS]
    stuck = [f"instruction {key} failed on recovery: see `tokenclear instructions list`" for key in recovery.failed] \
        + [f"instruction {key} expired on recovery (no longer valid)" for key in recovery.expired]
    report = Report("cycle", rows, metadata, stuck + list(summary.warnings),
                    {"calls_moved": [{"key": key, "state": state} for key, state in moved],
                     "vm_blocked": summary.vm_blocked, "drivers": summary.drivers})

    def table(_: Report) -> None:
        view = Table(title=f"cycle {summary.key}", box=box.SIMPLE_HEAD, show_header=False)
        view.add_column("field")
        view.add_column("value", justify="right")
        for name, value in metadata.items():
            view.add_row(name, cell(plain(value)))
        view.add_row("calls moved", ", ".join(f"{key} -> {state}" for key, state in moved) or "none")
        attributed = ", ".join(f"{name} {entry['calls']}" for name, entry in summary.drivers.items() if entry["calls"])
        view.add_row("calls by main driver", attributed or ("none" if not summary.calls_issued else
                                                            "not measured: no previous cycle to compare"))
        for row in rows:
            view.add_row(f"{row['token']} haircut / price", f"{row['haircut_bps']} bps / {row['price']} "
                                                             f"({row['price_status'] or 'on chain'})")
        stdout.print(view)

    emit(report, output.value, table)


@app.command("calls")
def calls_command(
    state: Annotated[str, typer.Option(help="open, all, or one state (issued, cured, defaulted, ...)")] = "open",
    database: DatabaseOpt = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
    wide: WideOpt = False,
) -> None:
    """Margin calls in the book, oldest first."""
    from sqlalchemy import select

    from tokenclear.clearing import calls as lifecycle
    from tokenclear.store.models import MarginCall
    from tokenclear.store.queries import utc

    try:
        known = ("open", "all", *lifecycle.TRANSITIONS)
        if state not in known:
            raise InputError(f"unknown state '{state}'; choose one of {', '.join(known)}", field="--state")
        store = _store(database)
        query = select(MarginCall).order_by(MarginCall.issued_at, MarginCall.id)
        if state == "open":
            query = query.where(MarginCall.state.in_(lifecycle.OPEN_STATES))
        elif state != "all":
            query = query.where(MarginCall.state == state)
        with store.session() as session:
            rows = [{"key": c.key, "message_id": c.message_id, "account": c.account_id, "state": c.state,
                     "amount": c.amount, "currency": c.currency, "cured": c.cured_amount,
                     "issued_at": utc(c.issued_at), "deadline": utc(c.deadline)} for c in session.scalars(query)]
    except TokenclearError as error:
        raise fail(error) from None
    _emit(Report("calls", rows, {"state": state, "book": _book(store.engine.url)}), output.value,
          f"margin calls ({state})", None if wide else ["account", "state", "amount", "cured", "deadline"])


@app.command("call-message")
def call_message_command(
    key: Annotated[str, typer.Argument(help="the call's key, as `tokenclear calls` lists it")],
    out: Annotated[Path | None, typer.Option("--out", help="write the XML here (default: stdout)")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Export a margin call as an ISO 20022 colr.003.001.05 MarginCallRequest (schema-checked)."""
    from tokenclear.clearing import call_desk, system
    from tokenclear.cli.app import write_text

    try:
        store = _store(database)
        text = call_desk.call_message(store, key, vault_address=system.recorded_addresses(store)["vault"]).decode()
    except TokenclearError as error:
        raise fail(error) from None
    write_text(text.rstrip("\n"), out)


@app.command("answer")
def answer_command(
    message: Annotated[Path, typer.Argument(help="a member's colr.004.001.05 (agreement) or colr.009.001.05 "
                                                 "(dispute) XML file")],
    database: DatabaseOpt = None,
) -> None:
    """Import a member's answer to a margin call: an agreement acknowledges it, a dispute is recorded."""
    from datetime import UTC, datetime

    from tokenclear.clearing import call_desk

    try:
        if not message.is_file():
            raise InputError("no such file", path=message)
        state = call_desk.receive_answer(_store(database), datetime.now(UTC), message.read_bytes(),
                                         source=str(message))
    except TokenclearError as error:
        raise fail(error) from None
    stdout.print(f"{message}: the call is {state}")


def _store(database: str | None):
    """The book alone (commands that do not touch the chain)."""
    from tokenclear.store.store import open_store

    return open_store(_book_url(database))


def _book_url(database: str | None) -> str:
    """The book's URL from --database or the settings (refused when neither names one); logs quiet: the
    result carries the warnings, no log line repeats them."""
    from tokenclear import logs
    from tokenclear.errors import ConfigurationError

    logs.configure(level=logging.ERROR)
    url = database or get_settings().database_url
    if not url:
        raise ConfigurationError("no book: pass --database or set TOKENCLEAR_DATABASE_URL")
    return url


instructions_app = typer.Typer(help="Instructions to the chain that need an operator: list the pending, failed and "
                                    "expired ones; retry or expire one.", no_args_is_help=True)
app.add_typer(instructions_app, name="instructions")


@instructions_app.command("list")
def instructions_list(
    status: Annotated[str, typer.Option(help="stuck (pending and failed), all, or one of pending, confirmed, "
                                             "failed, expired")] = "stuck",
    database: DatabaseOpt = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Instructions in the book by state, oldest first, each with its reason when it failed or expired."""
    from tokenclear.clearing.instructions import CONFIRMED, EXPIRED, FAILED, PENDING
    from tokenclear.store.queries import instructions_in, utc

    choices = {"stuck": (PENDING, FAILED), "all": (PENDING, CONFIRMED, FAILED, EXPIRED),
               **{one: (one,) for one in (PENDING, CONFIRMED, FAILED, EXPIRED)}}
    try:
        if status not in choices:
            raise InputError(f"unknown status '{status}'; choose one of {', '.join(choices)}", field="--status")
        store = _store(database)
        with store.session() as session:
            rows = [{"key": one.key, "kind": one.kind, "status": one.status, "created_at": utc(one.created_at),
                     "updated_at": utc(one.updated_at), "reason": (one.result or {}).get("reason", "")}
                    for one in instructions_in(session, choices[status])]
    except TokenclearError as error:
        raise fail(error) from None
    _emit(Report("instructions", rows, {"status": status, "book": _book(store.engine.url)}), output.value,
          f"instructions ({status})", ["key", "kind", "status", "updated_at", "reason"])


@instructions_app.command("retry")
def instructions_retry(
    key: Annotated[str, typer.Argument(help="the failed instruction's key")],
    database: DatabaseOpt = None,
    rpc_url: RpcUrlOpt = None,
) -> None:
    """Send a failed instruction again once its cause is cleared; it is re-validated against the book first."""
    from tokenclear.clearing import system
    from tokenclear.clearing.interfaces import SystemClock

    try:
        settings, store, chain = _open(database, rpc_url)
        result = system.open_workflow(settings, store, chain, SystemClock()).retry(key)
    except TokenclearError as error:
        raise fail(error) from None
    stdout.print(f"{key}: confirmed in block {result.get('block')}", highlight=False)


@instructions_app.command("expire")
def instructions_expire(
    key: Annotated[str, typer.Argument(help="the pending or failed instruction's key")],
    reason: Annotated[str, typer.Option(help="why it must not be sent (kept with it)")],
    database: DatabaseOpt = None,
) -> None:
    """Close a pending or failed instruction without sending it; it is never sent again under its key."""
    from datetime import UTC, datetime

    from tokenclear.clearing.instructions import expire

    try:
        if not reason.strip():
            raise InputError("a reason is required", field="--reason")
        expire(_store(database), key, reason.strip(), datetime.now(UTC))
    except TokenclearError as error:
        raise fail(error) from None
    stdout.print(f"{key}: expired ({reason.strip()})", highlight=False)


@app.command()
def reconcile(
    database: DatabaseOpt = None,
    rpc_url: RpcUrlOpt = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """The book against the chain, per account and token; exit code 1 when anything differs."""
    from tokenclear.clearing import system
    from tokenclear.clearing.interfaces import SystemClock

    try:
        settings, store, chain = _open(database, rpc_url)
        breaks = system.open_workflow(settings, store, chain, SystemClock()).reconcile()
    except TokenclearError as error:
        raise fail(error) from None
    rows = [{"account": b.account, "asset": b.asset, "book_units": str(b.book_units),
             "chain_units": str(b.chain_units), "cause": b.cause} for b in breaks]
    if output is Format.table and not rows:
        stdout.print("reconciliation clean: book == chain for every account and token")
    else:
        _emit(Report("reconcile", rows, {"clean": not rows, "breaks": len(rows), "units": "token base units",
                                         "book": _book(store.engine.url)}), output.value, "reconciliation breaks")
    if rows:
        raise typer.Exit(code=1)
