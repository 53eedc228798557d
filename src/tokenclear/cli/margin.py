"""Margin commands: ``margin``, ``backtest``, ``vm``, ``params span`` and ``params asvar``."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokenclear.cli.app import (
    Apc,
    AsOfOpt,
    ConfidenceOpt,
    Format,
    InstrumentsOpt,
    LookbackOpt,
    Measure,
    Method,
    MporOpt,
    OutOpt,
    PositionsOpt,
    PricesOpt,
    app,
    fail,
    load_context,
    params_app,
    stages,
    stderr,
    stdout,
    write_text,
)
from tokenclear.errors import TokenclearError
from tokenclear.margin.engine import MarginRun
from tokenclear.settings import get_settings


@app.command()
def margin(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    method: Annotated[Method, typer.Option(help="margin method")] = Method.hsvar,
    confidence: Annotated[float | None, typer.Option(help="confidence level for every class (default: "
                                                     "TOKENCLEAR_CONFIDENCE, else per class from margin_classes.csv: "
                                                     "99% listed, 99.5% OTC)")] = None,
    mpor_days: Annotated[int | None, typer.Option(help="margin period of risk in days for every class (default: "
                                                  "TOKENCLEAR_MPOR_DAYS, else per class: 2 listed, 5 OTC)")] = None,
    lookback: LookbackOpt = 1250,
    measure: Annotated[Measure, typer.Option(help="quantile (linear), kth worst loss, or es (97.5%)")] =
        Measure.quantile,
    as_of: AsOfOpt = None,
    stress_period: Annotated[str | None, typer.Option(help="START:END the window must include (default: "
                                                          "TOKENCLEAR_STRESS_PERIOD, 2008-09-01:2009-03-31; "
                                                          "'none' for none)")] = None,
    apc: Annotated[Apc | None, typer.Option(help="anti-procyclicality option (default: TOKENCLEAR_APC, "
                                                 "stressed-weight)")] = None,
    apc_release: Annotated[float | None, typer.Option(help="fraction of the APC buffer released in stress "
                                                           "(default: TOKENCLEAR_APC_RELEASE, 0)")] = None,
    holiday_addon: Annotated[bool | None, typer.Option(help="collect the holiday/weekend add-on (default: "
                                                            "TOKENCLEAR_HOLIDAY_ADDON, on)")] = None,
    concentration_addon: Annotated[bool | None, typer.Option(help="large-position add-on against ADV (default: "
                                                                  "TOKENCLEAR_CONCENTRATION_ADDON, on)")] = None,
    stress_addon: Annotated[Path | None, typer.Option(help="CSV account,addon_usd from a stress test")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Initial margin per account of a book, with its drivers and add-ons."""
    from dataclasses import replace

    from tokenclear import runner

    settings = get_settings()
    try:
        with stages(3) as step:
            inputs = step("reading inputs", lambda: runner.load_inputs(
                settings, positions=positions, instruments=instruments, prices=prices))
            setup = runner.risk_setup(settings, stress_period=stress_period, confidence=confidence,
                                      mpor_days=mpor_days, lookback=lookback, measure=measure.value,
                                      apc=apc.value if apc else None, apc_release=apc_release,
                                      holiday=holiday_addon, concentration=concentration_addon)
            notes = []
            if method is Method.asvar and apc is None and setup.options.apc in ("floor10y", "stressed-weight"):
                setup = replace(setup, options=replace(setup.options, apc="buffer"))
                notes.append(f"AS-VaR parameters are weekly and set in advance: the APC setting "
                             f"'{settings.apc}' cannot apply, the 25% buffer does (--apc to choose)")
            result = step(f"building scenarios, computing {method.value}", lambda: runner.run_book_margin(
                settings, inputs, setup, as_of=as_of, method=method.value, stress_addon=stress_addon))
            result = replace(result, warnings=notes + list(result.warnings))
            step("formatting", lambda: None)
    except TokenclearError as error:
        raise fail(error) from None
    emit_margin(result, output)


def emit_margin(result: MarginRun, output: Format) -> None:
    rows = [account.to_dict() for account in result.accounts]
    if output is not Format.table:  # the table prints them after itself
        for warning in result.warnings:
            stderr.print(f"[yellow]warning:[/] {warning}")
    if output is Format.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if output is Format.csv:
        buffer = io.StringIO()
        fields = ["account", "method", "margin_usd", "base_usd", "holiday_addon_usd", "history_addon_usd",
                  "concentration_addon_usd",
                  "stress_addon_usd", "apc_usd", "net_option_value_usd", "worst_scenario", "top_instrument"]
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            top = row["top_instruments"]
            writer.writerow({**row, "top_instrument": top[0]["instrument"] if top else ""})
        sys.stdout.write(buffer.getvalue())
        return
    title = f"{result.method} initial margin as of {result.as_of}"
    if result.scenarios:
        title += f" ({result.scenarios} scenarios)"
    table = Table(title=title)
    for name in ("account", "margin USD", "base", "holiday", "history", "concentration", "APC", "option value",
                 "worst scenario", "largest contributor"):
        table.add_column(name, justify="left" if name in ("account", "worst scenario", "largest contributor")
                         else "right")
    total = sum(account.margin_usd for account in result.accounts)
    for account in result.accounts:
        top = account.top_instruments[0] if account.top_instruments else None
        table.add_row(account.account, f"{account.margin_usd:,.2f}", f"{account.base_usd:,.2f}",
                      f"{account.holiday_addon_usd:,.2f}", f"{account.history_addon_usd:,.2f}",
                      f"{account.concentration_addon_usd:,.2f}",
                      f"{account.apc_usd:,.2f}", f"{account.net_option_value_usd:,.2f}", account.worst_scenario,
                      f"{top[0]} ({top[1]:,.0f})" if top else "")
    table.add_section()
    table.add_row("total", f"{total:,.2f}", "", "", "", "", "", "", "", "")
    stdout.print(table)
    held = {name: days for name, days in result.holiday_days.items() if days}
    if held:
        stdout.print(f"holiday add-on: {', '.join(sorted(held))} trade {max(held.values())} session(s) beyond the "
                     "MPOR before cash has moved MPOR times")
    for warning in result.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")


@app.command()
def backtest(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    account: Annotated[str | None, typer.Option(help="one account (default: the whole book)")] = None,
    confidence: ConfidenceOpt = 0.99,
    mpor_days: MporOpt = 2,
    lookback: LookbackOpt = 1250,
    measure: Annotated[Measure, typer.Option(help="quantile, kth or es")] = Measure.quantile,
    as_of: AsOfOpt = None,
    start: Annotated[str | None, typer.Option("--from", help="first test date")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last test date")] = None,
    step: Annotated[int | None, typer.Option(help="test every STEP-th date (default: the MPOR, non-overlapping "
                                                  "windows; shorter overlaps, with a warning)")] = None,
    stress_period: Annotated[str | None, typer.Option(help="START:END added to each test's window (default: "
                                                          "TOKENCLEAR_STRESS_PERIOD; 'none' for none)")] = None,
    method: Annotated[Method, typer.Option(help="margin method (hsvar on its windows; the others run as a "
                                                "margin run on every test date)")] = Method.hsvar,
    chart: Annotated[Path | None, typer.Option(help="write a PNG chart here")] = None,
    output: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Backtest a margin method against realised MPOR losses (Kupiec, Christoffersen, traffic light)."""
    from dataclasses import replace

    import numpy as np

    from tokenclear import runner
    from tokenclear.book.positions import Book
    from tokenclear.margin.backtest import run_backtest
    from tokenclear.margin.context import Context

    settings = get_settings()
    try:
        with stages(2) as step_:
            inputs, context = step_("reading inputs, building scenarios", lambda: load_context(
                settings, positions=positions, instruments=instruments, prices=prices, as_of=end or as_of,
                mpor_days=mpor_days, lookback=lookback, confidence=confidence, measure=measure,
                stress_period=stress_period))
            book = context.book
            if account is None:
                quantity = book.quantity.sum(axis=0).astype(np.float64)
            elif account in book.accounts:
                quantity = book.quantity[book.accounts.index(account)].astype(np.float64)
            else:
                raise runner.InputError(f"account '{account}' holds no positions", field="--account")
            portfolio = replace(inputs, book=Book(["backtest"], book.instruments, quantity[None, :].astype(np.int64)))

            def rebuild(date: np.datetime64) -> Context:
                return runner.context_for(portfolio, context.config, date)

            result = step_("backtesting", lambda: run_backtest(
                context, quantity, start=runner.parse_as_of(start, "--from"), end=runner.parse_as_of(end, "--to"),
                step=step, method=method.value, rebuild=rebuild))
    except TokenclearError as error:
        raise fail(error) from None
    summary = {"account": account or "book", **result.summary()}
    if chart is not None:
        from tokenclear.reports.backtest_chart import write_chart

        summary["chart"] = str(write_chart(result, chart, title=f"HS-VaR backtest, {account or 'whole book'}"))
    for warning in result.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")
    if output is Format.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    table = Table(title=f"backtest of {method.value} at {context.config.confidence:.1%}, MPOR "
                        f"{context.config.mpor_days} days")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key != "warnings":  # printed above, on stderr
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    stdout.print(table)


@params_app.command("span")
def params_span(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    as_of: AsOfOpt = None,
    coverage: Annotated[float, typer.Option(help="coverage of the scan ranges")] = 0.99,
    mpor_days: MporOpt = 2,
    lookback: LookbackOpt = 1250,
    stress_period: Annotated[str | None, typer.Option(help="START:END in the calibration window (default: "
                                                          "TOKENCLEAR_STRESS_PERIOD, as `margin --method span`; "
                                                          "'none' for none)")] = None,
    out: OutOpt = None,
) -> None:
    """SPAN parameters (scan ranges, spread multiples, inter-commodity credits) as of a date."""
    from tokenclear import runner
    from tokenclear.margin import span

    settings = get_settings()
    try:
        _, context = load_context(settings, positions=positions, instruments=instruments, prices=prices,
                                  as_of=as_of, mpor_days=mpor_days, lookback=lookback,
                                  stress_period=stress_period)
        for warning in context.warnings:
            stderr.print(f"[yellow]warning:[/] {warning}")
        text = span.calibrate(context, context.window(), coverage=coverage,
                              pairs=runner.span_pairs(settings)).to_json()
    except TokenclearError as error:
        raise fail(error) from None
    write_text(text, out)


@params_app.command("asvar")
def params_asvar(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    as_of: AsOfOpt = None,
    mpor_days: MporOpt = 2,
    lookback: LookbackOpt = 1250,
    out: OutOpt = None,
) -> None:
    """The weekly AS-VaR parameter set in force on a date (published the Friday before)."""
    from tokenclear.margin import asvar

    settings = get_settings()
    try:
        _, context = load_context(settings, positions=positions, instruments=instruments, prices=prices,
                                  as_of=as_of, mpor_days=mpor_days, lookback=lookback)
        text = asvar.calibrate(context).to_json()
    except TokenclearError as error:
        raise fail(error) from None
    write_text(text, out)


@app.command()
def vm(
    start: Annotated[str, typer.Option("--from", help="previous valuation date")],
    end: Annotated[str, typer.Option("--to", help="current valuation date")],
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Variation margin per account between two valuation dates (> 0 owed by the member)."""
    from tokenclear import runner
    from tokenclear.margin.variation import settlement_prices, variation_margin

    settings = get_settings()
    try:
        inputs = runner.load_inputs(settings, positions=positions, instruments=instruments, prices=prices)
        day_0, day_1 = runner.parse_as_of(start, "--from"), runner.parse_as_of(end, "--to")
        assert day_0 is not None and day_1 is not None
        names = inputs.book.instruments
        price_0 = settlement_prices(inputs.catalogue, names, inputs.market, inputs.specs, day_0,
                                    max_stale_days=settings.max_stale_days)
        price_1 = settlement_prices(inputs.catalogue, names, inputs.market, inputs.specs, day_1,
                                    max_stale_days=settings.max_stale_days)
        rows = variation_margin(inputs.book, inputs.catalogue, price_0, price_1)
    except TokenclearError as error:
        raise fail(error) from None
    if output is Format.json:
        sys.stdout.write(json.dumps([row.to_dict() for row in rows], indent=2) + "\n")
        return
    if output is Format.csv:
        sys.stdout.write("account,currency,vm\n" + "".join(f"{r.account},{r.currency},{r.vm}\n" for r in rows))
        return
    table = Table(title=f"variation margin {start} -> {end} (> 0 owed by the member)")
    for name in ("account", "currency", "VM"):
        table.add_column(name, justify="right" if name == "VM" else "left")
    for row in rows:
        table.add_row(row.account, row.currency, f"{row.vm:,.2f}")
    stdout.print(table)


