"""Ledger commands: ``ledger build`` and ``ledger deploy``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from tokenclear.cli.app import RpcUrlOpt, fail, ledger_app, stderr, stdout
from tokenclear.errors import TokenclearError
from tokenclear.settings import get_settings


@ledger_app.command("build")
def ledger_build(
    check: Annotated[bool, typer.Option("--check", help="only report contracts changed since the last build")]
    = False,
) -> None:
    """Compile contracts/*.vy into the shipped artefacts (reproducible: same sources, same bytecode)."""
    from tokenclear.ledger import build

    if check:
        stale = build.stale_sources()
        if stale:
            stderr.print(f"[bold red]stale:[/] {', '.join(stale)}: run `tokenclear ledger build`")
            raise typer.Exit(code=1)
        stderr.print("artefacts match the sources")
        return
    stderr.print(f"wrote {build.write_artifacts()}")


@ledger_app.command("deploy")
def ledger_deploy(
    rpc_url: RpcUrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Deploy registry, collateral tokens, vault, settlement, HTLC and bid-bond escrow; print addresses."""
    from tokenclear.ledger.connect import open_chain
    from tokenclear.ledger.ledger import Ledger

    try:
        chain = open_chain(get_settings(), rpc_url)
        ledger = Ledger.deploy(chain)
    except TokenclearError as error:
        raise fail(error) from None
    out = {"chain": chain.name, "chain_id": chain.chain_id, "operator": ledger.operator,
           "contracts": ledger.addresses()}
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    table = Table(title=f"deployed on {chain.name} chain {chain.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    for name, address in out["contracts"].items():
        table.add_row(name, address)
    stdout.print(table)
