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

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from tokenclear.arrays import Float64Array1D
from tokenclear.book.positions import Book
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.margin.context import Context, RunConfig
from tokenclear.margin.engine import AccountMargin, MarginRun, Options, run_margin

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
        main_class, main = max(parts, key=lambda part: part[1].base)
        components: dict[str, Decimal] = {}
        for _, row in parts:
            for key, value in row.components.items():
                components[key] = components.get(key, ZERO) + value
        top = sorted((item for _, row in parts for item in row.top_instruments), key=lambda item: -item[1])[:3]
        accounts.append(replace(
            main, margin=sum((row.margin for _, row in parts), ZERO),
            base=sum((row.base for _, row in parts), ZERO),
            holiday_addon=sum((row.holiday_addon for _, row in parts), ZERO),
            history_addon=sum((row.history_addon for _, row in parts), ZERO),
            concentration_addon=sum((row.concentration_addon for _, row in parts), ZERO),
            stress_addon=sum((row.stress_addon for _, row in parts), ZERO),
            apc_addon=sum((row.apc_addon for _, row in parts), ZERO),
            net_option_value=sum((row.net_option_value for _, row in parts), ZERO),
            worst_scenario=f"{main_class}: {main.worst_scenario}", top_instruments=top, components=components))
    first = next(iter(runs.values()))
    warnings = [warning for run in runs.values() for warning in run.warnings]
    holiday = {name: days for run in runs.values() for name, days in run.holiday_days.items()}
    return MarginRun(first.as_of, first.method, max(run.scenarios for run in runs.values()), accounts, holiday,
                     list(dict.fromkeys(warnings)), first.currency)


def margin_by_class(book: Book, catalogue: Catalogue, classes: dict[str, MarginClass], config: RunConfig, method: str,
                    options: Options, *, build: Callable[[Book, RunConfig], Context],
                    capacity: Callable[[Context], Float64Array1D | None] | None = None,
                    stress_addon: Float64Array1D | None = None, confidence: float | None = None,
                    mpor_days: int | None = None) -> MarginRun:
    """A whole book's margin: each clearing class present on its own context, summed per account.

    ``build(sub_book, class_config)`` resolves a class's context; ``capacity(context)`` gives the
    concentration capacity per instrument (None: no add-on); ``stress_addon`` (per account of
    ``book``) is charged once, with the account's first class. ``confidence`` / ``mpor_days``
    override every class, and the run says so.
    """
    of_class = np.array([catalogue[name].clearing_class for name in book.instruments])
    present = [name for name in classes if (of_class == name).any()]
    override = (confidence, mpor_days) != (None, None)
    index = {account: i for i, account in enumerate(book.accounts)}
    charged: set[str] = set()
    runs: dict[str, MarginRun] = {}
    notes: list[str] = []
    for name in present:  # a loop over classes (one or two)
        spec = classes[name]
        columns = of_class == name
        rows = (book.quantity[:, columns] != 0).any(axis=1)
        sub = Book([a for a, keep in zip(book.accounts, rows, strict=True) if keep],
                   [i for i, keep in zip(book.instruments, columns, strict=True) if keep],
                   book.quantity[np.ix_(rows, columns)])
        class_config = replace(config, confidence=spec.confidence if confidence is None else confidence,
                               mpor_days=spec.mpor_days if mpor_days is None else mpor_days)
        if len(present) > 1 or override:
            notes.append(f"{name} instruments: {class_config.confidence:.1%} over {class_config.mpor_days} days "
                         + ("(set for every class)" if override else f"({spec.source})"))
        context = build(sub, class_config)
        stress = None
        if stress_addon is not None:
            stress = np.array([0.0 if account in charged else stress_addon[index[account]]
                               for account in sub.accounts])
            charged.update(sub.accounts)
        runs[name] = run_margin(context, method, replace(
            options, capacity_usd=capacity(context) if capacity else None, stress_addon=stress))
    result = combine(runs)
    return replace(result, warnings=notes + result.warnings)
