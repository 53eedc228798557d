"""A cycle's requirements: each account's margin as the ``margin`` command computes it (the same setup,
add-ons and APC), from the positions in the store, and each account's correlation with every collateral
token's return over the same scenarios (general wrong-way risk)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import structlog

from tokenclear.book.positions import Book, book_from_entries
from tokenclear.clearing.instructions import WorkflowError
from tokenclear.clearing.interfaces import StorePort
from tokenclear.collateral.assets import Registry
from tokenclear.collateral.limits import portfolio_correlation
from tokenclear.collateral.returns import asset_returns
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.margin.context import Context, RunConfig, build_context
from tokenclear.margin.historical import Historical
from tokenclear.margin.hsvar import portfolio_pnl
from tokenclear.margin.setup import RiskSetup, book_margin
from tokenclear.market.history import MarketData
from tokenclear.store import queries

log = structlog.get_logger("tokenclear.requirements")


@dataclass(frozen=True)
class RiskInputs:
    """Reference and market data of the risk core and the run's setup (built by
    :func:`tokenclear.runner.risk_setup`, as for the ``margin`` command); the positions come from the
    store each cycle. ``capacity``: the concentration add-on's capacity per instrument of a context."""

    catalogue: Catalogue
    specs: dict
    market: MarketData
    setup: RiskSetup
    capacity: Callable[[Context], np.ndarray | None] | None = None
    warnings: tuple[str, ...] = ()  # reference defaults applied on request (every cycle repeats them)

    @property
    def config(self) -> RunConfig:
        return self.setup.config


@dataclass(frozen=True)
class Measured:
    requirement_usd: dict[str, Decimal]  # by account, in the margin currency (USD)
    holiday_addon_usd: dict[str, Decimal]  # by account: the part of the requirement the holiday add-on makes
    correlation: dict[str, tuple[float, ...]]  # by account: with each token's return, in token order
    warnings: list[str]
    worst_scenario: dict[str, str] = field(default_factory=dict)  # by account: the scenario that sets its margin


def stored_book(store: StorePort, catalogue: Catalogue) -> Book:
    """The open positions in the store, as the risk core's dense book; a position in an instrument the
    catalogue does not know is refused."""
    with store.session() as session:
        entries = queries.positions(session)
    unknown = sorted({instrument for _, instrument, _ in entries} - set(catalogue.instruments))
    if unknown:
        raise WorkflowError(f"positions in instruments the catalogue does not know: {', '.join(unknown)}")
    return book_from_entries(entries, catalogue)


def measure(risk: RiskInputs, book: Book, registry: Registry, collateral_prices: MarketData,
            day: np.datetime64) -> Measured:
    """Requirements (USD) of ``book`` as of ``day``, the accounts' wrong-way correlations with the tokens
    of ``registry``, and the margin run's warnings."""
    # the whole book's scenarios (wrong-way correlations need them); a one-class book's margin runs on them too
    context = build_context(book=book, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                            config=risk.config, as_of=day)

    def build(sub: Book, config: RunConfig) -> Context:
        if (sub.accounts, sub.instruments, config) == (book.accounts, book.instruments, risk.config):
            return context
        return build_context(book=sub, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                             config=config, as_of=day)

    run = book_margin(book, risk.catalogue, risk.setup, "hsvar", build=build, capacity=risk.capacity)
    warnings = list(dict.fromkeys([*risk.warnings, *run.warnings]))
    for warning in warnings:
        log.warning("margin run", date=str(day), warning=warning)
    window = context.window()
    measured = window[context.move_dates[window] >= context.factors.grid[0]]  # the tokens' own history only:
    history = Historical.build(context, measured, filtered=False)  # proxied stress rows have no token return
    pnl = portfolio_pnl(context.book.quantity, history.pnl)  # [accounts, scenarios]
    returns = asset_returns(registry, collateral_prices, history.dates, horizon=risk.config.mpor_days,
                            margin_currency=risk.config.margin_currency)
    correlation = portfolio_correlation(pnl, returns)
    by_account = {account: tuple(float(x) for x in correlation[i]) for i, account in enumerate(context.book.accounts)}
    return Measured({account.account: account.margin for account in run.accounts},
                    {account.account: account.holiday_addon for account in run.accounts}, by_account, warnings,
                    {account.account: account.worst_scenario for account in run.accounts})
