"""The clearing system assembled from the settings (adapter edge): the collateral tokens the vault
takes, the risk and collateral inputs of a book, the deployment recorded with the book, and the
:class:`~tokenclear.clearing.workflow.Workflow` over them. The demo and the operator commands
(``tokenclear book load``, ``cycle``, ``calls``, ``reconcile``) both start here."""

from __future__ import annotations

from dataclasses import dataclass

from tokenclear.book.positions import Book
from tokenclear.clearing.interfaces import Clock, HistoryFeed, PriceFeed
from tokenclear.clearing.parameters import TokenAsset
from tokenclear.clearing.requirements import RiskInputs, stored_book
from tokenclear.clearing.workflow import Workflow, WorkflowConfig
from tokenclear.collateral import files as collateral_files
from tokenclear.collateral.files import Reference
from tokenclear.errors import ConfigurationError
from tokenclear.instruments.catalogue import Catalogue, load_catalogue
from tokenclear.instruments.underlyings import load_underlyings
from tokenclear.ledger.chain import Chain
from tokenclear.ledger.ledger import Ledger
from tokenclear.margin.context import factor_specs, series_names
from tokenclear.market.files import load_folder
from tokenclear.market.history import MarketData
from tokenclear.market.oracle import GuardConfig, OracleGuard
from tokenclear.runner import concentration_capacity, price_checks, reference_defaults, risk_setup
from tokenclear.settings import Settings
from tokenclear.store.models import Deployment
from tokenclear.store.store import Store

#: The vault's collateral tokens and the registry assets whose haircuts they take.
TOKENS = [TokenAsset("TUSD", "USDC", "usdc_usd"), TokenAsset("TMMF", "TMMF", None),
          TokenAsset("TMMFD", "TMMFD", None), TokenAsset("TBILL", "TBILL", None),
          TokenAsset("WETH", "ETH", "eth_usd"), TokenAsset("WBTC", "BTC", "btc_usd")]
#: The guard over one source of daily closes: a quorum of one, a close at most an hour old when the cycle
#: reads it, a three-day TWAP and a 25% limit (a daily close moves more than an intraday tick).
DAILY_CLOSE_GUARD = GuardConfig(min_sources=1, max_age_s=3600, twap_window_s=3 * 86_400, max_twap_deviation=0.25)
LEDGER_RECORD = "ledger"


@dataclass(frozen=True)
class ClearingInputs:
    risk: RiskInputs
    reference: Reference
    collateral_market: tuple[MarketData, MarketData]  # prices, volumes


def clearing_inputs(settings: Settings, book: Book, catalogue: Catalogue | None = None) -> ClearingInputs:
    """The risk inputs of ``book`` (the setup of ``tokenclear margin``: JSCC's lookback plus a stress period,
    the settings' APC, the holiday and concentration add-ons) and the collateral reference and market."""
    catalogue = catalogue or load_catalogue(settings.instruments_file)
    specs = load_underlyings(settings.underlyings_file)
    setup = risk_setup(settings, field="TOKENCLEAR_STRESS_PERIOD")
    gaps = reference_defaults(settings, catalogue, specs, book, setup.config, concentration=setup.concentration)
    market = load_folder(settings.prices_dir, series_names(factor_specs(book, catalogue, specs, setup.config)),
                         **price_checks(settings, specs))
    risk = RiskInputs(catalogue, specs, market, setup, concentration_capacity(settings, settings.prices_dir),
                      tuple(gaps))
    reference = collateral_files.load_reference(settings.collateral_dir)
    registry = reference.registry.subset([token.asset for token in TOKENS])
    prices = collateral_files.load_market(settings.prices_dir, settings.volumes_dir, registry,
                                          settings.margin_currency)
    return ClearingInputs(risk, reference, prices)


def build_workflow(settings: Settings, store: Store, ledger: Ledger, clock: Clock, inputs: ClearingInputs,
                   feed: PriceFeed | None = None) -> Workflow:
    """The workflow over a deployment; ``feed`` defaults to the shipped daily closes. The book tracks every
    token the vault lists (one asset list: a token the vault counts but the book did not track would go
    unbooked and unreconciled)."""
    tracked, listed = {token.symbol for token in TOKENS}, set(ledger.specs)
    if tracked != listed:
        raise ConfigurationError(f"the vault lists {', '.join(sorted(listed))} but the book tracks "
                                 f"{', '.join(sorted(tracked))}: one asset list for both")
    return Workflow(store=store, ledger=ledger, clock=clock,
                    feed=feed or HistoryFeed(inputs.collateral_market[0]), guard=OracleGuard(DAILY_CLOSE_GUARD),
                    risk=inputs.risk, reference=inputs.reference, collateral_market=inputs.collateral_market,
                    tokens=TOKENS, config=WorkflowConfig(floor_grid_usd=settings.floor_grid_usd))


def record_deployment(store: Store, ledger: Ledger) -> None:
    with store.session() as session:
        session.add(Deployment(name=LEDGER_RECORD, record=ledger.record()))


def recorded_deployment(store: Store) -> dict:
    """The deployment record the book keeps (chain id, operator, contract addresses)."""
    with store.session() as session:
        deployment = session.get(Deployment, LEDGER_RECORD)
        record = None if deployment is None else deployment.record
    if record is None:
        raise ConfigurationError("the book records no deployment: load a book first (`tokenclear book load`)")
    return record


def recorded_addresses(store: Store) -> dict[str, str]:
    return recorded_deployment(store)["addresses"]


def attach_ledger(store: Store, chain: Chain) -> Ledger:
    """The deployment the book recorded, on ``chain`` (which must sign for its operator)."""
    return Ledger.attach(chain, recorded_deployment(store))


def open_workflow(settings: Settings, store: Store, chain: Chain, clock: Clock) -> Workflow:
    """The workflow over the deployment and positions the book records (the operator commands)."""
    ledger = attach_ledger(store, chain)
    catalogue = load_catalogue(settings.instruments_file)
    inputs = clearing_inputs(settings, stored_book(store, catalogue), catalogue)
    return build_workflow(settings, store, ledger, clock, inputs)
