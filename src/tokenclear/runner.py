"""Loads a run's files (adapter edge) and hands plain data to the pure core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tokenclear.book.positions import Book, book_from_entries, dense_book, read_positions
from tokenclear.dates import parse_as_of, parse_period
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import Catalogue, load_catalogue
from tokenclear.instruments.underlyings import Underlying, load_underlyings
from tokenclear.margin.addons import average_daily_volume_usd
from tokenclear.margin.classes import EMIR_CLASSES, MarginClass
from tokenclear.margin.context import Context, RunConfig, build_context, factor_specs, series_names
from tokenclear.margin.engine import MarginRun, Options, Prepared
from tokenclear.margin.procyclicality import APC_OPTIONS
from tokenclear.margin.setup import RiskSetup, book_margin
from tokenclear.margin.span import InterPair
from tokenclear.margin_files import load_classes, load_concentration, load_pairs
from tokenclear.market.files import load_folder, series_in
from tokenclear.market.history import MarketData
from tokenclear.settings import Settings


@dataclass(frozen=True)
class Inputs:
    catalogue: Catalogue
    specs: dict[str, Underlying]
    book: Book
    market: MarketData
    prices_dir: Path
    warnings: list[str] = field(default_factory=list)  # reference defaults applied on request
    settlements: dict | None = None  # exchange settlement prices by (date, instrument), from --settlements


def risk_setup(settings: Settings, *, stress_period: str | None = None, field: str = "--stress-period",
               confidence: float | None = None, mpor_days: int | None = None, apc: str | None = None,
               apc_release: float | None = None, holiday: bool | None = None, concentration: bool | None = None,
               **overrides: object) -> RiskSetup:
    """The risk inputs from the settings (``TOKENCLEAR_*``) with a command's explicit options on top: an
    argument left None takes the setting. ``stress_period`` is ``START:END`` or ``none``."""
    classes = margin_classes(settings)
    confidence = settings.confidence if confidence is None else confidence
    mpor_days = settings.mpor_days if mpor_days is None else mpor_days
    listed = classes.get("listed") or next(iter(classes.values()))
    values: dict[str, object] = {
        "es_confidence": settings.es_confidence, "ewma_lambda": settings.ewma_lambda,
        "stress_window": settings.stress_window, "min_scenarios": settings.min_scenarios,
        "required_history": settings.required_history, "max_stale_days": settings.max_stale_days,
        "margin_currency": settings.margin_currency, "risk_calendar": settings.risk_calendar,
        "cash_calendar": settings.cash_calendar, "lookback": settings.lookback,
        # a one-class command (backtest, params) runs at the override or the listed class's figures
        "confidence": listed.confidence if confidence is None else confidence,
        "mpor_days": listed.mpor_days if mpor_days is None else mpor_days,
        "stress_period": parse_period(stress_period or settings.stress_period, field),
    }
    values.update({name: value for name, value in overrides.items() if value is not None})
    apc = settings.apc if apc is None else apc
    if apc != "none" and apc not in APC_OPTIONS:
        raise InputError(f"unknown APC option '{apc}'; choose one of {', '.join(APC_OPTIONS)} or none",
                         field="--apc" if field.startswith("--") else "TOKENCLEAR_APC")
    options = Options(apc=None if apc == "none" else apc,
                      apc_released_fraction=settings.apc_release if apc_release is None else apc_release,
                      holiday=settings.holiday_addon if holiday is None else holiday,
                      span_pairs=span_pairs(settings))
    given = {"confidence": confidence, "mpor_days": mpor_days, **overrides}
    try:
        config = RunConfig(**values)  # type: ignore[arg-type]
    except InputError as error:  # name the option or the variable the value came from
        origin = f"--{error.field.replace('_', '-')}" if given.get(error.field) is not None and \
            field.startswith("--") else f"TOKENCLEAR_{error.field.upper()}"
        raise InputError(error.message, field=origin) from None
    return RiskSetup(config, options, classes, confidence, mpor_days,
                     settings.concentration_addon if concentration is None else concentration)


def load_inputs(settings: Settings, *, positions: Path | None, instruments: Path | None,
                prices: Path | None, allow_defaults: bool | None = None, sum_duplicates: bool = False,
                book: Callable[[Catalogue], Book] | None = None) -> Inputs:
    """Read and validate every input file before anything is computed. A series of the book without a row in
    the underlyings file is refused (see :func:`reference_defaults`). ``book(catalogue)``, when given, stands
    for the positions file (a distributed run's universe of contracts, its accounts read by the workers)."""
    catalogue = load_catalogue(instruments or settings.instruments_file)
    specs = load_underlyings(settings.underlyings_file) if settings.underlyings_file.is_file() else {}
    if book is None:
        book, read = read_positions(positions or settings.demo_positions_file, catalogue,
                                    sum_duplicates=sum_duplicates)
    else:
        book, read = book(catalogue), []
    prices_dir = Path(prices or settings.prices_dir)
    config = RunConfig(margin_currency=settings.margin_currency, risk_calendar=settings.risk_calendar)
    warnings = read + reference_defaults(settings, catalogue, specs, book, config, allow_defaults=allow_defaults)
    files = series_in(prices_dir)  # proxies are read when there: a stress period uses them
    market = load_folder(prices_dir, series_names(factor_specs(book, catalogue, specs, config), files),
                         **price_checks(settings, specs))
    return Inputs(catalogue, specs, book, market, prices_dir, warnings)


def price_checks(settings: Settings, specs: dict[str, Underlying]) -> dict[str, frozenset]:
    """The keywords of :func:`~tokenclear.market.files.load_folder` that check a run's closes: the series of
    absolute moves (the rest must stay > 0 and within a 4x day) and the moves confirmed as real."""
    return {"absolute": frozenset(name for name, spec in specs.items() if spec.returns == "absolute"),
            "confirmed": settings.confirmed}


def reference_defaults(settings: Settings, catalogue: Catalogue, specs: dict[str, Underlying], book: Book,
                       config: RunConfig, *, allow_defaults: bool | None = None, underlyings: bool = True,
                       concentration: bool = False) -> list[str]:
    """The book's price series (underlyings and FX) missing from the underlyings file (``underlyings``; the
    inputs' loader has checked them already) and, when the concentration add-on applies, its underlyings
    missing from the concentration file. Refused with an
    :class:`InputError` naming the file and the series, unless ``allow_defaults`` (default: the setting
    ``TOKENCLEAR_ALLOW_DEFAULTS``): then the stated defaults apply and each is returned as a warning."""
    allow = settings.allow_defaults if allow_defaults is None else allow_defaults
    gaps: list[tuple[Path, list[str], str]] = []
    missing = [one.name for one in factor_specs(book, catalogue, specs, config) if one.name not in specs] \
        if underlyings else []
    if missing:
        gaps.append((settings.underlyings_file, missing, f"relative moves on the {config.risk_calendar} calendar, no "
                                                         "carry, no term decay, no stress proxy"))
    if concentration:
        rules = load_concentration(settings.concentration_file) if settings.concentration_file.is_file() else {}
        underlyings = list(dict.fromkeys(one.underlying for one in catalogue.select(book.instruments)))
        uncovered = [name for name in underlyings if name not in rules]
        if uncovered:
            gaps.append((settings.concentration_file, uncovered, "no concentration add-on"))
    if gaps and not allow:
        path, names, _ = gaps[0]
        raise InputError(f"no row for {listed(names)}: add them, or pass --allow-defaults (TOKENCLEAR_ALLOW_DEFAULTS"
                         "=1) to price them with stated defaults", path=path, field="underlying")
    return [f"{path.name} has no row for {listed(names)}: {defaults} (--allow-defaults)"
            for path, names, defaults in gaps]


def listed(names: list[str], limit: int = 12) -> str:
    """Names for a message: all of a few, else the first ``limit`` and how many more."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit:,} more ({len(names):,} in all)"


def context_for(inputs: Inputs, config: RunConfig, as_of: np.datetime64 | None) -> Context:
    return build_context(book=inputs.book, catalogue=inputs.catalogue, market=inputs.market, specs=inputs.specs,
                         config=config, as_of=as_of, settlements=inputs.settlements)


def span_pairs(settings: Settings) -> list[InterPair]:
    return load_pairs(settings.intercommodity_file) if settings.intercommodity_file.is_file() else []


def capacity_usd(settings: Settings, context: Context, prices_dir: Path) -> np.ndarray | None:
    """participation x ADV (USD) per instrument of the book; inf where no rule applies."""
    if not settings.concentration_file.is_file():
        return None
    adv, participation = factor_adv_usd(settings, context, prices_dir)
    per_factor = np.where(np.isfinite(adv) & (adv > 0), participation * adv, np.inf)
    return per_factor[context.resolved.underlying_index]


def factor_adv_usd(settings: Settings, context: Context, prices_dir: Path,
                   volumes: dict[str, MarketData] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ADV in USD, participation) per factor of the context, from concentration.csv (nan, 0 without a rule);
    ``volumes``, when given, receives each factor's volume series read on the way."""
    rules = load_concentration(settings.concentration_file) if settings.concentration_file.is_file() else {}
    factor_names = context.factors.names
    adv, participation = np.full(len(factor_names), np.nan), np.zeros(len(factor_names))
    for j, name in enumerate(factor_names):  # a loop over the book's factors (a handful)
        rule = rules.get(name)
        if rule is None:
            continue
        read = load_folder(settings.volumes_dir, [name], value_column="volume") if rule.adv_usd is None else \
            MarketData()
        if volumes is not None and name in read.series:
            volumes[name] = read
        prices = load_folder(prices_dir, [name]) if rule.volume_unit == "shares" else MarketData()
        adv[j] = average_daily_volume_usd(rule, volumes=read, prices=prices, as_of=context.as_of)
        participation[j] = rule.participation
    return adv, participation


def load_stress_addon(path: Path, accounts: list[str]) -> np.ndarray:
    """CSV ``account,addon_usd``: an add-on per account from a stress test (absent = 0)."""
    from tokenclear.csvfiles import parse_float, read_rows

    rows = read_rows(path, ["account", "addon_usd"])
    index = {name: i for i, name in enumerate(accounts)}
    out = np.zeros(len(accounts))
    for line, row in rows:
        if row["account"] not in index:
            raise InputError(f"account '{row['account']}' holds no positions", path=path, line=line, field="account")
        value = parse_float(row["addon_usd"], path=path, line=line, field="addon_usd")
        if value < 0:
            raise InputError("addon_usd must be >= 0", path=path, line=line, field="addon_usd")
        out[index[row["account"]]] = value
    return out


def load_context(settings: Settings, config: RunConfig, *, positions: Path | None, instruments: Path | None,
                 prices: Path | None, as_of: str | None, allow_defaults: bool | None = None,
                 sum_duplicates: bool = False) -> tuple[Inputs, Context]:
    """Read every input file, then resolve the run's context (the common start of every command); the
    context's warnings include the inputs'."""
    inputs = load_inputs(settings, positions=positions, instruments=instruments, prices=prices,
                         allow_defaults=allow_defaults, sum_duplicates=sum_duplicates)
    context = context_for(inputs, config, parse_as_of(as_of))
    return inputs, replace(context, warnings=[*inputs.warnings, *context.warnings])


def margin_classes(settings: Settings) -> dict[str, MarginClass]:
    return load_classes(settings.margin_classes_file) if settings.margin_classes_file.is_file() else EMIR_CLASSES

def run_book_margin(settings: Settings, inputs: Inputs, setup: RiskSetup, *, as_of: str | None, method: str,
                    stress_addon: Path | None = None, allow_defaults: bool | None = None) -> MarginRun:
    """The margin of a whole book from its files, class by class (:func:`~tokenclear.margin.setup.book_margin`)."""
    day = parse_as_of(as_of)
    gaps = reference_defaults(settings, inputs.catalogue, inputs.specs, inputs.book, setup.config,
                              allow_defaults=allow_defaults, underlyings=False, concentration=setup.concentration)
    run = book_margin(inputs.book, inputs.catalogue, setup, method,
                       build=lambda book, class_config: context_for(replace(inputs, book=book), class_config, day),
                       capacity=concentration_capacity(settings, inputs.prices_dir),
                       stress_addon=load_stress_addon(stress_addon, inputs.book.accounts) if stress_addon else None)
    missing = missing_files(settings, method)
    return replace(run, warnings=list(dict.fromkeys([*missing, *inputs.warnings, *gaps, *run.warnings])))


def missing_files(settings: Settings, method: str) -> list[str]:
    """The warnings for optional reference files a margin run goes without."""
    missing = [f"{settings.margin_classes_file} not found: the EMIR defaults apply (listed 99% over 2 days, OTC "
               "99.5% over 5 days)"] if not settings.margin_classes_file.is_file() else []
    if method == "span" and not settings.intercommodity_file.is_file():
        missing.append(f"{settings.intercommodity_file} not found: no inter-commodity spread credit")
    return missing


def concentration_capacity(settings: Settings, prices_dir: Path) -> Callable[[Context], np.ndarray | None]:
    """The concentration add-on's capacity per instrument of a context (participation x ADV, USD)."""
    return lambda context: capacity_usd(settings, context, prices_dir)


def per_contract_inputs(settings: Settings, *, instruments: Path | None, prices: Path | None,
                        as_of: np.datetime64 | None) -> tuple[Inputs, np.datetime64, list[str]]:
    """A book of one long and one short contract of every listed instrument live on ``as_of`` (JSCC publishes
    this per-contract margin every business day): accounts ``<instrument>:long`` and ``<instrument>:short``.
    ``as_of`` defaults to the newest close of any underlying; an instrument expired by then, or whose
    underlying has no close within ``max_stale_days`` of it, is left out and named in the warnings."""
    catalogue = load_catalogue(instruments or settings.instruments_file)
    specs = load_underlyings(settings.underlyings_file) if settings.underlyings_file.is_file() else {}
    prices_dir = Path(prices or settings.prices_dir)
    names = sorted({one.underlying for one in catalogue.select(catalogue.instruments)})
    available = series_in(prices_dir)
    market = load_folder(prices_dir, [name for name in names if name in available], **price_checks(settings, specs))
    last = {name: market.get(name).dates[-1] for name in market.series}
    if not last:
        raise InputError("no price series for any instrument of the catalogue", path=prices_dir)
    day = as_of if as_of is not None else max(last.values())
    live, left_out = [], []
    for one in catalogue.select(catalogue.instruments):
        fresh = one.underlying in last and (day - last[one.underlying]).astype(int) <= settings.max_stale_days
        if one.clearing_class == "listed" and fresh and (one.expiry is None or one.expiry > day):
            live.append(one.instrument)
        elif one.clearing_class == "listed":
            left_out.append(one.instrument)
    if not live:
        raise InputError(f"no listed instrument is live with a fresh close on {day}", field="--as-of")
    entries = [(f"{name}:{side}", name, sign) for name in live for side, sign in (("long", 1), ("short", -1))]
    book = book_from_entries(entries, catalogue)
    config = RunConfig(margin_currency=settings.margin_currency, risk_calendar=settings.risk_calendar)
    files = series_in(prices_dir)
    needed = series_names(factor_specs(book, catalogue, specs, config), files)
    more = load_folder(prices_dir, [name for name in needed if name not in market.series],
                       **price_checks(settings, specs))  # FX, stress proxies
    market = MarketData({name: market.series[name] if name in market.series else more.series[name]
                         for name in needed})
    warnings = reference_defaults(settings, catalogue, specs, book, config)
    if left_out:
        warnings.append(f"left out (expired, or no close within {settings.max_stale_days} days of {day}): "
                        f"{', '.join(left_out)}")
    return Inputs(catalogue, specs, book, market, prices_dir, warnings), day, live


def run_span_file(params: Path, positions: Path, *, as_of: str | None = None,
                  sum_duplicates: bool = False) -> tuple[MarginRun, dict[str, object]]:
    """SPAN margin of the positions file ``positions`` (exchange symbology) from the published risk arrays of
    the CME SPAN file ``params`` (:mod:`tokenclear.span_pa2`), and the file's header for the metadata. The
    contracts are the file's own: no catalogue, prices or calibration are read."""
    from tokenclear.book.positions import read_entries
    from tokenclear.margin import span_arrays
    from tokenclear.margin.engine import AccountMargin
    from tokenclear.money import amount, requirement
    from tokenclear.span_pa2 import read_risk_file, resolver

    file = read_risk_file(params)
    if as_of is not None and str(parse_as_of(as_of)) != file.business_date:
        raise InputError(f"the SPAN file is of business day {file.business_date}, not {as_of}", field="--as-of")
    resolve, by_name = resolver(file, Path(positions))
    entries, warnings = read_entries(positions, resolve, sum_duplicates=sum_duplicates, symbology_only=True)
    book = dense_book(entries, sorted(by_name))
    accounts = book.accounts
    held = [by_name[name] for name in book.instruments]
    currencies = sorted({file.commodities[c.commodity].currency for c in held})
    if len(currencies) != 1:
        raise InputError(f"the book's combined commodities are margined in {', '.join(currencies)}: one currency "
                         "a run (currency conversion is not read)", path=positions)
    result = span_arrays.margin(file, held, book.quantity)
    total = np.maximum(np.maximum(result.risk, 0.0) - result.net_option_value, 0.0)
    zero = requirement(0.0)
    rows = [AccountMargin(
        account=account, method="span", margin=requirement(total[a]), base=requirement(max(result.risk[a], 0.0)),
        holiday_addon=zero, history_addon=zero, concentration_addon=zero, stress_addon=zero, apc_addon=zero,
        net_option_value=amount(result.net_option_value[a]), worst_scenario=result.worst[a],
        top_instruments=[(name, amount(loss)) for name, loss in result.contributors[a]],
        components={key: amount(values[a]) for key, values in result.components.items()})
        for a, account in enumerate(accounts)]  # formatting the output, after the numeric core
    notes = [f"SPAN risk arrays published by {file.exchange_complex} for {file.business_date} "
             f"({'end of day' if file.settlement else 'intraday'}): no add-ons or APC are applied to them"]
    run = MarginRun(file.business_date, "span", span_arrays.SCENARIOS, rows, {}, notes + warnings + file.notes,
                    currencies[0])
    header = {"exchange_complex": file.exchange_complex, "business_date": file.business_date,
              "file_format": file.file_format, "settlement": file.settlement, "contracts": len(file.contracts),
              "contracts_held": len(held)}
    return run, header


@dataclass(frozen=True)
class DistributedSetup:
    """A distributed margin run before its accounts: the partitions, the book's contracts, each class's
    prepared method, and what the run says up front (its warnings, as-of, scenarios)."""

    inputs: Inputs
    parts: list
    instruments: list[str]
    prepared: dict[str, Prepared]
    warnings: list[str]

    @property
    def first(self) -> Prepared:
        return next(iter(self.prepared.values()))

    @property
    def scenarios(self) -> int:
        return max(one.scenarios for one in self.prepared.values())

    @property
    def holiday_days(self) -> dict[str, int]:
        return {name: days for one in self.prepared.values() for name, days in one.holiday_days.items()}


def distributed_setup(settings: Settings, setup: RiskSetup, *, positions: Path, instruments: Path | None,
                      prices: Path | None, as_of: str | None, method: str, allow_defaults: bool | None = None,
                      settlements: Path | None = None) -> DistributedSetup:
    """Everything a distributed run computes once, on the client: the class contexts of the book's contracts
    and their :func:`~tokenclear.margin.engine.prepare`; as :func:`run_book_margin` does for one process."""
    from tokenclear import distributed
    from tokenclear.margin.engine import prepare

    parts = distributed.partitions(positions)
    universe: list[str] = []

    def book(catalogue: Catalogue) -> Book:
        universe.extend(distributed.book_instruments(parts, catalogue))
        if not universe:
            raise InputError("no position names a contract of the catalogue", path=positions, field="instrument")
        return Book(["book"], list(universe), np.zeros((1, len(universe)), dtype=np.int64))

    inputs = load_inputs(settings, positions=positions, instruments=instruments, prices=prices,
                         allow_defaults=allow_defaults, book=book)
    if settlements is not None:
        from tokenclear.market.settlements import load_settlements

        inputs = replace(inputs, settlements=load_settlements(settlements, set(inputs.catalogue.instruments)))
    gaps = reference_defaults(settings, inputs.catalogue, inputs.specs, inputs.book, setup.config,
                              allow_defaults=allow_defaults, underlyings=False, concentration=setup.concentration)
    books = distributed.class_books(inputs.catalogue, universe, setup.classes)
    override = (setup.confidence, setup.mpor_days) != (None, None)
    day = parse_as_of(as_of)
    notes, prepared = [], {}
    for name, class_book in books.items():  # a loop over clearing classes (one or two), as margin_by_class does
        spec = setup.classes[name]
        config = replace(setup.config, confidence=spec.confidence if setup.confidence is None else setup.confidence,
                         mpor_days=spec.mpor_days if setup.mpor_days is None else setup.mpor_days)
        if len(books) > 1 or override:
            notes.append(f"{name} instruments: {config.confidence:.1%} over {config.mpor_days} days "
                         + ("(set for every class)" if override else f"({spec.source})"))
        context = context_for(replace(inputs, book=class_book), config, day)
        options = replace(setup.options, capacity_usd=capacity_usd(settings, context, inputs.prices_dir)
                          if setup.concentration else None)
        prepared[name] = prepare(context, method, options)
    missing = missing_files(settings, method)
    warnings = [*missing, *inputs.warnings, *gaps, *notes, *(w for one in prepared.values() for w in one.warnings)]
    return DistributedSetup(inputs, parts, universe, prepared, list(dict.fromkeys(warnings)))
