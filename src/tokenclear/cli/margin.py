"""Margin commands: ``margin``, ``backtest``, ``vm``, ``params span`` and ``params asvar``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from tokenclear.cli.app import (
    AllowDefaultsOpt,
    Apc,
    AsOfOpt,
    BookFormat,
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
    SumDuplicatesOpt,
    WideOpt,
    app,
    confidence_range,
    fail,
    get_settings,
    load_context,
    mpor_range,
    params_app,
    progress_bar,
    stages,
    stdout,
    within,
    write_text,
)
from tokenclear.errors import InputError, TokenclearError

if TYPE_CHECKING:
    from tokenclear.margin.engine import MarginRun


@app.command()
def margin(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    method: Annotated[Method, typer.Option(help="margin method")] = Method.hsvar,
    confidence: Annotated[float | None, typer.Option(callback=confidence_range,
                                                     help="confidence level for every class (default: "
                                                     "TOKENCLEAR_CONFIDENCE, else per class from margin_classes.csv: "
                                                     "99% listed, 99.5% OTC)")] = None,
    mpor_days: Annotated[int | None, typer.Option(callback=mpor_range,
                                                  help="margin period of risk in days for every class (default: "
                                                  "TOKENCLEAR_MPOR_DAYS, else per class: 2 listed, 5 OTC)")] = None,
    lookback: LookbackOpt = None,
    measure: Annotated[Measure, typer.Option(help="quantile (linear), kth worst loss, or es (97.5%)")] =
        Measure.quantile,
    as_of: AsOfOpt = None,
    stress_period: Annotated[str | None, typer.Option(help="START:END the window must include (default: "
                                                          "TOKENCLEAR_STRESS_PERIOD, 2008-09-01:2009-03-31; "
                                                          "'none' for none)")] = None,
    apc: Annotated[Apc | None, typer.Option(help="anti-procyclicality option (default: TOKENCLEAR_APC, "
                                                 "stressed-weight)")] = None,
    apc_release: Annotated[float | None, typer.Option(callback=within(0, 1), help="fraction of the APC buffer "
                                                           "released in stress (default: TOKENCLEAR_APC_RELEASE, 0)")]
    = None,
    holiday_addon: Annotated[bool | None, typer.Option(help="collect the holiday/weekend add-on (default: "
                                                            "TOKENCLEAR_HOLIDAY_ADDON, on)")] = None,
    concentration_addon: Annotated[bool | None, typer.Option(help="large-position add-on against ADV (default: "
                                                                  "TOKENCLEAR_CONCENTRATION_ADDON, on)")] = None,
    stress_addon: Annotated[Path | None, typer.Option(help="CSV account,addon_usd from a stress test")] = None,
    settlements: Annotated[Path | None, typer.Option("--settlements", help="CSV date,instrument,price: the "
                                                     "exchange's settlement prices, each contract month's price "
                                                     "on the as-of date (default: the index close)")] = None,
    params: Annotated[Path | None, typer.Option("--params", help="--method span: published SPAN parameters "
                                                "instead of calibrating: a CME SPAN risk-parameter file (.pa2, "
                                                "expanded format; positions by exchange symbology) or "
                                                "`tokenclear params span` JSON or CSV")]
    = None,
    output: Annotated[BookFormat, typer.Option("--format", help="table, json, csv or parquet (with --out)")] =
        BookFormat.table,
    out: Annotated[Path | None, typer.Option("--out", help="write the json, csv or parquet here (default: "
                                                          "stdout)")] = None,
    wide: WideOpt = False,
    allow_defaults: AllowDefaultsOpt = None,
    sum_duplicates: SumDuplicatesOpt = False,
    workers: Annotated[int | None, typer.Option(min=1, help="distribute the accounts over a local Dask cluster of "
                                                            "this many worker processes (docs/scale.md)")] = None,
    cluster: Annotated[str | None, typer.Option(help="distribute the accounts over the Dask cluster of this "
                                                     "scheduler, tcp://host:8786 (default: TOKENCLEAR_DASK_"
                                                     "SCHEDULER; unset: one process)")] = None,
) -> None:
    """Initial margin per account of a book, with its drivers and add-ons."""
    from dataclasses import replace

    from tokenclear import runner

    settings = get_settings()
    origin = "--cluster" if cluster else "TOKENCLEAR_DASK_SCHEDULER"  # what named the scheduler, for errors
    cluster = cluster or (settings.dask_scheduler if workers is None else None)
    if workers is not None or cluster:
        refused = {"--params": params, "--stress-addon": stress_addon, "--wide": wide or None}
        return distributed_margin(settings, output, out, positions, instruments, prices, method, as_of, workers,
                                  cluster, origin, sum_duplicates, allow_defaults, settlements,
                                  [name for name, value in refused.items() if value is not None],
                                  dict(stress_period=stress_period, confidence=confidence, mpor_days=mpor_days,
                                       lookback=lookback, measure=measure.value, apc=apc.value if apc else None,
                                       apc_release=apc_release, holiday=holiday_addon,
                                       concentration=concentration_addon))
    if output is BookFormat.parquet and out is None:
        raise fail(InputError("Parquet is a binary file: give --out FILE.parquet", field="--format"))
    if output is BookFormat.table and out is not None:
        raise fail(InputError("the table is for the terminal: choose --format json, csv or parquet to write --out",
                              field="--out"))
    if params is not None and params.is_file():
        from tokenclear.span_pa2 import is_pa2

        if is_pa2(params):
            given = {"--instruments": instruments, "--prices": prices, "--settlements": settlements,
                     "--stress-addon": stress_addon, "--confidence": confidence, "--mpor-days": mpor_days,
                     "--stress-period": stress_period, "--apc": apc, "--apc-release": apc_release,
                     "--holiday-addon/--no-holiday-addon": holiday_addon, "--allow-defaults": allow_defaults,
                     "--concentration-addon/--no-concentration-addon": concentration_addon,
                     "--lookback": lookback,
                     "--measure": None if measure is Measure.quantile else measure}
            return span_file_margin(method, params, positions, as_of, sum_duplicates, output, wide,
                                    [name for name, value in given.items() if value is not None], out)
    try:
        with stages(3) as step:
            inputs = step("reading inputs", lambda: runner.load_inputs(
                settings, positions=positions, instruments=instruments, prices=prices, allow_defaults=allow_defaults,
                sum_duplicates=sum_duplicates))
            if settlements is not None:
                from tokenclear.market.settlements import load_settlements

                inputs = replace(inputs, settlements=load_settlements(settlements,
                                                                      set(inputs.catalogue.instruments)))
            setup = runner.risk_setup(settings, stress_period=stress_period, confidence=confidence,
                                      mpor_days=mpor_days, lookback=lookback, measure=measure.value,
                                      apc=apc.value if apc else None, apc_release=apc_release,
                                      holiday=holiday_addon, concentration=concentration_addon)
            notes = []
            if params is not None:
                if method is not Method.span:
                    raise runner.InputError("published parameters are SPAN's: use --method span", field="--params")
                from tokenclear.margin_files import load_span_parameters

                setup = replace(setup, options=replace(setup.options, span_parameters=load_span_parameters(params)))
                notes.append(f"SPAN parameters from {params} (as of "
                             f"{setup.options.span_parameters.as_of}), not calibrated")
            if method is Method.notional and confidence is not None:
                raise runner.InputError("does not apply to --method notional: its margin is a schedule of rates on "
                                        "notional, with no confidence level", field="--confidence")
            if params is not None and confidence is not None:
                raise runner.InputError("does not apply to published SPAN parameters: their scan ranges were set "
                                        "at the publisher's coverage", field="--confidence")
            fixed = method is Method.asvar or params is not None
            if fixed and apc is None and setup.options.apc in ("floor10y", "stressed-weight"):
                setup = replace(setup, options=replace(setup.options, apc="buffer"))
                notes.append(f"{'AS-VaR' if params is None else 'published SPAN'} parameters are set in advance: "
                             f"the APC setting '{settings.apc}' cannot apply, the 25% buffer does (--apc to choose)")
            result = step(f"building scenarios, computing {method.value} for {len(inputs.book.accounts):,} "
                          "accounts", lambda: runner.run_book_margin(
                settings, inputs, setup, as_of=as_of, method=method.value, stress_addon=stress_addon,
                allow_defaults=allow_defaults))
            result = replace(result, warnings=notes + list(result.warnings))
            step("formatting", lambda: None)
    except TokenclearError as error:
        raise fail(error) from None
    files = inputs_used(settings, inputs, positions, instruments)
    for name, path in (("span_parameters", params), ("settlements", settlements)):
        if path is not None:
            from tokenclear.cli.output import digest

            files[name] = digest(path)
    emit_margin(result, output, margin_metadata(settings, inputs, setup, result, files), wide, out)


def distributed_margin(settings, output: BookFormat, out: Path | None, positions: Path | None,
                       instruments: Path | None, prices: Path | None, method: Method, as_of: str | None,
                       workers: int | None, cluster: str | None, origin: str, sum_duplicates: bool,
                       allow_defaults: bool | None,
                       settlements: Path | None, refused: list[str], risk: dict) -> None:
    """``margin --workers N`` / ``--cluster ADDR``: the accounts margined partition by partition on Dask, the
    rows streamed to ``--out`` (:mod:`tokenclear.distributed`)."""
    from dataclasses import replace
    from decimal import Decimal

    from tokenclear import distributed, runner
    from tokenclear.cli.app import stderr
    from tokenclear.cli.output import RowStream

    stream = None
    try:
        if refused:
            raise InputError(f"{', '.join(refused)} do(es) not apply to a distributed run", field=refused[0])
        if workers is not None and cluster:
            raise InputError("give --workers (a local cluster) or --cluster (an existing one), not both",
                             field="--cluster")
        if output is BookFormat.table or out is None:
            raise InputError("a distributed run streams its rows to a file: give --format json, csv or parquet and "
                             "--out FILE", field="--out")
        source = positions or settings.demo_positions_file
        setup = runner.risk_setup(settings, **risk)
        notes = []
        if method is Method.asvar and risk["apc"] is None and setup.options.apc in ("floor10y", "stressed-weight"):
            setup = replace(setup, options=replace(setup.options, apc="buffer"))
            notes.append(f"AS-VaR parameters are set in advance: the APC setting '{settings.apc}' cannot apply, the "
                         "25% buffer does (--apc to choose)")
        if method is Method.notional and risk["confidence"] is not None:
            raise InputError("does not apply to --method notional: its margin is a schedule of rates on notional, "
                             "with no confidence level", field="--confidence")
        with stages(2) as step:
            plan = step("reading the book's contracts, building scenarios", lambda: runner.distributed_setup(
                settings, setup, positions=source, instruments=instruments, prices=prices, as_of=as_of,
                method=method.value, allow_defaults=allow_defaults, settlements=settlements))
            first = plan.first
            files = inputs_used(settings, plan.inputs, source, instruments)
            metadata = {**run_parameters(plan.inputs, setup, as_of=first.as_of, method=method.value,
                                         currency=first.currency, scenarios=plan.scenarios, accounts=None,
                                         files=files), "partitions": len(plan.parts)}
            warnings = [*notes, *plan.warnings, *holiday_note(plan.holiday_days)]
            for warning in warnings:
                stderr.print(f"[yellow]warning:[/] {warning}")
            stream = RowStream("margin", output.value, out, metadata, warnings)
            client, local = distributed.start_client(cluster, workers, origin)
            total, count, late = Decimal("0.00"), 0, []

            def compute() -> None:
                nonlocal total, count
                for _, rows, warnings in distributed.run(client, plan.parts, plan.inputs.catalogue,
                                                         plan.instruments, plan.prepared,
                                                         sum_duplicates=sum_duplicates):
                    stream.write(rows)
                    total += sum((row["margin"] for row in rows), Decimal("0.00"))
                    count += len(rows)
                    late.extend(one for one in warnings if one not in late)

            try:
                step(f"margining {len(plan.parts):,} partition(s) on "
                     f"{'cluster ' + cluster if cluster else f'{workers} local worker(s)'}", compute)
            finally:
                client.close()
                if local is not None:
                    local.close()
        for warning in late:
            stderr.print(f"[yellow]warning:[/] {warning}")
        stream.close({"accounts": count}, late, {"total": total, "holiday_days": plan.holiday_days})
        stderr.print(f"wrote {out} ({count:,} accounts)")
    except TokenclearError as error:
        if stream is not None:
            stream.abort()
        raise fail(error) from None
    except BaseException:
        if stream is not None:
            stream.abort()
        raise


def span_file_margin(method: Method, params: Path, positions: Path | None, as_of: str | None, sum_duplicates: bool,
                     output: BookFormat, wide: bool, refused: list[str], out: Path | None = None) -> None:
    """``margin --params FILE.pa2``: SPAN from a CME risk-parameter file's own risk arrays."""
    from tokenclear import runner
    from tokenclear.cli.output import digest

    try:
        if method is not Method.span:
            raise runner.InputError("a SPAN risk-parameter file gives SPAN margin: use --method span", field="--params")
        if refused:
            raise runner.InputError(f"{', '.join(refused)} do(es) not apply to a published SPAN file: its risk "
                                    "arrays and rates are the exchange's, with no prices, calibration or add-ons",
                                    field=refused[0])
        if positions is None:
            raise runner.InputError("give the positions to margin (exchange,contract,expiry,put_call,strike and "
                                    "long,short or quantity): the demo book names no exchange contracts",
                                    field="--positions")
        with stages(2) as step:
            result, header = step("reading the SPAN file and positions, computing span", lambda: runner.run_span_file(
                params, positions, as_of=as_of, sum_duplicates=sum_duplicates))
            step("formatting", lambda: None)
    except TokenclearError as error:
        raise fail(error) from None
    metadata = {"as_of": result.as_of, "method": "span", "currency": result.currency, "source": "SPAN file",
                **header, "scenarios": result.scenarios, "accounts": len(result.accounts),
                "inputs": {"positions": digest(positions), "span_parameters": digest(params)}}
    emit_margin(result, output, metadata, wide, out)


def inputs_used(settings, inputs, positions: Path | None, instruments: Path | None) -> dict[str, dict]:
    """Path and SHA-256 of every file a book's run reads (the output contract's ``inputs``)."""
    from tokenclear.cli.output import digest

    return {"positions": digest(positions or settings.demo_positions_file),
            "instruments": digest(instruments or settings.instruments_file),
            "underlyings": digest(settings.underlyings_file), "margin_classes": digest(settings.margin_classes_file),
            "concentration": digest(settings.concentration_file),
            "span_intercommodity": digest(settings.intercommodity_file),
            "prices": digest(inputs.prices_dir, inputs.market.series)}


def margin_metadata(settings, inputs, setup, result: MarginRun, files: dict[str, dict]) -> dict[str, object]:
    """The run's parameters: per clearing class in the book its confidence and MPOR, and the options."""
    return run_parameters(inputs, setup, as_of=result.as_of, method=result.method, currency=result.currency,
                          scenarios=result.scenarios, accounts=len(result.accounts), files=files)


def run_parameters(inputs, setup, *, as_of: str, method: str, currency: str, scenarios: int,
                   accounts: int | None, files: dict[str, dict]) -> dict[str, object]:
    """The metadata of a margin run (``accounts`` None: not known yet, a streamed run's)."""
    used = sorted({one.clearing_class for one in inputs.catalogue.select(inputs.book.instruments)})
    classes = {name: {"confidence": setup.classes[name].confidence if setup.confidence is None else setup.confidence,
                      "mpor_days": setup.classes[name].mpor_days if setup.mpor_days is None else setup.mpor_days}
               for name in used if name in setup.classes}
    config = setup.config
    out = {"as_of": as_of, "method": method, "currency": currency, "classes": classes,
           "measure": config.measure, "lookback": config.lookback, "scenarios": scenarios,
           "stress_period": None if config.stress_period is None else "{}:{}".format(*config.stress_period),
           "apc": setup.options.apc or "none", "apc_release": setup.options.apc_released_fraction,
           "holiday_addon": setup.options.holiday, "concentration_addon": setup.concentration,
           "accounts": accounts, "inputs": files}
    if accounts is None:
        del out["accounts"]
    return out


def holiday_note(holiday_days: dict[str, int]) -> list[str]:
    """The warning that names the contracts the holiday add-on charges, if any."""
    held = {name: days for name, days in holiday_days.items() if days}
    return ([f"holiday add-on: {', '.join(sorted(held))} trade {max(held.values())} session(s) beyond the MPOR "
             "before cash has moved MPOR times"] if held else [])


def emit_margin(result: MarginRun, output: Format | BookFormat, metadata: dict[str, object], wide: bool = False,
                out: Path | None = None) -> None:
    from tokenclear.cli.output import Report, emit

    report = Report("margin", [account.row() for account in result.accounts], metadata,
                    [*result.warnings, *holiday_note(result.holiday_days)],
                    {"total": sum((account.margin for account in result.accounts), Decimal(0)),
                     "contributors": {account.account: [{"instrument": name, "loss": loss}
                                                        for name, loss in account.top_instruments]
                                      for account in result.accounts},
                     "holiday_days": result.holiday_days})

    def table(_: Report) -> None:
        title = f"{result.method} initial margin as of {result.as_of}"
        if result.scenarios:
            title += f", {result.scenarios} scenarios"
        title += f"; {result.currency}, cents in json/csv"
        view = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        names = ["account", "margin", "base", "add-ons", "APC", "options"]
        if wide:
            names[3:4] = ["holiday", "history", "concentration", "stress"]
            names += ["worst scenario", "largest contributor"]
        for name in names:
            left = name in ("account", "worst scenario", "largest contributor")
            view.add_column(name, justify="left" if left else "right", no_wrap=True)
        for account in result.accounts:
            top = account.top_instruments[0] if account.top_instruments else None
            addons = [account.holiday_addon, account.history_addon, account.concentration_addon, account.stress_addon]
            cells = [account.account, f"{account.margin:,.0f}", f"{account.base:,.0f}",
                     *([f"{one:,.0f}" for one in addons] if wide else [f"{sum(addons):,.0f}"]),
                     f"{account.apc_addon:,.0f}", f"{account.net_option_value:,.0f}"]
            if wide:
                cells += [account.worst_scenario, f"{top[0]} ({top[1]:,.0f})" if top else ""]
            view.add_row(*cells)
        view.add_section()
        view.add_row("total", f"{report.sections['total']:,.0f}", *[""] * (len(names) - 2))
        stdout.print(view)

    emit(report, output.value, table, out)


@app.command()
def backtest(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    account: Annotated[str | None, typer.Option(help="one account (default: the whole book)")] = None,
    confidence: ConfidenceOpt = 0.99,
    mpor_days: MporOpt = 2,
    lookback: LookbackOpt = None,
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
    allow_defaults: AllowDefaultsOpt = None,
    sum_duplicates: SumDuplicatesOpt = False,
    output: Annotated[Format, typer.Option("--format", help="table (the statistics and verdict), json or csv "
                                                        "(every test date, the statistics in the metadata)")]
    = Format.table,
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
        with stages(1) as step_:
            inputs, context = step_("reading inputs, building scenarios", lambda: load_context(
                settings, positions=positions, instruments=instruments, prices=prices, as_of=end or as_of,
                mpor_days=mpor_days, lookback=lookback, confidence=confidence, measure=measure,
                stress_period=stress_period, allow_defaults=allow_defaults, sum_duplicates=sum_duplicates))
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

        with progress_bar() as bar:  # counts test dates, with their rate and an ETA
            task = bar.add_task(f"backtesting {method.value}: test dates", total=None)
            result = run_backtest(
                context, quantity, start=runner.parse_as_of(start, "--from"), end=runner.parse_as_of(end, "--to"),
                step=step, method=method.value, rebuild=rebuild,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    except TokenclearError as error:
        raise fail(error) from None
    from tokenclear.cli.output import Report, emit
    from tokenclear.money import amount

    summary = {key: value for key, value in result.summary().items() if key != "warnings"}
    if chart is not None:
        from tokenclear.reports.backtest_chart import write_chart

        summary["chart"] = str(write_chart(result, chart, title=f"{method.value} backtest, {account or 'whole book'}"))
    config = context.config
    metadata = {"account": account or "book", "confidence": config.confidence, "mpor_days": config.mpor_days,
                "lookback": config.lookback, "measure": config.measure, "currency": config.margin_currency,
                **summary, "inputs": inputs_used(settings, inputs, positions, instruments)}
    rows = [{"date": str(day), "margin": amount(margin), "realised_loss": amount(loss), "exception": bool(hit)}
            for day, margin, loss, hit in zip(result.dates, result.margin.tolist(), result.realised_loss.tolist(),
                                              result.exceptions.tolist(), strict=True)]

    def table(_: Report) -> None:
        view = Table(title=f"backtest of {method.value} at {config.confidence:.1%}, MPOR {config.mpor_days} days: "
                           f"{result.verdict}", box=box.SIMPLE_HEAD)
        view.add_column("measure")
        view.add_column("value", justify="right")
        for key, value in summary.items():
            view.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        stdout.print(view)
        if result.failed:
            stdout.print("[bold red]fails:[/] " + "; ".join(result.failed))

    emit(Report("backtest", rows, metadata, list(result.warnings)), output.value, table)


@params_app.command("span")
def params_span(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    as_of: AsOfOpt = None,
    coverage: Annotated[float, typer.Option(callback=confidence_range, help="coverage of the scan ranges")] = 0.99,
    mpor_days: MporOpt = 2,
    lookback: LookbackOpt = None,
    stress_period: Annotated[str | None, typer.Option(help="START:END in the calibration window (default: "
                                                          "TOKENCLEAR_STRESS_PERIOD, as `margin --method span`; "
                                                          "'none' for none)")] = None,
    output: Annotated[Format, typer.Option("--format", help="json (default), csv or table")] = Format.json,
    out: OutOpt = None,
) -> None:
    """SPAN parameters as of a date, one row per product (scan ranges, spread multiples, extreme moves), with
    the inter-commodity credits; `margin --method span --params FILE` reads the file back."""
    from tokenclear import runner
    from tokenclear.cli.output import Report, emit
    from tokenclear.margin import span

    settings = get_settings()
    try:
        inputs, context = load_context(settings, positions=positions, instruments=instruments, prices=prices,
                                       as_of=as_of, mpor_days=mpor_days, lookback=lookback,
                                       stress_period=stress_period)
        parameters = span.calibrate(context, context.window(), coverage=coverage, pairs=runner.span_pairs(settings))
    except TokenclearError as error:
        raise fail(error) from None
    metadata = {**parameters.header(), "currency": context.config.margin_currency,
                "inputs": inputs_used(settings, inputs, positions, instruments)}

    def table(_: Report) -> None:
        view = Table(title=f"SPAN parameters as of {parameters.as_of} ({coverage:.0%} of {parameters.mpor_days}-day "
                           "moves)", box=box.SIMPLE_HEAD)
        for name in ("product", "price scan", "vol scan", "intra", "extreme"):
            view.add_column(name, justify="left" if name == "product" else "right", no_wrap=True)
        for row in parameters.rows():
            extreme = f"{row['extreme_multiple']:g}x at {row['extreme_fraction']:.0%}"
            view.add_row(str(row["product"]), f"{row['price_scan']:.4g}", f"{row['vol_scan']:.2%}",
                         f"{row['intra_multiple']:.2f}", extreme)
        stdout.print(view)

    emit(Report("params span", parameters.rows(), metadata, list(context.warnings)), output.value, table, out)


@params_app.command("hsvar")
def params_hsvar(
    per_contract: Annotated[bool, typer.Option("--per-contract", help="the margin of one long and one short "
                                               "contract of every listed instrument (the file JSCC publishes "
                                               "each business day); the only form this command writes")] = True,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    as_of: AsOfOpt = None,
    lookback: LookbackOpt = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.csv,
    out: Annotated[Path | None, typer.Option("--out", help="write the file here (default: stdout)")] = None,
) -> None:
    """Per-contract HS-VaR margin: one long and one short lot of every listed instrument live on the date."""
    from dataclasses import replace

    from tokenclear import runner
    from tokenclear.book.positions import book_from_entries
    from tokenclear.cli.output import Report, emit

    settings = get_settings()
    try:
        inputs, day, live = runner.per_contract_inputs(settings, instruments=instruments, prices=prices,
                                                       as_of=runner.parse_as_of(as_of))
        setup = runner.risk_setup(settings, lookback=lookback, concentration=False)  # one lot is never large
        # each product margined on its own scenarios, as `margin` margins a book of that product alone
        # (a loop over the handful of underlyings, not over contracts or scenarios)
        groups: dict[str, list[str]] = {}
        for one in inputs.catalogue.select(live):
            groups.setdefault(one.underlying, []).append(one.instrument)
        margin, warnings, scenarios = {}, list(inputs.warnings), 0
        for names in groups.values():
            sub = book_from_entries([(f"{name}:{side}", name, sign) for name in names
                                     for side, sign in (("long", 1), ("short", -1))], inputs.catalogue)
            result = runner.run_book_margin(settings, replace(inputs, book=sub), setup, as_of=str(day),
                                            method="hsvar")
            margin.update({account.account: account.margin for account in result.accounts})
            warnings += result.warnings
            scenarios = max(scenarios, result.scenarios)
        result = replace(result, scenarios=scenarios, warnings=list(dict.fromkeys(warnings)))
    except TokenclearError as error:
        raise fail(error) from None
    rows = []
    for one in inputs.catalogue.select(live):
        rows.append({"instrument": one.instrument, "kind": one.kind, "underlying": one.underlying,
                     "expiry": None if one.expiry is None else str(one.expiry), "strike": one.strike,
                     "option_type": one.option_type, "long": margin.get(f"{one.instrument}:long", Decimal(0)),
                     "short": margin.get(f"{one.instrument}:short", Decimal(0))})
    files = inputs_used(settings, inputs, None, instruments)
    files.pop("positions")
    metadata = {**margin_metadata(settings, inputs, setup, result, files), "per": "one contract"}
    metadata.pop("accounts")

    def table(_: Report) -> None:
        view = Table(title=f"HS-VaR margin per contract as of {day} ({result.currency})", box=box.SIMPLE_HEAD)
        for name in ("instrument", "long", "short"):
            view.add_column(name, justify="left" if name == "instrument" else "right", no_wrap=True)
        for row in rows:
            view.add_row(row["instrument"], f"{row['long']:,.2f}", f"{row['short']:,.2f}")
        stdout.print(view)

    emit(Report("params hsvar", rows, metadata, list(result.warnings)), output.value, table, out)


@params_app.command("asvar")
def params_asvar(
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    as_of: AsOfOpt = None,
    mpor_days: MporOpt = 2,
    lookback: LookbackOpt = None,
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
    end: Annotated[str, typer.Option("--to", help="current valuation date (after --from)")],
    positions: PositionsOpt = None,
    instruments: InstrumentsOpt = None,
    prices: PricesOpt = None,
    settlements: Annotated[Path | None, typer.Option("--settlements", help="CSV date,instrument,price: the "
                                                     "exchange's settlement prices (default: the term-structure "
                                                     "price on the index close)")] = None,
    allow_defaults: AllowDefaultsOpt = None,
    sum_duplicates: SumDuplicatesOpt = False,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Variation margin per account between two valuation dates (> 0 owed by the member)."""
    from tokenclear import runner
    from tokenclear.cli.output import Report, digest, emit
    from tokenclear.margin.variation import settlement_prices, variation_margin
    from tokenclear.market.settlements import load_settlements

    settings = get_settings()
    try:
        day_0, day_1 = runner.parse_as_of(start, "--from"), runner.parse_as_of(end, "--to")
        assert day_0 is not None and day_1 is not None
        if day_1 <= day_0:
            raise runner.InputError(f"{day_1} is not after --from {day_0}: VM runs forward in time",
                                    field="--to")
        inputs = runner.load_inputs(settings, positions=positions, instruments=instruments, prices=prices,
                                    allow_defaults=allow_defaults, sum_duplicates=sum_duplicates)
        names = inputs.book.instruments
        published = load_settlements(settlements, set(inputs.catalogue.instruments)) if settlements else None
        price_0, price_1 = (settlement_prices(inputs.catalogue, names, inputs.market, inputs.specs, day,
                                              max_stale_days=settings.max_stale_days, published=published)
                            for day in (day_0, day_1))
        rows = variation_margin(inputs.book, inputs.catalogue, price_0, price_1)
    except TokenclearError as error:
        raise fail(error) from None
    warnings = list(inputs.warnings)
    if published is not None:
        derived = sorted({name for day in (day_0, day_1) for name in names if (day, name) not in published})
        if derived:
            warnings.append(f"{settlements} has no settlement price for {', '.join(derived)} on one of the dates: "
                            "priced from the index close (term-structure rule)")
    metadata = {"from": str(day_0), "to": str(day_1), "sign": "> 0 owed by the member",
                "settlements": "published" if published is not None else "index close, term-structure rule",
                "inputs": {**inputs_used(settings, inputs, positions, instruments),
                           **({"settlements": digest(settlements)} if settlements else {})}}
    prices_rows = {name: {"instrument": name, "price_from": p0, "price_to": p1}
                   for name, p0, p1 in zip(names, price_0, price_1, strict=True)}

    def table(_: Report) -> None:
        view = Table(title=f"variation margin {day_0} -> {day_1} (> 0 owed by the member)", box=box.SIMPLE_HEAD)
        for name in ("account", "currency", "VM"):
            view.add_column(name, justify="right" if name == "VM" else "left")
        for row in rows:
            view.add_row(row.account, row.currency, f"{row.vm:,.2f}")
        stdout.print(view)

    emit(Report("vm", [{"account": r.account, "currency": r.currency, "vm": r.vm} for r in rows], metadata,
                warnings, {"settlement_prices": list(prices_rows.values())}), output.value, table)
