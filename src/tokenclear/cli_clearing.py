"""The clearing commands of the ``tokenclear`` CLI: ``demo``."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenclear.cli import RpcUrlOpt, app, fail, stderr, stdout
from tokenclear.errors import TokenclearError
from tokenclear.settings import get_settings


@app.command()
def demo(
    scenario: Annotated[str, typer.Option(help="svb (2023-03-10..13), ftx (2022-11-07..11), terra (2022-05-06..12)")]
    = "svb",
    members: Annotated[int, typer.Option(help="clearing members in the demo book")] = 50,
    rpc_url: RpcUrlOpt = None,
    database: Annotated[str | None, typer.Option("--database", help="SQLAlchemy URL (default: a new SQLite file "
                                                 "under TOKENCLEAR_WORK_DIR)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    verbose: Annotated[bool, typer.Option(help="log every instruction, price decision and call (stderr)")] = False,
) -> None:
    """Replay a real stress window end to end: margin, haircuts, calls cured on chain, reconciliation."""
    from tokenclear import logs
    from tokenclear.clearing.demo import Demo, default_database
    from tokenclear.ledger.connect import open_chain
    from tokenclear.store.store import open_store

    settings = get_settings()
    logs.configure(level=logging.INFO if verbose else logging.WARNING)
    url = database or settings.database_url or default_database(settings.work_dir)
    try:
        with Progress(TextColumn("{task.description:<40}"), BarColumn(), TimeElapsedColumn(), console=stderr,
                      transient=True) as progress:
            task = progress.add_task("opening the book", total=None)
            store = open_store(url)
            chain = open_chain(settings, rpc_url)

            def advance(text: str) -> None:
                progress.update(task, description=text, advance=1)

            runner = Demo(settings=settings, chain=chain, store=store, scenario=scenario, members=members,
                          progress=advance)
            progress.update(task, total=runner.stages)
            result = runner.run()
    except TokenclearError as error:
        raise fail(error) from None
    result.database = url
    body = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    steps = Table(title=f"{result.description}: {result.members} members, {result.accounts} accounts")
    for name in ("closes of", "cycle (UTC)", "USDC", "ETH", "BTC", "USDC haircut", "requirement USD", "collateral USD",
                 "calls", "called USD", "VM paid by / to members"):
        steps.add_column(name, justify="left" if name in ("closes of", "cycle (UTC)") else "right")
    for step in body["steps"]:
        prices = step["prices"]
        steps.add_row(step["as_of"], step["at"][:16].replace("T", " "), f"{prices.get('USDC', float('nan')):.4f}",
                      f"{prices.get('ETH', float('nan')):,.2f}", f"{prices.get('BTC', float('nan')):,.2f}",
                      f"{step['haircuts_bps']['TUSD'] / 100:.2f}%", f"{float(step['requirement_usd']):,.2f}",
                      f"{float(step['collateral_usd']):,.2f}", str(step["calls_issued"]),
                      f"{float(step['called_usd']):,.0f}",
                      f"{float(step['vm_paid_by_members_usd']):,.0f} / {float(step['vm_paid_to_members_usd']):,.0f}")
    stdout.print(steps)
    states = ", ".join(f"{state} {entry['count']}" for state, entry in sorted(body["calls"]["by_state"].items()))
    timing = body["price_move_to_settled_s"]
    stdout.print(f"margin calls: {body['calls']['issued']} for {float(body['calls']['amount_usd']):,.0f} USD "
                 f"({states or 'none'})")
    if timing["count"]:
        stdout.print(f"price move to collateral settled on chain: median {timing['median'] / 60:.1f} min, "
                     f"max {timing['max'] / 60:.1f} min (the member's answer included; the chain itself took "
                     f"{body['chain_time_per_pledge_s'] * 1000:.0f} ms a pledge)")
    recon = body["reconciliation"]
    verdict = "clean: book == chain for every account and token" if recon["clean"] else \
        f"{len(recon['breaks'])} break(s)"
    stdout.print(f"reconciliation: {verdict}")
    stdout.print(f"chain {body['chain']['name']} (id {body['chain']['chain_id']}), vault "
                 f"{body['chain']['contracts']['vault']}; book: {url}")
