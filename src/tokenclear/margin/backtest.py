"""Backtesting a margin model: margin at each date against the realised MPOR-day loss.

For a fixed portfolio (one account's positions or the whole book) and each test date
``t``: the margin from the window of moves ending at ``t``, applied to prices at ``t``;
the realised loss is the same portfolio's loss over the next MPOR days (the move ending
at ``t + mpor``). Contracts keep their as-of time to expiry (rolling constant maturity),
so the test measures the model, not the roll. An exception is a realised loss above the
margin. Overlapping MPOR windows make exceptions cluster, so the default step is the
MPOR (non-overlapping tests); a shorter step is kept as an option, with a warning.

Statistics: Kupiec's proportion-of-failures LR test, Christoffersen's independence LR
test (both chi-squared with one degree of freedom) and their sum, the conditional-coverage
test (two degrees of freedom), each at the 5% level; the Basel traffic-light zone of the
last 250 observations (green / yellow / red by the binomial cumulative probability of
the exception count: below 95%, below 99.99%, else; 0-4, 5-9, 10+ at 99%), and the
peak-to-trough ratio of the margin series (procyclicality). The verdict passes only when every
test passes: a green light with clustered exceptions (independence rejected) fails, and says so. Kupiec's
test is two-sided; significantly fewer exceptions than expected is reported as ``conservative``
(over-margining), not as a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import xlogy
from scipy.stats import binom, chi2

from tokenclear.arrays import Float64Array1D
from tokenclear.errors import ConfigurationError, MarketDataError
from tokenclear.margin.addons import holiday_days, holiday_scale
from tokenclear.margin.context import Context
from tokenclear.margin.engine import Options, base_and_holiday, prepare
from tokenclear.margin.historical import horizon_calendar_days
from tokenclear.margin.measures import loss_measure
from tokenclear.margin.valuation import reprice, revalue
from tokenclear.money import requirements

TRAFFIC_WINDOW = 250
#: Significance level of the coverage and independence tests: a p-value below it rejects the model.
TEST_LEVEL = 0.05


@dataclass(frozen=True)
class Backtest:
    dates: np.ndarray
    margin: Float64Array1D  # > 0 owed
    realised_loss: Float64Array1D  # > 0 = loss over the following MPOR
    exceptions: np.ndarray  # bool
    confidence: float
    kupiec_lr: float
    kupiec_p: float
    christoffersen_lr: float
    christoffersen_p: float
    traffic_light: str
    traffic_exceptions: int
    peak_to_trough: float
    step: int = 1
    warnings: list[str] = field(default_factory=list)
    method: str = "hsvar"

    @property
    def conditional_coverage_p(self) -> float:
        """Christoffersen's joint test of coverage and independence (LR_pof + LR_ind, chi-squared, 2 dof)."""
        return float(chi2.sf(self.kupiec_lr + self.christoffersen_lr, 2))

    @property
    def conservative(self) -> bool:
        """Fewer exceptions than expected, significantly (Kupiec rejects on the safe side): over-margining,
        reported but not a failure of the model's coverage."""
        return self.kupiec_p < TEST_LEVEL and self.exception_rate < 1.0 - self.confidence

    @property
    def failed(self) -> list[str]:
        """The tests the model fails: coverage (Kupiec, on the side of too many exceptions), independence
        (Christoffersen), the joint test (unless the model is only conservative), a traffic light other than
        green."""
        out = []
        if self.kupiec_p < TEST_LEVEL and not self.conservative:
            out.append(f"coverage (Kupiec p = {self.kupiec_p:.3g} < {TEST_LEVEL}, {self.exception_count} exceptions "
                       f"in {self.exceptions.size})")
        if self.christoffersen_p < TEST_LEVEL:
            out.append(f"independence (Christoffersen p = {self.christoffersen_p:.3g} < {TEST_LEVEL})")
        if self.conditional_coverage_p < TEST_LEVEL and not self.conservative:
            out.append(f"conditional coverage (p = {self.conditional_coverage_p:.3g} < {TEST_LEVEL})")
        if self.traffic_light != "green":
            out.append(f"traffic light {self.traffic_light} ({self.traffic_exceptions} exceptions in the last "
                       f"{min(TRAFFIC_WINDOW, self.exceptions.size)})")
        return out

    @property
    def verdict(self) -> str:
        """``pass`` when every test passes, else ``fail`` (see :attr:`failed` for which)."""
        return "fail" if self.failed else "pass"

    @property
    def exception_count(self) -> int:
        return int(self.exceptions.sum())

    @property
    def exception_rate(self) -> float:
        return self.exception_count / max(self.exceptions.size, 1)

    def summary(self) -> dict[str, object]:
        return {"method": self.method, "observations": int(self.exceptions.size), "exceptions": self.exception_count,
                "exception_rate": self.exception_rate, "expected_rate": round(1.0 - self.confidence, 12),
                "kupiec_lr": self.kupiec_lr, "kupiec_p_value": self.kupiec_p,
                "christoffersen_lr": self.christoffersen_lr, "christoffersen_p_value": self.christoffersen_p,
                "conditional_coverage_p_value": self.conditional_coverage_p, "verdict": self.verdict,
                "failed": "; ".join(self.failed), "conservative": self.conservative,
                "traffic_light": self.traffic_light, "traffic_light_exceptions": self.traffic_exceptions,
                "peak_to_trough": self.peak_to_trough, "step": self.step, "first": str(self.dates[0]),
                "last": str(self.dates[-1]), "warnings": list(self.warnings)}


def kupiec(exceptions, observations, expected_rate: float):
    """Kupiec POF likelihood ratio and its p-value (chi-squared, 1 dof); elementwise over arrays of counts
    (floats back for scalars)."""
    x = np.asarray(exceptions, dtype=np.float64)
    n = np.asarray(observations, dtype=np.float64)
    p = expected_rate
    observed = x / n
    log_null = xlogy(n - x, 1 - p) + xlogy(x, p)
    log_alt = xlogy(n - x, 1 - observed) + xlogy(x, observed)
    lr = np.maximum(-2.0 * (log_null - log_alt), 0.0)
    return _scalar(lr), _scalar(chi2.sf(lr, 1))


def christoffersen(exceptions: np.ndarray):
    """Christoffersen's independence likelihood ratio and p-value (chi-squared, 1 dof) of a series of
    exceptions (bool[tests]), or of each column of bool[tests, accounts] (arrays back)."""
    hits = np.asarray(exceptions, dtype=bool)
    previous, current = hits[:-1], hits[1:]
    n00 = (~previous & ~current).sum(axis=0).astype(np.float64)
    n01 = (~previous & current).sum(axis=0).astype(np.float64)
    n10 = (previous & ~current).sum(axis=0).astype(np.float64)
    n11 = (previous & current).sum(axis=0).astype(np.float64)
    pi01 = n01 / np.maximum(n00 + n01, 1)
    pi11 = n11 / np.maximum(n10 + n11, 1)
    pi = (n01 + n11) / np.maximum(n00 + n01 + n10 + n11, 1)
    log_null = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    log_alt = xlogy(n00, 1 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1 - pi11) + xlogy(n11, pi11)
    lr = np.maximum(-2.0 * (log_null - log_alt), 0.0)
    return _scalar(lr), _scalar(chi2.sf(lr, 1))


def traffic_light(exceptions, observations, expected_rate: float):
    """Basel zone of an exception count (or of each of an array of counts)."""
    cumulative = binom.cdf(exceptions, observations, expected_rate)
    zone = np.where(cumulative < 0.95, "green", np.where(cumulative < 0.9999, "yellow", "red"))
    return str(zone) if zone.ndim == 0 else zone


def _scalar(values: np.ndarray):
    values = np.asarray(values, dtype=np.float64)
    return float(values) if values.ndim == 0 else values


@dataclass(frozen=True)
class BookBacktest:
    """The backtest of many portfolios on the same test dates: arrays over [tests, accounts] and, for the
    statistics, [accounts]. :meth:`account` gives one portfolio's :class:`Backtest`."""

    dates: np.ndarray
    margin: np.ndarray  # float64[tests, accounts], > 0 owed
    realised_loss: np.ndarray  # float64[tests, accounts], > 0 = loss over the following MPOR
    exceptions: np.ndarray  # bool[tests, accounts]
    confidence: float
    kupiec_lr: np.ndarray
    kupiec_p: np.ndarray
    christoffersen_lr: np.ndarray
    christoffersen_p: np.ndarray
    traffic_light: np.ndarray  # str[accounts]
    traffic_exceptions: np.ndarray  # int[accounts]
    peak_to_trough: np.ndarray
    step: int
    warnings: list[str]
    method: str

    def account(self, i: int) -> Backtest:
        return Backtest(self.dates, self.margin[:, i], self.realised_loss[:, i], self.exceptions[:, i],
                        self.confidence, float(self.kupiec_lr[i]), float(self.kupiec_p[i]),
                        float(self.christoffersen_lr[i]), float(self.christoffersen_p[i]), str(self.traffic_light[i]),
                        int(self.traffic_exceptions[i]), float(self.peak_to_trough[i]), self.step,
                        list(self.warnings), self.method)


def run_backtest(context: Context, quantity: np.ndarray, **options) -> Backtest:
    """Backtest one portfolio ``quantity`` (float64[instruments]); see :func:`backtest_book`."""
    return backtest_book(context, np.asarray(quantity, dtype=np.float64)[None, :], **options).account(0)


def backtest_book(context: Context, quantity: np.ndarray, *, start: np.datetime64 | None = None,
                  end: np.datetime64 | None = None, step: int | None = None, holiday: bool = True,
                  method: str = "hsvar", rebuild: Callable[[np.datetime64], Context] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> BookBacktest:
    """Backtest a margin method on each row of ``quantity`` (float64[accounts, instruments]) over [start, end],
    on the same test dates: one pass over the test dates, every account at once.

    HS-VaR runs on the windows of ``context`` directly (contracts at constant time to
    expiry). Every other method (``fhs``, ``span``, ``asvar``, ``notional``) is run as a
    margin run would run it on each test date, on the context ``rebuild(date)`` returns
    (the portfolios as a book of one account per row of ``quantity``, in that order, as of
    that date); its realised loss uses that date's contracts. Both compare base + holiday
    add-on (before any net option value).

    ``step`` (default: the MPOR) tests every step-th date: at the MPOR the realised
    windows do not overlap, which Kupiec's and Christoffersen's tests assume; a shorter
    step is allowed with a warning. The realised loss runs from the test date's closes
    to those ``mpor_days`` risk-grid dates later (a 24/7 product tested on a Friday: to
    Tuesday), and ``holiday`` adds the holiday add-on of that date, as a run would. With a
    stress period, each test's window adds the stress period's moves dated up to the test.
    ``progress(done, total)`` is told before each test date and once all are done.
    """
    config = context.config
    lookback, horizon = config.lookback, config.mpor_days
    quantity = np.asarray(quantity, dtype=np.float64)
    if quantity.ndim != 2:
        raise ConfigurationError(f"quantity must be float64[accounts, instruments], not of shape {quantity.shape}")
    factors = context.factors
    moves = context.moves
    if method != "hsvar" and rebuild is None:
        raise ConfigurationError(f"a backtest of {method} needs the inputs to rebuild each test date's context")
    step = horizon if step is None else step
    if step < 1:
        raise ConfigurationError(f"step must be >= 1, not {step}")
    warnings = list(context.warnings)
    if step < horizon:
        warnings.append(f"step {step} < MPOR {horizon}: realised windows overlap, so exceptions cluster and the "
                        f"Kupiec and Christoffersen p-values are not valid; use --step {horizon}")
    n_moves = moves.shape[0]
    # a test at move row t uses rows t-lookback+1..t as scenarios; its outcome is the grid move
    # from t's grid date to the grid date ``horizon`` rows later
    grid_index = np.searchsorted(factors.grid, context.move_dates)
    first = int(np.searchsorted(context.move_dates, factors.grid[0]))  # rows before it: a prepended stress period
    candidates = np.arange(first + lookback - 1, n_moves)
    after = grid_index[candidates] + horizon
    valid = after < factors.grid.size
    tests, after = candidates[valid], after[valid]
    dates = context.move_dates[tests]
    keep = ~np.isnan(factors.prices[after]).any(axis=1)
    if start is not None:
        keep &= dates >= start
    if end is not None:
        keep &= dates <= end
    tests, after, dates = tests[keep][::step], after[keep][::step], dates[keep][::step]
    if tests.size < 2:
        raise MarketDataError(f"fewer than two test dates with {lookback} observations of history before them "
                              f"and {horizon} days after; shorten --lookback or widen --from/--to")
    windows = sliding_window_view(moves, lookback, axis=0)  # [n_moves-lookback+1, factors, lookback]
    stressed = np.array([], dtype=np.int64) if config.stress_period is None else np.flatnonzero(
        (context.move_dates >= config.stress_period[0]) & (context.move_dates <= config.stress_period[1]))
    horizon_days = horizon_calendar_days(context)
    calendars = [factors.specs[j].calendar for j in context.resolved.underlying_index]
    confidence = config.es_confidence if config.measure == "es" else config.confidence
    absolute = factors.is_absolute
    accounts = quantity.shape[0]
    margin = np.empty((tests.size, accounts))
    realised = np.empty((tests.size, accounts))
    for k, (row, outcome) in enumerate(zip(tests.tolist(), after.tolist(), strict=True)):  # loop over test dates
        if progress is not None:
            progress(k, tests.size)
        spot = factors.prices[grid_index[row]]
        later = factors.prices[outcome]
        move = np.where(absolute, later - spot, later / spot - 1.0)
        if rebuild is not None and method != "hsvar":
            dated = rebuild(dates[k])
            held = dated.book.quantity
            if held.shape[0] != accounts:
                raise ConfigurationError(f"rebuild({dates[k]}) gave a book of {held.shape[0]} accounts for "
                                         f"{accounts} portfolios")
            _, base, extra = base_and_holiday(prepare(dated, method, Options(holiday=holiday)), held)
            # what the run charges: each part rounded up to the cent, as its requirement rows are
            margin[k] = np.array(requirements(base), dtype=np.float64) + np.array(requirements(extra),
                                                                                  dtype=np.float64)
            realised[k] = -(quantity @ revalue(dated.resolved, move[None, :],
                                               horizon_days=horizon_calendar_days(dated))[:, 0])
            continue
        resolved = reprice(context.resolved, factors, spot)
        window = windows[row - lookback + 1].T  # [lookback, factors]
        if config.stress_period is not None:  # the stress period as of that date, as a margin run would add it
            extra = stressed[(context.move_dates[stressed] <= dates[k]) & ((stressed < row - lookback + 1) |
                                                                          (stressed > row))]
            window = np.vstack([moves[extra], window])
        per_contract = revalue(resolved, window, horizon_days=horizon_days)  # [instruments, scenarios]
        base = loss_measure(quantity @ per_contract, measure=config.measure, confidence=confidence)
        margin[k] = np.maximum(base, 0.0)
        if holiday:
            extra = holiday_days(calendars, cash_calendar=config.cash_calendar, as_of=dates[k], mpor_days=horizon)
            if extra.any():
                scaled = quantity @ (per_contract * holiday_scale(extra, horizon)[:, None])
                margin[k] = np.maximum(margin[k], loss_measure(scaled, measure=config.measure,
                                                               confidence=confidence))
        realised[k] = -(quantity @ revalue(resolved, move[None, :], horizon_days=horizon_days)[:, 0])
    if progress is not None:
        progress(tests.size, tests.size)
    exceptions = realised > margin
    expected = 1.0 - config.confidence
    counts = exceptions.sum(axis=0)
    k_lr, k_p = kupiec(counts, np.full(accounts, exceptions.shape[0]), expected)
    c_lr, c_p = christoffersen(exceptions)
    recent = exceptions[-TRAFFIC_WINDOW:].sum(axis=0)
    zone = traffic_light(recent, min(TRAFFIC_WINDOW, exceptions.shape[0]), expected)
    positive = margin > 0  # the peak-to-trough ratio of each account's positive margins (nan: never positive)
    peak = np.where(positive, margin, -np.inf).max(axis=0)
    trough = np.where(positive, margin, np.inf).min(axis=0)
    ratio = np.where(positive.any(axis=0), peak / np.where(positive.any(axis=0), trough, 1.0), np.nan)
    return BookBacktest(dates, margin, realised, exceptions, config.confidence, np.atleast_1d(k_lr),
                        np.atleast_1d(k_p), np.atleast_1d(c_lr), np.atleast_1d(c_p), np.atleast_1d(zone),
                        recent.astype(np.int64), ratio, step, warnings, method)
