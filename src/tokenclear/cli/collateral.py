"""Collateral commands of the ``tokenclear`` CLI: ``eligible`` and ``haircuts``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tokenclear.bounds import MAX_HAIRCUT_MPOR_DAYS
from tokenclear.cli.app import (
    AsOfOpt,
    Format,
    WideOpt,
    app,
    confidence_range,
    csv_text,
    fail,
    get_settings,
    stdout,
    within,
    write_text,
)
from tokenclear.cli.output import Report, digest, emit
from tokenclear.errors import InputError, TokenclearError


class HaircutApc(str, Enum):
    none = "none"
    buffer = "buffer"
    stressed_weight = "stressed-weight"
    stressed = "stressed"


class Scaling(str, Enum):
    sqrt = "sqrt"
    linear = "linear"


@app.command()
def eligible(
    asset: Annotated[str, typer.Argument(help="registry asset, e.g. USDC, TBILL, UST_5_10Y")],
    ccp: Annotated[str, typer.Option("--ccp", help="clearing house or schedule: CME, Eurex, ICE_Clear_Europe, "
                                     "LCH_Ltd, OCC, CFTC_PILOT, tokenclear")],
    date: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today, UTC)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Is ASSET eligible collateral at a clearing house on a date, and which rule decided? Exit 0 yes, 1 no."""
    import numpy as np

    from tokenclear.collateral.files import load_reference
    from tokenclear.dates import parse_as_of

    try:
        reference = load_reference(get_settings().collateral_dir)
        day = parse_as_of(date, "--date") or np.datetime64(dt.datetime.now(dt.UTC).date(), "D")
        if asset not in reference.registry:
            raise InputError(f"unknown asset '{asset}' (registry: {', '.join(reference.registry.names)})",
                             field="ASSET")
        decision = reference.schedules.decide(reference.registry.get(asset), ccp, day)
    except TokenclearError as error:
        raise fail(error) from None
    rule = decision.rule
    row = {"asset": decision.asset, "schedule": decision.schedule, "date": str(decision.date),
           "eligible": decision.eligible, "rule": None if rule is None else rule.rule,
           "rule_source": None if rule is None else rule.source, "explanation": decision.explain()}
    settings = get_settings()
    report = Report("eligible", [row], {"date": str(day), "ccp": ccp,
                                        "inputs": {"collateral": digest(settings.collateral_dir)}})

    def table(_: Report) -> None:
        stdout.print(("[green]yes[/]: " if decision.eligible else "[red]no[/]: ") + decision.explain(),
                     highlight=False)

    emit(report, "json" if as_json else output.value, table)
    raise typer.Exit(code=0 if decision.eligible else 1)


@app.command()
def haircuts(
    as_of: AsOfOpt = None,
    confidence: Annotated[float, typer.Option(callback=confidence_range, help="confidence level of the haircuts "
                                              "(Eurex Clearing: 99.9%)")] = 0.999,
    mpor_days: Annotated[int, typer.Option("--mpor-days", callback=within(1, MAX_HAIRCUT_MPOR_DAYS),
                                           help="margin period of risk the haircut covers, business days")] = 2,
    apc: Annotated[HaircutApc, typer.Option(help="anti-procyclicality option")] = HaircutApc.stressed_weight,
    liquidity: Annotated[Scaling, typer.Option(help="horizon scaling for days to liquidate")] = Scaling.sqrt,
    position_usd: Annotated[float, typer.Option(callback=within(0), help="reference position size for the "
                                                "liquidity component")] = 10_000_000.0,
    margin_currency: Annotated[str | None, typer.Option(help="currency the haircut protects (default settings)")]
    = None,
    depeg_half_life: Annotated[float, typer.Option(callback=within(0, low_open=True),
                                                   help="days after which a past depeg counts half")] = 90.0,
    compare: Annotated[Path | None, typer.Option(help="previous haircut file: the monthly review")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the table as CSV here")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
    wide: WideOpt = False,
) -> None:
    """Haircut of every registry asset with its components (market, liquidity, FX, depeg, credit)."""
    from tokenclear.collateral import files
    from tokenclear.collateral.haircuts import HaircutConfig, calibrate
    from tokenclear.collateral.review import compare as compare_tables
    from tokenclear.runner import parse_as_of

    settings = get_settings()
    try:
        reference = files.load_reference(settings.collateral_dir)
        currency = (margin_currency or settings.margin_currency).upper()
        prices, volumes = files.load_market(settings.prices_dir, settings.volumes_dir, reference.registry, currency)
        day = parse_as_of(as_of) or files.default_as_of(prices, reference.registry)
        config = HaircutConfig(confidence=confidence, mpor_days=mpor_days, apc=apc.value,
                               liquidity_scaling=liquidity.value, position_usd=position_usd,
                               margin_currency=currency, lookback=settings.lookback,
                               stress_window=settings.stress_window, depeg_half_life_days=depeg_half_life)
        table = calibrate(reference.registry, market=prices, volumes=volumes, floors=reference.floors, as_of=day,
                          config=config, schedule=reference.schedule_floors)
        changes = compare_tables(files.load_haircut_table(compare), table) if compare else None
    except TokenclearError as error:
        raise fail(error) from None
    rows = table.rows()
    if out is not None:  # the haircut file a later --compare reads back (plain CSV, no preamble)
        write_text(csv_text(rows).removesuffix("\n"), out)
    metadata = {"as_of": str(table.as_of), "confidence": confidence, "mpor_days": mpor_days, "apc": apc.value,
                "liquidity_scaling": liquidity.value, "position": Decimal(str(position_usd)).quantize(Decimal("0.01")),
                "currency": currency,
                "depeg_half_life_days": depeg_half_life, "lookback": settings.lookback,
                "inputs": {"collateral": digest(settings.collateral_dir), "prices": digest(settings.prices_dir),
                           "volumes": digest(settings.volumes_dir),
                           **({"compare": digest(compare)} if compare else {})}}
    sections = {} if changes is None else {"review": [
        {"asset": c.asset, "previous": c.previous, "current": c.current, "change": c.change, "driver": c.driver,
         "driver_change": c.driver_change} for c in changes]}
    if output is not Format.table:
        emit(Report("haircuts", rows, metadata, [], sections), output.value)
        return
    view = Table(title=f"haircuts as of {table.as_of} ({confidence:.1%}, MPOR {mpor_days} days, APC {apc.value}, "
                       f"margin currency {currency}, position {position_usd:,.0f})", box=box.SIMPLE_HEAD)
    parts = ["market", "liquidity", "fx", "depeg", "credit", "floor", "total", "published"] if wide else \
        ["market", "liquidity", "fx", "depeg", "published"]
    names = (["asset", "horizon d", "days to sell"] if wide else ["asset"]) + parts
    for name in names:
        view.add_column(name.upper() if name == "fx" else name, justify="left" if name == "asset" else "right",
                        no_wrap=True)
    for row in rows:
        lead = [str(row["asset"])] + ([f"{row['horizon_days']:.2f}", f"{row['days_to_liquidate']:.2f}"] if wide
                                      else [])
        view.add_row(*lead, *(f"{float(row[name]):.2%}" for name in parts))
    stdout.print(view)
    if changes is not None:
        review = Table(title=f"monthly review against {compare}")
        for name in ("asset", "previous", "new", "change", "driver", "driver change"):
            review.add_column(name, justify="left" if name in ("asset", "driver") else "right")
        for change in changes:
            review.add_row(change.asset, _pct(change.previous), _pct(change.current),
                           "" if change.change is None else f"{change.change:+.2%}", change.driver,
                           f"{change.driver_change:+.2%}" if change.driver not in ("new", "removed", "none") else "")
        stdout.print(review)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"
