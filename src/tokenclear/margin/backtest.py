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
from tokenclear.margin.engine import Options, run_margin
from tokenclear.margin.historical import horizon_calendar_days
from tokenclear.margin.measures import loss_measure
from tokenclear.margin.procyclicality import peak_to_trough
from tokenclear.margin.valuation import reprice, revalue

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


def kupiec(exceptions: int, observations: int, expected_rate: float) -> tuple[float, float]:
    """Kupiec POF likelihood ratio and its p-value (chi-squared, 1 dof)."""
    x, n, p = exceptions, observations, expected_rate
    observed = x / n
    log_null = xlogy(n - x, 1 - p) + xlogy(x, p)
    log_alt = xlogy(n - x, 1 - observed) + xlogy(x, observed)
    lr = float(max(-2.0 * (log_null - log_alt), 0.0))
    return lr, float(chi2.sf(lr, 1))


def christoffersen(exceptions: np.ndarray) -> tuple[float, float]:
    """Christoffersen's independence likelihood ratio and p-value (chi-squared, 1 dof)."""
    hits = exceptions.astype(np.int64)
    previous, current = hits[:-1], hits[1:]
    n00 = int(((previous == 0) & (current == 0)).sum())
    n01 = int(((previous == 0) & (current == 1)).sum())
    n10 = int(((previous == 1) & (current == 0)).sum())
    n11 = int(((previous == 1) & (current == 1)).sum())
    pi01 = n01 / max(n00 + n01, 1)
    pi11 = n11 / max(n10 + n11, 1)
    pi = (n01 + n11) / max(n00 + n01 + n10 + n11, 1)
    log_null = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    log_alt = xlogy(n00, 1 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1 - pi11) + xlogy(n11, pi11)
    lr = float(max(-2.0 * (log_null - log_alt), 0.0))
    return lr, float(chi2.sf(lr, 1))


def traffic_light(exceptions: int, observations: int, expected_rate: float) -> str:
    cumulative = binom.cdf(exceptions, observations, expected_rate)
    if cumulative < 0.95:
        return "green"
    return "yellow" if cumulative < 0.9999 else "red"


def run_backtest(context: Context, quantity: np.ndarray, *, start: np.datetime64 | None = None,
                 end: np.datetime64 | None = None, step: int | None = None, holiday: bool = True,
                 method: str = "hsvar", rebuild: Callable[[np.datetime64], Context] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Backtest:
    """Backtest a margin method on ``quantity`` (float64[instruments]) over [start, end].

    HS-VaR runs on the windows of ``context`` directly (contracts at constant time to
    expiry). Every other method (``fhs``, ``span``, ``asvar``, ``notional``) is run as a
    margin run would run it on each test date, on the context ``rebuild(date)`` returns
    (the portfolio as a one-account book as of that date); its realised loss uses that
    date's contracts. Both compare base + holiday add-on (before any net option value).

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
    margin = np.empty(tests.size)
    realised = np.empty(tests.size)
    for k, (row, outcome) in enumerate(zip(tests.tolist(), after.tolist(), strict=True)):  # loop over test dates
        if progress is not None:
            progress(k, tests.size)
        spot = factors.prices[grid_index[row]]
        later = factors.prices[outcome]
        move = np.where(absolute, later - spot, later / spot - 1.0)
        if rebuild is not None and method != "hsvar":
            dated = rebuild(dates[k])
            run = run_margin(dated, method, Options(holiday=holiday)).accounts[0]
            margin[k] = float(run.base + run.holiday_addon)
            realised[k] = -float(quantity @ revalue(dated.resolved, move[None, :],
                                                    horizon_days=horizon_calendar_days(dated))[:, 0])
            continue
        resolved = reprice(context.resolved, factors, spot)
        window = windows[row - lookback + 1].T  # [lookback, factors]
        if config.stress_period is not None:  # the stress period as of that date, as a margin run would add it
            extra = stressed[(context.move_dates[stressed] <= dates[k]) & ((stressed < row - lookback + 1) |
                                                                          (stressed > row))]
            window = np.vstack([moves[extra], window])
        per_contract = revalue(resolved, window, horizon_days=horizon_days)
        base = loss_measure((quantity @ per_contract)[None, :], measure=config.measure, confidence=confidence)[0]
        margin[k] = max(float(base), 0.0)
        if holiday:
            extra = holiday_days(calendars, cash_calendar=config.cash_calendar, as_of=dates[k], mpor_days=horizon)
            if extra.any():
                scaled = quantity @ (per_contract * holiday_scale(extra, horizon)[:, None])
                margin[k] = max(margin[k], float(loss_measure(scaled[None, :], measure=config.measure,
                                                              confidence=confidence)[0]))
        realised[k] = -float(quantity @ revalue(resolved, move[None, :], horizon_days=horizon_days)[:, 0])
    if progress is not None:
        progress(tests.size, tests.size)
    exceptions = realised > margin
    expected = 1.0 - config.confidence
    k_lr, k_p = kupiec(int(exceptions.sum()), exceptions.size, expected)
    c_lr, c_p = christoffersen(exceptions)
    recent = exceptions[-TRAFFIC_WINDOW:]
    zone = traffic_light(int(recent.sum()), recent.size, expected)
    positive = margin[margin > 0]
    ratio = peak_to_trough(positive) if positive.size else float("nan")
    return Backtest(dates, margin, realised, exceptions, config.confidence, k_lr, k_p, c_lr, c_p, zone,
                    int(recent.sum()), ratio, step, warnings, method)
