"""What a margin run takes besides its book and market, built once for every entry point.

:func:`tokenclear.runner.risk_setup` fills a :class:`RiskSetup` from the settings and a command's
explicit options; the ``margin`` command and the clearing cycle both hand it to :func:`book_margin`,
so one book gives one requirement per account whichever of them computes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tokenclear.arrays import Float64Array1D
from tokenclear.book.positions import Book
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.margin.classes import MarginClass, margin_by_class
from tokenclear.margin.context import Context, RunConfig
from tokenclear.margin.engine import MarginRun, Options


@dataclass(frozen=True)
class RiskSetup:
    """The run parameters, what a run adds to the method's requirement (APC, holiday add-on, SPAN
    pairs), the clearing classes, an override of every class's confidence and MPOR (None: each class
    its own), and whether the concentration add-on applies."""

    config: RunConfig
    options: Options
    classes: dict[str, MarginClass]
    confidence: float | None
    mpor_days: int | None
    concentration: bool


def book_margin(book: Book, catalogue: Catalogue, setup: RiskSetup, method: str, *,
                build: Callable[[Book, RunConfig], Context],
                capacity: Callable[[Context], Float64Array1D | None] | None,
                stress_addon: Float64Array1D | None = None) -> MarginRun:
    """A whole book's margin, class by class; ``capacity`` is used only when the setup asks for the
    concentration add-on."""
    return margin_by_class(book, catalogue, setup.classes, setup.config, method, setup.options, build=build,
                           capacity=capacity if setup.concentration else None, stress_addon=stress_addon,
                           confidence=setup.confidence, mpor_days=setup.mpor_days)
