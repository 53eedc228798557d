"""EMIR parameters per instrument class, in one run over a mixed book.

EMIR RTS 153/2013 sets the confidence (Art. 24: 99.5% for OTC derivatives, 99% for other
financial instruments) and the liquidation period (Art. 26: at least five business days
for OTC derivatives, two for the others) by instrument class. A book holding both is
margined class by class, each class with its own MPOR-day scenarios and confidence, and
an account's requirement is the sum over its classes: no offset across classes, as
Eurex Prisma keeps liquidation groups apart. ``data/margin_classes.csv`` holds the
parameters with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from tokenclear.csvfiles import parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import CLEARING_CLASSES
from tokenclear.margin.engine import AccountMargin, MarginRun

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class MarginClass:
    name: str
    confidence: float
    mpor_days: int
    source: str


#: EMIR's minimum levels, used when no classes file is given.
EMIR_CLASSES = {
    "listed": MarginClass("listed", 0.99, 2, "EMIR RTS 153/2013 Art. 24(1)(b), 26(1)(b)"),
    "otc": MarginClass("otc", 0.995, 5, "EMIR RTS 153/2013 Art. 24(1)(a), 26(1)(a)"),
}


def load_classes(path: Path) -> dict[str, MarginClass]:
    """CSV ``class,confidence,mpor_days,source``; every clearing class must have a row."""
    path = Path(path)
    out: dict[str, MarginClass] = {}
    for line, row in read_rows(path, ["class", "confidence", "mpor_days", "source"]):
        name = row["class"]
        if name not in CLEARING_CLASSES:
            raise InputError(f"class '{name}' is not one of {', '.join(CLEARING_CLASSES)}", path=path, line=line,
                             field="class")
        if name in out:
            raise InputError(f"duplicate class '{name}'", path=path, line=line, field="class")
        confidence = parse_float(row["confidence"], path=path, line=line, field="confidence")
        if not 0.5 < confidence < 1:
            raise InputError("confidence must lie in (0.5, 1)", path=path, line=line, field="confidence")
        mpor = parse_float(row["mpor_days"], path=path, line=line, field="mpor_days")
        if mpor < 1 or mpor != int(mpor):
            raise InputError("mpor_days must be a whole number >= 1", path=path, line=line, field="mpor_days")
        if not row["source"]:
            raise InputError("a class needs the source of its parameters", path=path, line=line, field="source")
        out[name] = MarginClass(name, confidence, int(mpor), row["source"])
    missing = [name for name in CLEARING_CLASSES if name not in out]
    if missing:
        raise InputError(f"no row for class(es) {', '.join(missing)}", path=path)
    return out


def combine(runs: dict[str, MarginRun]) -> MarginRun:
    """One run from per-class runs: each account's figures summed over its classes.

    The worst scenario is that of the class with the largest base requirement (labelled
    with the class when there are several); the top instruments are the largest of all.
    """
    if len(runs) == 1:
        return next(iter(runs.values()))
    rows: dict[str, list[tuple[str, AccountMargin]]] = {}
    for name, run in runs.items():
        for row in run.accounts:
            rows.setdefault(row.account, []).append((name, row))
    accounts = []
    for account in sorted(rows):
        parts = rows[account]
        main_class, main = max(parts, key=lambda part: part[1].base_usd)
        components: dict[str, Decimal] = {}
        for _, row in parts:
            for key, value in row.components.items():
                components[key] = components.get(key, ZERO) + value
        top = sorted((item for _, row in parts for item in row.top_instruments), key=lambda item: -item[1])[:3]
        accounts.append(replace(
            main, margin_usd=sum((row.margin_usd for _, row in parts), ZERO),
            base_usd=sum((row.base_usd for _, row in parts), ZERO),
            holiday_addon_usd=sum((row.holiday_addon_usd for _, row in parts), ZERO),
            history_addon_usd=sum((row.history_addon_usd for _, row in parts), ZERO),
            concentration_addon_usd=sum((row.concentration_addon_usd for _, row in parts), ZERO),
            stress_addon_usd=sum((row.stress_addon_usd for _, row in parts), ZERO),
            apc_usd=sum((row.apc_usd for _, row in parts), ZERO),
            net_option_value_usd=sum((row.net_option_value_usd for _, row in parts), ZERO),
            worst_scenario=f"{main_class}: {main.worst_scenario}", top_instruments=top, components=components))
    first = next(iter(runs.values()))
    warnings = [warning for run in runs.values() for warning in run.warnings]
    holiday = {name: days for run in runs.values() for name, days in run.holiday_days.items()}
    return MarginRun(first.as_of, first.method, max(run.scenarios for run in runs.values()), accounts, holiday,
                     list(dict.fromkeys(warnings)))
