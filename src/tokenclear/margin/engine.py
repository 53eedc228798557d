"""One margin run: a method's base requirement, add-ons and APC, with drivers, per account.

Errors are values per account only where an account can fail on its own; a bad input
fails the whole run before anything is computed (see the loaders).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal
from typing import Literal, Protocol, get_args

import numpy as np

from tokenclear.arrays import Float64Array1D
from tokenclear.errors import ConfigurationError
from tokenclear.margin import asvar, span
from tokenclear.margin.addons import concentration_addon, holiday_days, holiday_scale
from tokenclear.margin.context import APC_LOOKBACK_10Y, Context
from tokenclear.margin.historical import Historical
from tokenclear.margin.notional import Notional
from tokenclear.margin.procyclicality import (
    APC_OPTIONS,
    ApcOption,
    buffer_addon,
    floor_addon,
    stressed_weight_addon,
)
from tokenclear.margin.result import MethodResult
from tokenclear.money import amounts, requirements

MarginMethod = Literal["hsvar", "fhs", "span", "asvar", "notional"]
METHODS: tuple[MarginMethod, ...] = get_args(MarginMethod)


class Method(Protocol):
    def margin(self, quantity: np.ndarray, scale: Float64Array1D | None = None) -> MethodResult: ...


def build_method(context: Context, method: str, rows: np.ndarray, *,
                 span_pairs: list[span.InterPair] | None = None,
                 span_parameters: span.SpanParameters | None = None) -> Method:
    if method in ("hsvar", "fhs"):
        return Historical.build(context, rows, filtered=method == "fhs")
    if method == "span" and span_parameters is not None:  # published parameters: no calibration
        return span.Span.build(context, span_parameters.for_factors(list(context.factors.names)))
    if method == "span":
        return span.Span.build(context, span.calibrate(context, rows, coverage=context.config.confidence,
                                                       pairs=span_pairs))
    if method == "asvar":
        return asvar.Asvar.build(context, asvar.calibrate(context))
    if method == "notional":
        return Notional.build(context, rows)
    raise ConfigurationError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class AccountMargin:
    """An account's requirement (margin currency, > 0 owed by the member) and its drivers."""

    account: str
    method: str
    margin: Decimal
    base: Decimal
    holiday_addon: Decimal
    history_addon: Decimal  # EMIR Art. 25(3): history shorter than required
    concentration_addon: Decimal
    stress_addon: Decimal
    apc_addon: Decimal
    net_option_value: Decimal  # premium-paid options at today's value: > 0 credited (long), < 0 charged
    worst_scenario: str
    top_instruments: list[tuple[str, Decimal]]
    components: dict[str, Decimal] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        """The account as one flat row (money as Decimal): the drivers, the largest contributor and each
        component of the base requirement as ``component_<name>``."""
        top = self.top_instruments[0] if self.top_instruments else ("", None)
        return {
            "account": self.account, "method": self.method, "margin": self.margin, "base": self.base,
            "holiday_addon": self.holiday_addon, "history_addon": self.history_addon,
            "concentration_addon": self.concentration_addon, "stress_addon": self.stress_addon,
            "apc_addon": self.apc_addon, "net_option_value": self.net_option_value,
            "worst_scenario": self.worst_scenario, "top_instrument": top[0], "top_instrument_loss": top[1],
            **{f"component_{key}": value for key, value in self.components.items()},
        }


@dataclass(frozen=True)
class MarginRun:
    as_of: str
    method: str
    scenarios: int
    accounts: list[AccountMargin]
    holiday_days: dict[str, int]
    warnings: list[str]
    currency: str = "USD"  # the margin currency every amount is in


@dataclass(frozen=True)
class Options:
    """What a run adds to the method's base requirement."""

    apc: ApcOption | None = None
    apc_released_fraction: float = 0.0
    holiday: bool = True
    capacity_usd: Float64Array1D | None = None  # participation x ADV per instrument; None = no concentration add-on
    stress_addon: Float64Array1D | None = None  # per account, from a stress test
    span_pairs: list[span.InterPair] | None = None
    span_parameters: span.SpanParameters | None = None  # published SPAN parameters instead of calibrating


@dataclass(frozen=True)
class Prepared:
    """What a run computes once per instrument, before any account: the method (its scenario P&L), the
    add-ons' per-instrument parts. Shared by every partition of accounts (:func:`account_margins`); holds no
    book. ``instruments`` are the columns of every quantity it is given."""

    method: str
    instruments: list[str]
    model: Method
    holiday_scale: Float64Array1D | None  # None: no holiday add-on
    unit_long: Float64Array1D | None  # concentration: one contract's margin long and short; None: no add-on
    unit_short: Float64Array1D | None
    notional: Float64Array1D
    capacity_usd: Float64Array1D | None
    history_factor: float  # EMIR Art. 25(3) short-history add-on as a fraction of the base
    apc: str | None
    apc_model: Method | None  # floor10y: the ten-year window's method; stressed-weight: the stressed window's
    apc_released_fraction: float
    option_value: Float64Array1D
    holiday_days: dict[str, int]
    scenarios: int
    warnings: list[str]
    as_of: str
    currency: str


def prepare(context: Context, method: MarginMethod, options: Options = Options()) -> Prepared:
    """Validate the run's options and build everything :func:`account_margins` needs but the accounts."""
    if options.apc is not None and options.apc not in APC_OPTIONS:
        raise ConfigurationError(f"unknown APC option '{options.apc}'; choose one of {', '.join(APC_OPTIONS)}")
    if method == "asvar" and options.apc in ("floor10y", "stressed-weight"):
        raise ConfigurationError("AS-VaR parameters are weekly and set in advance: only the 'buffer' APC applies")
    history = context.history_scenarios
    if options.apc == "floor10y" and history < APC_LOOKBACK_10Y:
        raise ConfigurationError(f"the floor10y APC needs {APC_LOOKBACK_10Y:,} observations (ten years); the book's "
                                 f"common history gives {history:,}, so the floor would be the base window itself: "
                                 "use stressed-weight or buffer")
    config = context.config
    rows = context.window()
    if options.span_parameters is not None and options.apc in ("floor10y", "stressed-weight"):
        raise ConfigurationError("published SPAN parameters are set in advance: only the 'buffer' APC applies")
    model = build_method(context, method, rows, span_pairs=options.span_pairs,
                         span_parameters=options.span_parameters)
    n_instruments = len(context.resolved.names)
    calendars = [context.factors.specs[j].calendar for j in context.resolved.underlying_index]
    extra = holiday_days(calendars, cash_calendar=config.cash_calendar, as_of=context.as_of,
                         mpor_days=config.mpor_days)
    scale = holiday_scale(extra, config.mpor_days) if options.holiday and extra.any() else None
    unit_long = unit_short = None
    if options.capacity_usd is not None:
        eye = np.eye(n_instruments)
        unit_long, unit_short = model.margin(eye).risk, model.margin(-eye).risk
    apc_model = None
    if options.apc == "floor10y":
        apc_model = build_method(context, method, context.window(APC_LOOKBACK_10Y), span_pairs=options.span_pairs)
    elif options.apc == "stressed-weight":
        apc_model = build_method(context, method, context.stressed_rows(), span_pairs=options.span_pairs)
    short = max(config.required_history - history, 0)
    factor = float(np.sqrt(config.required_history / history) - 1.0) if short else 0.0
    warnings = list(context.warnings)
    if short:
        warnings.append(f"history gives {history} scenarios, fewer than the {config.required_history} required "
                        f"(EMIR Art. 25): a short-history add-on of {factor:.1%} of the base requirement")
    names = context.resolved.names
    days = {name: int(d) for name, d in zip(names, extra.tolist(), strict=True)}
    return Prepared(method, list(names), model, scale, unit_long, unit_short, context.resolved.notional,
                    options.capacity_usd, factor, options.apc, apc_model, options.apc_released_fraction,
                    context.resolved.option_value, days, int(rows.size) if method in ("hsvar", "fhs") else 0,
                    warnings, str(context.as_of), config.margin_currency)


def shipped(prepared: Prepared) -> Prepared:
    """``prepared`` for sending to workers: every :class:`Context` its methods keep is cut to what a margin reads
    after preparation (:meth:`Context.shipped`), the scenario P&L kept whole; margins are unchanged."""
    return _shipped(prepared)


def _shipped(value):
    if isinstance(value, Context):
        return value.shipped()
    if is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for one in fields(value):
            if one.init:
                now = getattr(value, one.name)
                cut = _shipped(now)
                if cut is not now:
                    changed[one.name] = cut
        return replace(value, **changed) if changed else value
    return value


def base_and_holiday(prepared: Prepared, quantity: np.ndarray) -> tuple[MethodResult, Float64Array1D,
                                                                        Float64Array1D]:
    """The method's result on ``quantity[accounts, instruments]``, its risk (>= 0) and the holiday add-on (>= 0),
    float64 in the margin currency: what a backtest compares with the realised loss."""
    base = prepared.model.margin(quantity)
    base_risk = np.maximum(base.risk, 0.0)
    holiday = np.zeros(quantity.shape[0])
    if prepared.holiday_scale is not None:
        scaled = prepared.model.margin(quantity, prepared.holiday_scale)
        holiday = np.maximum(np.maximum(scaled.risk, 0.0) - base_risk, 0.0)
    return base, base_risk, holiday


def account_margins(prepared: Prepared, accounts: list[str], quantity: np.ndarray,
                    stress_addon: Float64Array1D | None = None) -> list[AccountMargin]:
    """Each account's requirement and drivers: ``quantity[accounts, instruments]`` over ``prepared.instruments``;
    one account's figures depend on its own row only, so any partition of the accounts gives the same rows."""
    n_accounts = quantity.shape[0]
    base, base_risk, holiday = base_and_holiday(prepared, quantity)
    concentration = np.zeros(n_accounts)
    if prepared.unit_long is not None:
        concentration, _ = concentration_addon(quantity, unit_long=prepared.unit_long, unit_short=prepared.unit_short,
                                               notional=prepared.notional, capacity_usd=prepared.capacity_usd)
    # EMIR RTS 153/2013 Art. 25(3): a conservative add-on while the history is shorter than required;
    # the quantile's sampling error shrinks as 1/sqrt(n), so the base is scaled by sqrt(required / n)
    history_addon = base_risk * prepared.history_factor
    stress = np.zeros(n_accounts) if stress_addon is None else np.maximum(stress_addon, 0.0)
    apc = np.zeros(n_accounts)
    if prepared.apc == "buffer":
        apc = buffer_addon(base_risk, released_fraction=prepared.apc_released_fraction)
    elif prepared.apc == "floor10y":
        apc = floor_addon(base_risk, np.maximum(prepared.apc_model.margin(quantity).risk, 0.0))
    elif prepared.apc == "stressed-weight":
        apc = stressed_weight_addon(base_risk, np.maximum(prepared.apc_model.margin(quantity).risk, 0.0))
    # premium-paid options: the requirement covers the risk less the net option value (CME SPAN's
    # "risk minus NOV"): a long option's value is credited, a short option's value charged; never < 0
    net_option_value = np.asarray(quantity, dtype=np.float64) @ prepared.option_value
    total = np.maximum(base_risk + holiday + history_addon + concentration + stress + apc - net_option_value, 0.0)
    names = prepared.instruments
    # the boundary to exact money, column by column; then one AccountMargin per account
    money = {key: requirements(values) for key, values in (
        ("margin", total), ("base", base_risk), ("holiday_addon", holiday), ("history_addon", history_addon),
        ("concentration_addon", concentration), ("stress_addon", stress), ("apc_addon", apc))}
    option_value = amounts(net_option_value)
    components = {key: amounts(values) for key, values in base.components.items()}
    losses = np.asarray(base.contributor_loss, dtype=np.float64)
    loss_money = np.array(amounts(losses), dtype=object).reshape(losses.shape)
    top = [[(names[j], loss_money[a, k]) for k, j in enumerate(row) if losses[a, k] > 0]
           for a, row in enumerate(np.asarray(base.contributors).tolist())]  # formatting, after the numeric core
    worst = [str(one) for one in base.worst]
    return [AccountMargin(account=account, method=prepared.method, net_option_value=option_value[a],
                          worst_scenario=worst[a], top_instruments=top[a],
                          components={key: values[a] for key, values in components.items()},
                          **{key: values[a] for key, values in money.items()})
            for a, account in enumerate(accounts)]


def run_margin(context: Context, method: MarginMethod, options: Options = Options()) -> MarginRun:
    """The margin of ``context``'s book: :func:`prepare`, then :func:`account_margins` over every account."""
    prepared = prepare(context, method, options)
    accounts = account_margins(prepared, context.book.accounts, context.book.quantity, options.stress_addon)
    return MarginRun(prepared.as_of, method, prepared.scenarios, accounts, prepared.holiday_days,
                     prepared.warnings, prepared.currency)
