"""Ledger commands: ``ledger build`` and ``ledger deploy``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tokenclear.cli.app import Format, RpcUrlOpt, fail, get_settings, ledger_app, stderr, stdout, write_text
from tokenclear.cli.output import Report, emit
from tokenclear.errors import TokenclearError


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
    out: Annotated[Path | None, typer.Option("--out", help="write the deployment record (JSON) here, for "
                                             "`tokenclear book load --deployment FILE`")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Deploy registry, collateral tokens, vault, settlement, HTLC and bid-bond escrow; print addresses."""
    from dataclasses import asdict

    from tokenclear.ledger.chain import InProcessChain
    from tokenclear.ledger.connect import deployment_roles, open_chain
    from tokenclear.ledger.ledger import Ledger

    try:
        settings = get_settings()
        chain = open_chain(settings, rpc_url)
        roles, warnings = deployment_roles(settings, chain)
        ledger = Ledger.deploy(chain, roles=roles)
    except TokenclearError as error:
        raise fail(error) from None
    if isinstance(chain, InProcessChain):
        warnings.append("the embedded EVM lives only as long as this command: these contracts are gone when it "
                        "exits; deploy to a node (--rpc-url, e.g. anvil --state FILE) to keep them")
    if out is not None:
        write_text(json.dumps(ledger.record(), indent=2), out)
    rows = [{"contract": name, "address": address} for name, address in ledger.addresses().items()]
    metadata = {"chain": chain.name, "evm": chain.evm, "chain_id": chain.chain_id, "operator": ledger.operator,
                "roles": asdict(ledger.roles),
                "deployed_block": ledger.deployed_block, "record": None if out is None else str(out)}

    def table(_: Report) -> None:
        view = Table(title=f"deployed on {chain.described} chain {chain.chain_id}", box=box.SIMPLE_HEAD)
        view.add_column("contract")
        view.add_column("address", no_wrap=True)
        for row in rows:
            view.add_row(row["contract"], row["address"])
        stdout.print(view)

    emit(Report("ledger deploy", rows, metadata, warnings), "json" if as_json else output.value, table)
