"""The regulator's exposure report, laid out after the CPMI-IOSCO *Public quantitative disclosure standards for
central counterparties* (CPMI Papers No 125, February 2015), by the items that fit a tokenized-collateral book. The
standard itself could not be read here; items 4.4 (4.4.3: the largest stress loss in excess of margin of one
participant; 4.4.7: of two), 6.5 (6.5.4: the peak margin breach) and 18.1 (18.1.1.1: the number of general clearing
members) are checked against FIA's CCP Tracker, which charts those fields of the CCPs' disclosures; the others
(4.1, 5.1/5.2, 6.1, 6.2, 6.6-6.8) are numbered from the standard's layout as remembered, not checked:

- 4.1 / 4.4: the default fund (prefunded resources; Cover 2 over the stress library, 4.4.7), the scenario that sets
  it, and the largest uncovered stress loss of any one member (4.4.3);
- 5.1 / 5.2: the eligible collateral and its haircuts, and the monthly review of the haircuts;
- 6.1: total initial margin required, by member and by house and client accounts, and the method;
- 6.2: initial margin held by asset class, before and after haircuts, and the tokenized share;
- 6.5: back-testing of initial margin (exceptions, Basel traffic light) per account, and the largest breach
  (6.5.4);
- 6.6 - 6.8: variation margin paid per cycle (average, largest) and the largest margin call;
- 18.1: the number of clearing members;
and, outside the standard, the calls' timeliness and the book's reconciliation against the chain.

:func:`exposure` gathers the figures (money as decimal text); :func:`html` and :func:`pdf` lay them out, the PDF
with reportlab and charts drawn by matplotlib."""

from __future__ import annotations

import io
import statistics
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select

from tokenclear.clearing import calls as call_states
from tokenclear.default.fund import FUND_SEGREGATION
from tokenclear.margin.backtest import backtest_book
from tokenclear.margin.context import build_context
from tokenclear.money import amounts
from tokenclear.service import views
from tokenclear.service.auth import Principal
from tokenclear.service.core import Service
from tokenclear.store import queries
from tokenclear.store.models import CallEvent, Cycle, MarginCall, Member

TEMPLATES = Path(__file__).resolve().parent / "templates"
REGULATOR = Principal("report", "regulator")
BACKTEST_OBSERVATIONS = 250  # test dates wanted (every MPOR-th is tested)
MIN_LOOKBACK = 60


def exposure(service: Service) -> dict:
    """Every figure of the report, from the book, the chain and the risk core."""
    with service.store.session() as session:
        last = queries.last_closed_cycle(session)
        members = [m.id for m in session.scalars(select(Member).order_by(Member.id))]
    accounts = {a["id"]: a for a in views.accounts(service, REGULATOR)}
    return {"generated_at": datetime.now(UTC).isoformat(), "clock": service.clock.now().isoformat(),
            "cycle": None if last is None else views.cycle_head(last),
            "members": {"count": len([m for m in members if m != "CCP"]), "ids": members},  # 18.1
            "initial_margin": _initial_margin(accounts),  # 6.1
            "collateral": _collateral(service),  # 6.2
            "haircuts": {"now": views.token_terms(service), "reviews": views.reviews(service)},  # 5.1, 5.2
            "backtest": _backtest(service, last),  # 6.5
            "variation_margin": _variation_margin(service),  # 6.6 - 6.8
            "calls": _calls(service),
            "default_fund": views.default_fund(service, REGULATOR)["sizings"][-1:],  # 4.1, 4.4
            "reconciliation": views.chain(service)["reconciliation"]}


def _initial_margin(accounts: dict[str, dict]) -> dict:
    by_member: dict[str, dict[str, Decimal]] = {}
    for a in accounts.values():
        if a["segregation"] == FUND_SEGREGATION or a["requirement_usd"] is None:
            continue
        entry = by_member.setdefault(a["member"], {"HOUSE": Decimal(0), "CUSTOMER": Decimal(0)})
        entry[a["segregation"]] += Decimal(a["requirement_usd"])
    rows = [{"member": m, "house_usd": views.usd(v["HOUSE"]), "client_usd": views.usd(v["CUSTOMER"]),
             "total_usd": views.usd(v["HOUSE"] + v["CUSTOMER"])} for m, v in sorted(by_member.items())]
    house = sum((v["HOUSE"] for v in by_member.values()), Decimal(0))
    client = sum((v["CUSTOMER"] for v in by_member.values()), Decimal(0))
    return {"method": "historical-simulation VaR (JSCC/Eurex style) with holiday, concentration and APC add-ons",
            "house_usd": views.usd(house), "client_usd": views.usd(client), "total_usd": views.usd(house + client),
            "by_member": rows}


def _collateral(service: Service) -> dict:
    """Pre- and post-haircut value held, by asset class (the registry's kind), and the share held as tokens."""
    held = views.collateral(service, REGULATOR)
    registry = service.workflow.registry
    kinds = {t.symbol: registry.get(t.asset) for t in service.workflow.tokens}
    by_class: dict[str, dict[str, Decimal]] = {}
    for account in held["accounts"]:
        for token in account["tokens"]:
            asset = kinds[token["symbol"]]
            entry = by_class.setdefault(asset.kind, {"pre": Decimal(0), "post": Decimal(0), "tokenized": Decimal(0)})
            entry["pre"] += Decimal(token["market_value_usd"])
            entry["post"] += Decimal(token["post_haircut_usd"])
            entry["tokenized"] += Decimal(token["market_value_usd"])  # every unit in the vault is a token on chain
    total = sum((v["pre"] for v in by_class.values()), Decimal(0))
    return {"by_class": [{"asset_class": kind, "pre_haircut_usd": views.usd(v["pre"]),
                          "post_haircut_usd": views.usd(v["post"]),
                          "share": float(v["pre"] / total) if total else 0.0} for kind, v in sorted(by_class.items())],
            "pre_haircut_usd": views.usd(total),
            "post_haircut_usd": views.usd(sum((v["post"] for v in by_class.values()), Decimal(0))),
            "tokenized_share": 1.0 if total else 0.0,
            "counted_usd": views.usd(sum((Decimal(a["counted_usd"]) for a in held["accounts"]), Decimal(0)))}


def _backtest(service: Service, last: Cycle | None) -> dict:
    """Each margin account's HS-VaR backtested over the last observations before the last cycle's closes."""
    if last is None:
        return {"accounts": [], "lights": {}}
    risk = service.workflow.risk
    book = service.workflow.book()
    day = np.datetime64(last.detail["date"], "D")
    context = build_context(book=book, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                            config=risk.config, as_of=day)
    # each test date needs a full window before it: the window is shortened so that the book's own history
    # leaves BACKTEST_OBSERVATIONS test dates (the margin itself uses all of it, up to the configured lookback)
    history = context.history_scenarios
    lookback = min(risk.config.lookback, max(MIN_LOOKBACK, history - BACKTEST_OBSERVATIONS - risk.config.mpor_days))
    if lookback != risk.config.lookback:
        context = build_context(book=book, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                                config=replace(risk.config, lookback=lookback), as_of=day)
    if not book.accounts:
        return {"accounts": [], "lights": {}}
    result = backtest_book(context, book.quantity.astype(np.float64), end=day)  # every account at once
    # 6.5.4: the largest amount by which a realised loss exceeded the margin (0 without an exception), USD
    breach = amounts(np.where(result.exceptions, result.realised_loss - result.margin, 0.0).max(axis=0))
    rows = [{"account": account, "observations": int(result.exceptions.shape[0]),
             "exceptions": int(result.exceptions[:, i].sum()), "traffic_light": str(result.traffic_light[i]),
             "kupiec_p": float(result.kupiec_p[i]), "verdict": result.account(i).verdict,
             "largest_breach_usd": views.usd(breach[i])}
            for i, account in enumerate(book.accounts)]
    lights = {zone: int((result.traffic_light == zone).sum()) for zone in ("green", "yellow", "red")}
    return {"confidence": risk.config.confidence, "mpor_days": risk.config.mpor_days, "lookback": lookback,
            "from": str(result.dates[0]), "to": str(day), "accounts": rows, "lights": lights,
            "largest_breach_usd": views.usd(max(breach))}


def _variation_margin(service: Service) -> dict:
    paid = [Decimal(c["vm_paid_by_members_usd"] or "0") for c in views.cycles(service, REGULATOR)
            if c["kind"] == "scheduled"]
    return {"cycles": len(paid), "average_usd": views.usd(sum(paid, Decimal(0)) / len(paid)) if paid else None,
            "largest_usd": views.usd(max(paid)) if paid else None}


def _calls(service: Service) -> dict:
    """Calls by final state, cured on time (before the deadline) or late, the time to cure and the largest."""
    with service.store.session() as session:
        rows = list(session.scalars(select(MarginCall)))
        escalated = set(session.scalars(select(CallEvent.call_id).where(CallEvent.target == call_states.ESCALATED)))
    by_state: dict[str, int] = {}
    minutes, on_time = [], 0
    for c in rows:
        by_state[c.state] = by_state.get(c.state, 0) + 1
        if c.state == call_states.CURED and c.settled_at is not None:
            minutes.append((queries.utc(c.settled_at) - queries.utc(c.issued_at)).total_seconds() / 60)
            on_time += c.id not in escalated
    largest = max((c.amount for c in rows), default=None)
    return {"issued": len(rows), "by_state": by_state, "cured_on_time": on_time,
            "cured_late": by_state.get(call_states.CURED, 0) - on_time,
            "median_minutes_to_cure": statistics.median(minutes) if minutes else None,
            "largest_usd": None if largest is None else views.usd(largest)}  # 6.8


# ---- layout -------------------------------------------------------------------------------------------------
def _largest_one(sizing: dict) -> str:
    from tokenclear.service.dashboard import money

    one = sizing.get("largest_one")  # absent from sizings stored before it was recorded
    if not one or one.get("member") is None:
        return ""
    return (f" The largest of any one member (4.4.3): {money(one['usd'])} USD, {one['member']}, "
            f"scenario {one['scenario']}.")


def html(service: Service, figures: dict | None = None) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from tokenclear.service import charts
    from tokenclear.service.dashboard import money

    figures = figures or exposure(service)
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape())
    env.filters["money"] = money
    members = figures["initial_margin"]["by_member"]
    chart_im = charts.bars([r["member"] for r in members], [float(r["total_usd"]) for r in members],
                           unit="USD", title="Initial margin required by member (6.1)") if members else ""
    classes = figures["collateral"]["by_class"]
    chart_collateral = charts.bars([c["asset_class"] for c in classes], [float(c["post_haircut_usd"]) for c in classes],
                                   unit="USD", title="Collateral held after haircuts, by asset class (6.2)") \
        if classes else ""
    return env.get_template("report.html").render(f=figures, chart_im=chart_im, chart_collateral=chart_collateral)


def pdf(service: Service, figures: dict | None = None) -> bytes:
    """The same report as a PDF (reportlab), with its charts as images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from tokenclear.service.dashboard import money

    figures = figures or exposure(service)
    styles = getSampleStyleSheet()
    story = [Paragraph("tokenclear: exposure report to the regulator", styles["Title"]),
             Paragraph(f"Book at {figures['clock']} (service clock); last cycle "
                       f"{(figures['cycle'] or {}).get('key', 'none')}; generated {figures['generated_at']}.",
                       styles["Normal"]),
             Paragraph("Laid out after the CPMI-IOSCO public quantitative disclosure standards for CCPs (2015); "
                       "the item numbers are the standard's.", styles["Italic"])]

    def heading(text: str) -> None:
        story.extend([Spacer(1, 0.4 * cm), Paragraph(text, styles["Heading2"])])

    def table(rows: list[list[str]], numeric_from: int = 1) -> None:
        one = Table(rows, repeatRows=1, hAlign="LEFT")
        one.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f6")),
                                 ("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                                 ("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT")]))
        story.append(one)

    def chart(labels: list[str], values: list[float], title: str) -> None:
        figure, axis = plt.subplots(figsize=(7, 2.6), dpi=150)
        axis.bar(labels, values, color="#1f5fa8")
        axis.set_ylabel("USD")
        axis.set_title(title, fontsize=9, loc="left")
        axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        plt.setp(axis.get_xticklabels(), rotation=45, ha="right", fontsize=6)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        plt.close(figure)
        buffer.seek(0)
        story.append(Image(buffer, width=16 * cm, height=6 * cm))

    im = figures["initial_margin"]
    heading("6.1 Initial margin required")
    story.append(Paragraph(f"Method: {im['method']}. House {money(im['house_usd'])} USD, client "
                           f"{money(im['client_usd'])} USD, total {money(im['total_usd'])} USD; "
                           f"{figures['members']['count']} clearing members (18.1).", styles["Normal"]))
    if im["by_member"]:
        chart([r["member"] for r in im["by_member"]], [float(r["total_usd"]) for r in im["by_member"]],
              "Initial margin required by member (USD)")
        table([["Member", "House (USD)", "Client (USD)", "Total (USD)"]]
              + [[r["member"], money(r["house_usd"]), money(r["client_usd"]), money(r["total_usd"])]
                 for r in im["by_member"]])
    collateral = figures["collateral"]
    heading("6.2 Initial margin held, by asset class")
    story.append(Paragraph(f"Before haircuts {money(collateral['pre_haircut_usd'])} USD, after haircuts "
                           f"{money(collateral['post_haircut_usd'])} USD, counting after concentration and "
                           f"wrong-way limits {money(collateral['counted_usd'])} USD; tokenized share "
                           f"{collateral['tokenized_share']:.0%} (every unit is held in the vault on chain).",
                           styles["Normal"]))
    if collateral["by_class"]:
        chart([c["asset_class"] for c in collateral["by_class"]],
              [float(c["post_haircut_usd"]) for c in collateral["by_class"]], "Held after haircuts (USD)")
        table([["Asset class", "Before haircut (USD)", "After haircut (USD)", "Share"]]
              + [[c["asset_class"], money(c["pre_haircut_usd"]), money(c["post_haircut_usd"]), f"{c['share']:.1%}"]
                 for c in collateral["by_class"]])
    heading("5.1 / 5.2 Haircuts and the monthly review")
    table([["Token", "Asset", "Price (USD)", "Haircut (bps)", "Eligible"]]
          + [[s, t["asset"], f"{t['price_usd']:,.6f}", f"{t['haircut_bps']:,}", "yes" if t["eligible"] else "no"]
             for s, t in figures["haircuts"]["now"].items()], numeric_from=2)
    for review in figures["haircuts"]["reviews"][-1:]:
        story.append(Paragraph(f"Review {review['key']} (closes of {review['as_of']})", styles["Normal"]))
        table([["Asset", "Previous", "Now", "Driver"]]
              + [[c["asset"], "" if c["previous"] is None else f"{100 * c['previous']:.2f}%",
                  "" if c["current"] is None else f"{100 * c['current']:.2f}%", c["driver"]]
                 for c in review["changes"]])
    backtest = figures["backtest"]
    heading("6.5 Back-testing of initial margin")
    story.append(Paragraph(f"HS-VaR at {backtest.get('confidence', 0):.1%}, MPOR {backtest.get('mpor_days')} days, "
                           f"{backtest.get('from')} to {backtest.get('to')}: traffic lights "
                           + ", ".join(f"{k} {v}" for k, v in backtest["lights"].items())
                           + f"; the largest breach of margin by a realised loss (6.5.4) "
                           f"{money(backtest.get('largest_breach_usd') or '0')} USD.", styles["Normal"]))
    table([["Account", "Observations", "Exceptions", "Traffic light", "Largest breach (USD)"]]
          + [[r["account"], str(r["observations"]), str(r["exceptions"]), r["traffic_light"],
              money(r["largest_breach_usd"])] for r in backtest["accounts"]])
    vm, called = figures["variation_margin"], figures["calls"]
    heading("6.6 - 6.8 Variation margin and margin calls")
    story.append(Paragraph(f"VM paid by members per end-of-day cycle: average {money(vm['average_usd'])} USD, largest "
                           f"{money(vm['largest_usd'])} USD over {vm['cycles']} cycles. Calls issued "
                           f"{called['issued']} (largest {money(called['largest_usd'])} USD): cured on time "
                           f"{called['cured_on_time']}, late {called['cured_late']}, by state "
                           f"{called['by_state']}; median time to cure {called['median_minutes_to_cure']} minutes.",
                           styles["Normal"]))
    heading("4.1 / 4.4 Default fund and stress losses")
    for sizing in figures["default_fund"]:
        story.append(Paragraph(f"{money(sizing['fund_usd'])} USD sized at {sizing['at']} on the closes of "
                               f"{sizing['as_of']}: the largest uncovered stress loss of any two members (4.4.7), "
                               f"scenario {sizing['scenario']}, members {', '.join(sizing['members'] or [])}."
                               + _largest_one(sizing), styles["Normal"]))
    heading("Reconciliation of the book against the chain")
    recon = figures["reconciliation"]
    text = "not yet run" if recon is None else \
        f"{recon['at']}, block {recon['block']:,}: {len(recon['breaks'])} breaks."
    story.append(Paragraph(text, styles["Normal"]))
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title="tokenclear exposure report", author="tokenclear").build(story)
    return out.getvalue()
