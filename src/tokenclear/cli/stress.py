"""``tokenclear stress``: the scenario library on a book and its collateral: losses, Cover 2, contributions."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tokenclear.cli.app import (
    AsOfOpt,
    Format,
    PositionsOpt,
    RpcUrlOpt,
    app,
    fail,
    get_settings,
    stderr,
    stdout,
    within,
)
from tokenclear.cli.output import Report, digest, emit
from tokenclear.errors import InputError, TokenclearError


@app.command()
def stress(
    scenarios: Annotated[str, typer.Option(help="all, or scenario names separated by commas (data/stress/"
                                                "scenarios.csv)")] = "all",
    positions: PositionsOpt = None,
    collateral: Annotated[Path | None, typer.Option(help="CSV account,asset,quantity: what each account holds "
                                                         "(default: the demo book's, data/demo/collateral.csv)")]
    = None,
    groups: Annotated[Path | None, typer.Option(help="CSV member,group: affiliates that default together "
                                                     "(default: each member alone)")] = None,
    as_of: AsOfOpt = None,
    skin_in_the_game: Annotated[float, typer.Option("--skin-in-the-game", callback=within(0),
                                                    help="the CCP's own capital used before the survivors' "
                                                         "contributions, USD")] = 0.0,
    chart: Annotated[Path | None, typer.Option(help="write a PNG of the uncovered loss by scenario here")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Every scenario's loss per member beyond its collateral after stress, the Cover 2 default fund, each
    member's contribution and the reverse stress multiple that would exhaust the prefunded resources."""
    from tokenclear.stress.run import stress as run_stress

    settings = get_settings()
    try:
        report = run_stress(settings, scenarios=scenarios, positions=positions, collateral=collateral,
                            groups=groups, as_of=as_of, skin_in_the_game=cents(skin_in_the_game))
    except TokenclearError as error:
        raise fail(error) from None
    from tokenclear.stress.run import usd

    names = [one.name for one in report.scenarios]
    result = report.losses
    index = {group: g for g, group in enumerate(report.groups)}
    loss, kept = report.by_group(result.loss), report.by_group(result.collateral)
    rows = [{"scenario": name, "member": group, "loss": usd(loss[s, g]), "collateral_after_stress": usd(kept[s, g]),
             "uncovered": usd(result.by_group[s, g]),
             "sets_cover2": group in report.top[s] and result.by_group[s, g] > 0}
            for s, name in enumerate(names) for g, group in enumerate(report.groups)]
    summary = [{"scenario": name, "type": one.type, "builds_on": one.builds_on, "cover2": report.per_scenario[s],
                "members": " + ".join(member for member in report.top[s]
                                      if result.by_group[s, index[member]] > 0) or "none",
                "reverse_multiple": None if math.isinf(report.reverse[s]) else round(report.reverse[s], 4),
                "description": one.description, "source": one.source,
                "feed_outage_h": one.hours("feed_outage"), "chain_outage_h": one.hours("chain_outage")}
               for s, (name, one) in enumerate(zip(names, report.scenarios, strict=True))]
    fund = [{"member": group, "contribution": report.contributions[g]} for g, group in enumerate(report.groups)]
    metadata = {"as_of": report.as_of, "currency": settings.margin_currency, "default_fund": report.fund,
                "loss": "net over the member's accounts, > 0 a loss; uncovered: summed per account (segregation)",
                "fund_scenario": report.fund_scenario, "fund_members": " + ".join(report.fund_groups),
                "skin_in_the_game": usd(report.skin_in_the_game),
                "contribution_rule": "pro rata to each member's largest uncovered loss over the scenarios",
                "reverse_multiple": "the multiple of a scenario's shocks at which the two largest uncovered "
                                    "losses reach the default fund plus skin in the game (blank: not within 100x)",
                "scenarios": len(names),
                "inputs": {"positions": digest(positions or settings.demo_positions_file),
                           "collateral": digest(collateral or settings.data_dir / "demo" / "collateral.csv"),
                           "scenarios": digest(settings.data_dir / "stress")}}
    if chart is not None:
        write_chart(chart, summary, report.fund)
        metadata["chart"] = str(chart)

    def table(_: Report) -> None:
        view = Table(title=f"stress as of {report.as_of}: Cover 2 default fund {report.fund:,.2f} USD, set by "
                           f"{report.fund_scenario} ({' + '.join(report.fund_groups)})", box=box.SIMPLE_HEAD)
        for name in ("scenario", "Cover 2 USD", "members", "reverse x"):
            view.add_column(name, justify="left" if name in ("scenario", "members") else "right")
        for one in summary:
            view.add_row(one["scenario"], f"{one['cover2']:,.2f}", one["members"],
                         "" if one["reverse_multiple"] is None else f"{one['reverse_multiple']:.3f}")
        stdout.print(view)
        members = Table(title="contributions to the default fund (USD)", box=box.SIMPLE_HEAD)
        members.add_column("member")
        members.add_column("worst uncovered", justify="right")
        members.add_column("contribution", justify="right")
        for g, group in enumerate(report.groups):
            members.add_row(group, f"{usd(result.by_group[:, g].max()):,.2f}", f"{report.contributions[g]:,.2f}")
        stdout.print(members)

    emit(Report("stress", rows, metadata, report.notes, {"scenarios": summary, "contributions": fund}),
         output.value, table)
    if chart is not None:
        stderr.print(f"wrote {chart}")


def cents(value: float) -> Decimal:
    """An amount option (USD) as exact cents."""
    return Decimal(repr(value)).quantize(Decimal("0.01"))


def write_chart(path: Path, summary: list[dict], fund: Decimal) -> None:
    """A bar per scenario of its Cover 2 uncovered loss, with the fund as a line (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 4.5))
    axes.bar([one["scenario"] for one in summary], [float(one["cover2"]) / 1e6 for one in summary],
             color="#4878a8")
    axes.axhline(float(fund) / 1e6, color="#c0392b", linestyle="--", label=f"default fund {float(fund) / 1e6:,.2f} m")
    axes.set_ylabel("uncovered loss of the two largest members, million USD")
    axes.set_title("Stress: loss beyond collateral after stress, by scenario")
    axes.legend()
    plt.setp(axes.get_xticklabels(), rotation=35, ha="right")
    figure.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as error:
        raise fail(InputError(f"cannot write ({error.strerror})", path=path)) from None
    finally:
        plt.close(figure)


@app.command("default")
def default_command(
    scenario: Annotated[str, typer.Option(help="the stress scenario the member defaults in (data/stress)")],
    member: Annotated[str, typer.Option(help="the defaulting member, e.g. M13")],
    days: Annotated[str, typer.Option(help="weekdays to close out on, compared (mon..sun, comma-separated)")]
    = "sat,tue",
    positions: PositionsOpt = None,
    collateral: Annotated[Path | None, typer.Option(help="CSV account,asset,quantity (default: the demo book's)")]
    = None,
    as_of: AsOfOpt = None,
    skin_in_the_game: Annotated[float, typer.Option("--skin-in-the-game", callback=within(0),
                                                    help="the CCP's own capital in the waterfall, USD")] = 0.0,
    assessment_multiple: Annotated[float, typer.Option(callback=within(0), help="cap of the assessments on each "
                                                       "survivor, times its contribution")] = 1.0,
    database: Annotated[str | None, typer.Option("--database", help="a book (SQLAlchemy URL): manage the default "
                                                 "on its chain (with --rpc-url), or resume the case it holds")]
    = None,
    rpc_url: RpcUrlOpt = None,
    liquidity_account: Annotated[str, typer.Option(help="with --database: the book account of the liquidity "
                                                        "provider that buys the collateral and takes the positions")]
    = "LP-HOUSE",
    port_to: Annotated[str | None, typer.Option(help="with --database: the member customers are ported to "
                                                     "(default: the first member not in default)")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """A member's default under a scenario: off chain, what is ported, the close-out cost on each weekday
    (square-root impact on the shipped volumes) and each layer of the waterfall it uses; with --database, the
    same carried out on the book's chain (declare, port, seize, sell, the waterfall's transfers), resumable."""
    if database is not None:
        return manage_on_chain(scenario, member, database, rpc_url, liquidity_account, port_to,
                               Decimal(repr(assessment_multiple)), as_of, output)
    from tokenclear.default.replay import replay
    from tokenclear.stress.run import usd

    settings = get_settings()
    try:
        result = replay(settings, scenario=scenario, member=member,
                        days=[day.strip() for day in days.split(",") if day.strip()], positions=positions,
                        collateral=collateral, as_of=as_of, skin_in_the_game=cents(skin_in_the_game),
                        assessment_multiple=Decimal(repr(assessment_multiple)))
    except TokenclearError as error:
        raise fail(error) from None
    rows = [{"day": one.day, "closeout_cost": one.cost, "market_closeout_cost": one.market_cost,
             "outage_hours": one.outage_hours, "outage_cost": one.outage_cost,
             "collateral_sale_cost": one.collateral_cost,
             "survivors_collateral_fall": one.survivors_collateral_fall,
             "newly_uncovered": " ".join(one.newly_uncovered or []), "days_to_close_out": one.days,
             "waits_for": " ".join(one.waited), "loss": one.loss,
             **{layer.name: layer.used for layer in one.waterfall.layers}, "tear_up": one.waterfall.tear_up}
            for one in result.closeouts]
    metadata = {"scenario": result.scenario, "member": result.member, "as_of": result.as_of, "currency": "USD",
                "ported": " ".join(result.ported) or "none", "closed_out": " ".join(result.closed_out) or "none",
                "position_loss": result.position_loss, "margin_after_stress": result.margin,
                "default_fund": result.fund,
                "auction": "sealed bids per lot (factor), first price, lowest wins if below the market cost "
                           "(docs/default.md); bidders: survivors' house accounts, capacity 10 x their collateral "
                           "after stress, appetite 0.5 (assumptions)",
                "impact": "cost = sigma x sqrt(|Q| / V) x |Q| (Almgren et al. 2005; Toth et al. 2011), V the "
                          "weekday's share of ADV x the scenario's liquidity multiplier; selling collateral moves "
                          "its price by sigma x sqrt(Q / V), which every survivor holding it feels",
                "on_chain": "not executed: pass --database (and --rpc-url) to carry it out on a book's chain"}
    sections = {"prices_after_sale": [{"day": one.day, "asset": asset, "price": price}
                                      for one in result.closeouts for asset, price in (one.prices_after_sale or
                                                                                       {}).items()],
                "auction": [{"day": one.day, "lot": lot.factor, "exposure": round(lot.exposure, 2),
                             "reserve": usd(lot.reserve), "bidder": bid.member, "bid": usd(bid.price), "won": bid.won}
                            for one in result.closeouts for lot in one.lots for bid in lot.bids],
                "survivors_paid": [{"day": one.day, "member": name, "paid": amount}
                                   for one in result.closeouts
                                   for name, amount in sorted(one.waterfall.survivors_paid.items()) if amount > 0]}

    def table(_: Report) -> None:
        stdout.print(f"{result.member} defaults in {result.scenario} (as of {result.as_of}): ported "
                     f"{metadata['ported']}; closed out {metadata['closed_out']}; positions lose "
                     f"{result.position_loss:,.2f} USD against {result.margin:,.2f} of margin after stress",
                     highlight=False)
        view = Table(title="close-out and the waterfall, by the day it is done (USD)", box=box.SIMPLE_HEAD)
        view.add_column("")
        for one in result.closeouts:
            view.add_column(one.day, justify="right")
        view.add_row("close-out cost (auction or market)", *(f"{one.cost:,.2f}" for one in result.closeouts))
        view.add_row("all in the market", *(f"{one.market_cost:,.2f}" for one in result.closeouts))
        view.add_row("lots won at auction", *(f"{sum(lot.winner is not None for lot in one.lots)} of {len(one.lots)}"
                                              for one in result.closeouts))
        view.add_row("collateral sale cost", *(f"{one.collateral_cost:,.2f}" for one in result.closeouts))
        view.add_row("outages: hours waited", *(f"{one.outage_hours:g}" for one in result.closeouts))
        view.add_row("outages: adverse move meanwhile", *(f"{one.outage_cost:,.2f}" for one in result.closeouts))
        view.add_row("survivors' collateral falls by", *(f"{one.survivors_collateral_fall:,.2f}"
                                                         for one in result.closeouts))
        view.add_row("accounts it leaves uncovered", *(str(len(one.newly_uncovered or []))
                                                       for one in result.closeouts))
        view.add_row("days to close out", *(str(one.days) for one in result.closeouts))
        view.add_row("loss", *(f"{one.loss:,.2f}" for one in result.closeouts))
        for i, layer in enumerate(result.closeouts[0].waterfall.layers):
            view.add_row(layer.name, *(f"{one.waterfall.layers[i].used:,.2f}" for one in result.closeouts))
        view.add_row("left for partial tear-up", *(f"{one.waterfall.tear_up:,.2f}" for one in result.closeouts))
        stdout.print(view)

    emit(Report("default", rows, metadata, result.notes, sections), output.value, table)


def manage_on_chain(scenario: str, member: str, database: str, rpc_url: str | None, liquidity_account: str,
                    port_to: str | None, assessment_multiple: Decimal, as_of: str | None, output: Format) -> None:
    """``tokenclear default --database``: open (or resume) the member's default case on the book and run it."""
    from tokenclear.clearing import system
    from tokenclear.clearing.interfaces import SystemClock
    from tokenclear.cli.clearing import _open
    from tokenclear.default import drill, manage
    from tokenclear.store.models import Account, Member

    try:
        settings, store, chain = _open(database, rpc_url)
        workflow = system.open_workflow(settings, store, chain, SystemClock())
        recovery = workflow.recover()
        with store.session() as session:
            account = session.get(Account, liquidity_account)
            if account is None:
                raise InputError(f"no account '{liquidity_account}' in the book", field="--liquidity-account")
            wallet = session.get(Member, account.member_id).wallet
        parties = manage.Parties(wallet, liquidity_account, port_to, assessment_multiple)
        case = manage.open_case(settings, workflow, member, scenario, parties, at=workflow.clock.now(), as_of=as_of)
        if case.scenario != scenario:
            raise InputError(f"{member}'s default is already managed under '{case.scenario}'", field="--scenario")
        case = manage.run(workflow, member)
        breaks = workflow.reconcile()
    except TokenclearError as error:
        raise fail(error) from None
    emit_case(drill.summary(case), {"clean": not breaks, "breaks": [b.__dict__ for b in breaks],
                                    "instructions_recovered": len(recovery)}, output.value)


def case_sections(summary: dict) -> dict:
    """A managed default's layers and survivors' payments, as report sections."""
    layers = [{"layer": one["name"], "available": Decimal(one["available"]), "used": Decimal(one["used"])}
              for one in summary["layers"]]
    paid = [{"member": name, "layer": one["name"], "paid": Decimal(amount)}
            for one in summary["layers"] for name, amount in sorted(one["by_member"].items())]
    return {"layers": layers, "survivors_paid": paid}


def print_case(summary: dict) -> None:
    """The table view of a managed default (also used by ``tokenclear demo --default``)."""
    ported = f"{' '.join(summary['ported'])} to {summary['receiver']}" if summary["ported"] else "none"
    stdout.print(f"{summary['member']} in default ({summary['scenario']}, closed out on a {summary['day']}, "
                 f"{summary['days_to_close_out']} day(s)): ported {ported}; closed out "
                 f"{' '.join(summary['closed_out']) or 'none'}", highlight=False)
    outage = (f" + {summary['outage_hours']:g} h of outages {Decimal(summary['outage_cost']):,.2f}"
              if summary.get("outage_hours") else "")
    stdout.print(f"positions' loss (< 0 a gain) {Decimal(summary['position_loss']):,.2f} + close-out cost "
                 f"{Decimal(summary['closeout_cost']):,.2f}{outage} = {Decimal(summary['loss']):,.2f} USD; seizure and "
                 f"sale raised {Decimal(summary['raised']):,.2f}; returned to the defaulter "
                 f"{Decimal(summary['surplus']):,.2f}; left for partial tear-up {Decimal(summary['tear_up']):,.2f}"
                 + (f"; frozen, unsold: {', '.join(summary['frozen'])}" if summary["frozen"] else ""),
                 highlight=False)
    for lot in summary.get("auction", []):
        best = min((Decimal(b["price"]) for b in lot["bids"]), default=None)
        outcome = f"won by {lot['winner']} for {Decimal(lot['price']):,.2f}" if lot["winner"] else \
            "sold into the market"
        stdout.print(f"auction, lot {lot['lot']} ({lot['exposure']:,.0f} USD of exposure): {len(lot['bids'])} bid(s)"
                     + (f", best {best:,.2f}" if best is not None else "") + f" against the market's "
                     f"{Decimal(lot['reserve']):,.2f}: {outcome}", highlight=False)
    view = Table(title="the waterfall, on chain (USD)", box=box.SIMPLE_HEAD)
    for name in ("layer", "available", "used"):
        view.add_column(name, justify="left" if name == "layer" else "right")
    for one in case_sections(summary)["layers"]:
        view.add_row(one["layer"], f"{one['available']:,.2f}", f"{one['used']:,.2f}")
    stdout.print(view)
    done = sum(1 for step in summary["steps"] if step["result"] is not None)
    stdout.print(f"{done} of {len(summary['steps'])} steps done ({summary['status']}); each under its key "
                 f"dm:{summary['member']}:…", highlight=False)


def emit_case(summary: dict, reconciliation: dict, output: str) -> None:
    rows = [{"key": step["key"], "what": step["what"], "done": step["result"] is not None,
             "refused": (step["result"] or {}).get("refused", "")} for step in summary["steps"]]
    metadata = {k: v for k, v in summary.items() if k not in ("steps", "layers", "notes", "auction")}
    metadata["currency"] = "USD"
    metadata["reconciliation"] = "clean" if reconciliation["clean"] else f"{len(reconciliation['breaks'])} break(s)"
    sections = {**case_sections(summary), "auction": [
        {"lot": lot["lot"], "exposure": lot["exposure"], "reserve": lot["reserve"], "bidder": bid["member"],
         "bid": bid["price"], "won": bid["won"]} for lot in summary.get("auction", []) for bid in lot["bids"]],
        "reconciliation": reconciliation}

    def table(_: Report) -> None:
        print_case(summary)
        stdout.print(f"reconciliation: {metadata['reconciliation']}")

    emit(Report("default", rows, metadata, summary["notes"], sections), output, table)


@app.command()
def spiral(
    scenario: Annotated[str, typer.Option(help="a historical scenario, or one that builds on one and sets the "
                                               "asset's price (usdc_low)")] = "svb",
    asset: Annotated[str, typer.Option(help="the collateral asset that depegs (a registry asset with price and "
                                            "volume series)")] = "USDC",
    round_hours: Annotated[int, typer.Option(callback=within(1, 24), help="hours between margin cycles")] = 4,
    rounds: Annotated[int, typer.Option(callback=within(1, 1000), help="the round limit")] = 20,
    buffer_share: Annotated[float, typer.Option(callback=within(0), help="bills each account keeps outside the "
                                                "CCP to answer calls, as a share of its requirement")] = 0.05,
    scale: Annotated[float, typer.Option(callback=within(1e-6, 1e6), help="multiply the book (its sales then "
                                         "weigh that much more against the real volumes)")] = 1.0,
    positions: PositionsOpt = None,
    collateral: Annotated[Path | None, typer.Option(help="CSV account,asset,quantity (default: the demo book's)")]
    = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """The depeg spiral round by round on the same book and shock under three haircut policies: (a) the haircut
    follows the spot, (b) an anti-procyclical buffer with smoothing, (c) (b) plus a 40% diversification limit."""
    from tokenclear.default import depeg
    from tokenclear.stress.run import usd

    settings = get_settings()
    try:
        result = depeg.run(settings, scenario=scenario, asset=asset, round_hours=round_hours, rounds=rounds,
                           buffer_share=buffer_share, scale=scale, positions=positions, collateral=collateral)
    except TokenclearError as error:
        raise fail(error) from None
    rows = [{"policy": policy.name, "round": r, "day": result.days[r], "price": round(float(one.price[r]), 8),
             "haircut": round(float(one.haircut[r]), 6), "calls": int(one.calls[r]), "called": usd(one.called[r]),
             "forced_sales": usd(one.sold[r]), "defaults": int(one.defaults[r]), "fund_use": usd(one.fund[r])}
            for policy, one in zip(result.policies, result.results, strict=True) for r in range(one.price.size)]
    summary = [{"policy": policy.name, "buffer": policy.buffer, "smoothing": policy.smoothing, "cap": policy.cap,
                "rounds": int(one.price.size), "forced_sales": usd(one.forced_sales),
                "peak_price_drop": round(one.peak_drop(result.p0), 6), "defaults": int(one.defaults.sum()),
                "fund_use": usd(one.fund.sum()), "calls": int(one.calls.sum())}
               for policy, one in zip(result.policies, result.results, strict=True)]
    a, b = summary[0], summary[1]
    pairs = [(b[k], a[k]) for k in ("forced_sales", "defaults", "fund_use")]
    if all(x <= y for x, y in pairs) and any(x < y for x, y in pairs):
        verdict = "b dampens the spiral against a: "
    elif all(x >= y for x, y in pairs):
        verdict = ("b does not dampen the spiral against a: the shock lasts, so the smoothed haircut reaches the "
                   "spot's, and the buffer's extra units are sold too; ")
    else:
        verdict = "b and a differ both ways: "
    verdict += (f"forced sales {b['forced_sales']:,.2f} vs {a['forced_sales']:,.2f} USD, defaults {b['defaults']} vs "
                f"{a['defaults']}, fund use {b['fund_use']:,.2f} vs {a['fund_use']:,.2f}")
    metadata = {"scenario": result.scenario, "asset": result.asset, "window": f"{result.start}..{result.end}",
                "calm_price": result.p0, "sigma_daily": round(result.sigma, 6),
                "published_haircut": result.base_haircut, "accounts": result.members,
                "round_hours": result.round_hours, "currency": "USD", "verdict": verdict,
                "model": "haircut = max(base x buffer, s x previous + (1 - s) x (base + discount)); sales move the "
                         "price by sigma x sqrt(Q / V) with V the day's real volume (docs/default.md)",
                "fund_use": "what defaulters' collateral no longer covers of their requirement (an upper bound)"}

    def table(_: Report) -> None:
        view = Table(title=f"the {result.asset} depeg spiral, {result.scenario} ({result.start}..{result.end}), "
                           f"{result.members} accounts, a cycle every {result.round_hours} h", box=box.SIMPLE_HEAD)
        for name in ("policy", "forced sales", "peak drop", "calls", "defaults", "fund use"):
            view.add_column(name, justify="left" if name == "policy" else "right")
        for one in summary:
            view.add_row(one["policy"], f"{one['forced_sales']:,.2f}", f"{one['peak_price_drop']:.4%}",
                         str(one["calls"]), str(one["defaults"]), f"{one['fund_use']:,.2f}")
        stdout.print(view)
        rounds_view = Table(title="round by round: price / haircut / calls", box=box.SIMPLE_HEAD)
        rounds_view.add_column("round")
        rounds_view.add_column("day")
        for policy in result.policies:
            rounds_view.add_column(policy.name.split(":")[0], justify="right")
        longest = max(one.price.size for one in result.results)
        for r in range(longest):
            cells = [f"{one.price[r]:.4f} / {one.haircut[r]:.2%} / {one.calls[r]}" if r < one.price.size else ""
                     for one in result.results]
            rounds_view.add_row(str(r), result.days[r], *cells)
        stdout.print(rounds_view)
        stdout.print(verdict, highlight=False)

    emit(Report("spiral", rows, metadata, result.notes, {"policies": summary}), output.value, table)


@app.command("default-fund")
def default_fund(
    database: Annotated[str | None, typer.Option("--database", help="the book (SQLAlchemy URL)")] = None,
    rpc_url: RpcUrlOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="closes of YYYY-MM-DD (default: the date of the "
                                              "book's last cycle)")] = None,
    minimum: Annotated[float, typer.Option(callback=within(0), help="the least contribution of a member, USD")]
    = 0.0,
    refund: Annotated[bool, typer.Option(help="release on chain what a member holds above its new contribution")]
    = False,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv")] = Format.table,
) -> None:
    """Size the default fund on the book as it stands (Cover 2 over the stress library; run it monthly and on
    demand), store the sizing, and show each member's contribution against what its default-fund account holds:
    what it must add (its pledge) or may take back (released with --refund)."""
    from tokenclear.clearing import system
    from tokenclear.clearing.interfaces import SystemClock
    from tokenclear.cli.clearing import _open
    from tokenclear.default import fund
    from tokenclear.default.manage import micro
    from tokenclear.store import queries
    from tokenclear.store.models import Account

    try:
        settings, store, chain = _open(database, rpc_url)
        workflow = system.open_workflow(settings, store, chain, SystemClock())
        workflow.recover()
        with store.session() as session:
            members = sorted({a.member_id for a in queries.margin_accounts(session)})
        opened = fund.open_accounts(workflow, members, ccp_wallet=workflow.ledger.operator)
        workflow.sync()
        sizing = fund.size(settings, workflow, at=workflow.clock.now(), as_of=as_of, minimum=cents(minimum))
        with store.session() as session:
            due = fund.due(session, fund.latest(session))
            onchain = {m: session.get(Account, fund.fund_account(m)).onchain_id for m in due}
            defaulted = queries.members_in_default(session)
        released = {}
        if refund:
            for member, amount in sorted(due.items()):
                if amount < 0 and member not in defaulted:  # a defaulter's contribution stays for its default
                    units = micro(-amount)
                    workflow.execute(f"fund:{sizing.id}:{member}:refund", "release",
                                     {"onchain_id": onchain[member], "symbol": fund.FUND_TOKEN, "units": units})
                    released[member] = -amount
            workflow.sync()
    except TokenclearError as error:
        raise fail(error) from None
    rows = [{"member": member, "contribution": sizing.contributions[member],
             "held": sizing.contributions[member] - due[member], "to_add": max(due[member], Decimal(0)),
             "to_take_back": max(-due[member], Decimal(0)), "released": released.get(member, Decimal(0))}
            for member in sorted(due)]
    metadata = {"sizing": sizing.id, "as_of": sizing.as_of, "fund": sizing.fund, "scenario": sizing.scenario,
                "members": " + ".join(sizing.members), "currency": "USD", "minimum": cents(minimum),
                "rule": "Cover 2 over the stress library; each member pro rata to its largest uncovered stress "
                        "loss, at least the minimum", "accounts_opened": len(opened)}

    def table(_: Report) -> None:
        stdout.print(f"default fund as of {sizing.as_of}: {sizing.fund:,.2f} USD, set by {sizing.scenario} "
                     f"({' + '.join(sizing.members)}); sizing {sizing.id} stored", highlight=False)
        view = Table(box=box.SIMPLE_HEAD)
        for name in ("member", "contribution", "held", "to add", "to take back", "released"):
            view.add_column(name, justify="left" if name == "member" else "right")
        for row in rows:
            view.add_row(row["member"], *(f"{row[k]:,.2f}" for k in ("contribution", "held", "to_add",
                                                                      "to_take_back", "released")))
        stdout.print(view)

    emit(Report("default-fund", rows, metadata, [], {}), output.value, table)
