"""Reference data per underlying price series: calendar, return type, term structure.

CSV columns: ``underlying,calendar,returns,carry_rate,term_decay,option_model`` and the
optional ``notional_rate``, ``span_extreme_multiple``, ``span_extreme_fraction`` and
``span_lookahead_days`` (SPAN's per-product parameters; blank = the defaults below), and
``stress_proxy`` and ``stress_beta``: a long-history series (itself a row of the file) whose
moves stand in for this one's in a stressed period before its own history begins, scaled
by ``stress_beta`` (blank: the ratio of the two series' daily volatilities).

Term-structure rule (how contract months of one underlying get their own scenario
series from the spot series ``S``), for a contract with ``tau`` years to expiry:

* price today ``F0 = S0 * exp(carry_rate * tau)`` (relative returns; carry as a
  continuously compounded yearly rate, e.g. the crypto futures basis) or
  ``F0 = S0 + carry_rate * tau`` (absolute returns; carry in price units per year);
* scenario move ``F = F0 * (1 + beta * r)`` or ``F = F0 + beta * d`` with
  ``beta = exp(-term_decay * tau)``: the Samuelson effect, far months move less than
  near months (``term_decay`` per year; 0 for financial futures).

So months differ in margin through their price level (carry) and their sensitivity
(beta), the way JSCC's HS-VaR gives each contract month its own margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tokenclear.csvfiles import parse_float, read_rows
from tokenclear.errors import InputError

RETURN_TYPES = ("relative", "absolute")
#: SPAN's extreme scenarios (15 and 16) move this multiple of the price scan range and count this
#: fraction of the loss: 2x at 35% (70% of the range, so a plain future is charged its scan range),
#: as in CME's S&P 500 risk array and the textbook table; CME advisories also show 3x at 33%.
SPAN_EXTREME_MULTIPLE = 2.0
SPAN_EXTREME_FRACTION = 0.35
#: SPAN's look-ahead time (option decay in the risk array), in the product's own sessions: CME, one day.
SPAN_LOOKAHEAD_DAYS = 1
OPTION_MODELS = ("black76", "bachelier")


@dataclass(frozen=True)
class Underlying:
    name: str
    calendar: str = "XNYS"
    returns: str = "relative"
    carry_rate: float = 0.0
    term_decay: float = 0.0
    option_model: str = "black76"
    notional_rate: float | None = None  # fraction of notional for the percentage-of-notional method
    span_extreme_multiple: float = SPAN_EXTREME_MULTIPLE
    span_extreme_fraction: float = SPAN_EXTREME_FRACTION
    span_lookahead_days: int = SPAN_LOOKAHEAD_DAYS
    stress_proxy: str | None = None
    stress_beta: float | None = None  # None = the ratio of daily volatilities


def load_underlyings(path: Path) -> dict[str, Underlying]:
    path = Path(path)
    rows = read_rows(path, ["underlying", "calendar", "returns", "carry_rate", "term_decay", "option_model"])
    out: dict[str, Underlying] = {}
    for line, row in rows:
        name = row["underlying"]
        if name in out:
            raise InputError(f"duplicate underlying '{name}'", path=path, line=line, field="underlying")
        if row["returns"] not in RETURN_TYPES:
            raise InputError(f"returns '{row['returns']}' is not one of {', '.join(RETURN_TYPES)}", path=path,
                             line=line, field="returns")
        if row["option_model"] not in OPTION_MODELS:
            raise InputError(f"option_model '{row['option_model']}' is not one of {', '.join(OPTION_MODELS)}",
                             path=path, line=line, field="option_model")
        notional = parse_float(row.get("notional_rate", ""), path=path, line=line, field="notional_rate",
                               allow_blank=True)
        multiple = parse_float(row.get("span_extreme_multiple", ""), path=path, line=line,
                               field="span_extreme_multiple", allow_blank=True)
        fraction = parse_float(row.get("span_extreme_fraction", ""), path=path, line=line,
                               field="span_extreme_fraction", allow_blank=True)
        lookahead = parse_float(row.get("span_lookahead_days", ""), path=path, line=line,
                                field="span_lookahead_days", allow_blank=True)
        multiple = SPAN_EXTREME_MULTIPLE if math.isnan(multiple) else multiple
        fraction = SPAN_EXTREME_FRACTION if math.isnan(fraction) else fraction
        lookahead = SPAN_LOOKAHEAD_DAYS if math.isnan(lookahead) else lookahead
        if multiple < 1:
            raise InputError("span_extreme_multiple must be >= 1 (a multiple of the scan range)", path=path,
                             line=line, field="span_extreme_multiple")
        if not 0 < fraction <= 1:
            raise InputError("span_extreme_fraction must lie in (0, 1]", path=path, line=line,
                             field="span_extreme_fraction")
        beta = parse_float(row.get("stress_beta", ""), path=path, line=line, field="stress_beta", allow_blank=True)
        if not math.isnan(beta) and beta <= 0:
            raise InputError("stress_beta must be > 0", path=path, line=line, field="stress_beta")
        if lookahead < 0 or lookahead != int(lookahead):
            raise InputError("span_lookahead_days must be a whole number of sessions >= 0", path=path, line=line,
                             field="span_lookahead_days")
        out[name] = Underlying(
            name=name,
            calendar=row["calendar"] or "XNYS",
            returns=row["returns"],
            carry_rate=parse_float(row["carry_rate"], path=path, line=line, field="carry_rate"),
            term_decay=parse_float(row["term_decay"], path=path, line=line, field="term_decay"),
            option_model=row["option_model"],
            notional_rate=None if math.isnan(notional) else notional,
            span_extreme_multiple=multiple,
            span_extreme_fraction=fraction,
            span_lookahead_days=int(lookahead),
            stress_proxy=row.get("stress_proxy") or None,
            stress_beta=None if math.isnan(beta) else beta,
        )
    lines = {name: line for line, row in rows for name in [row["underlying"]]}
    for name, spec in out.items():
        if spec.stress_proxy is not None and spec.stress_proxy not in out:
            raise InputError(f"stress_proxy '{spec.stress_proxy}' is not a row of this file", path=path,
                             line=lines[name], field="stress_proxy")
    return out


def underlying_spec(specs: dict[str, Underlying], name: str, default_calendar: str) -> Underlying:
    """The spec of ``name``, or relative returns on ``default_calendar`` with no carry."""
    return specs.get(name, Underlying(name=name, calendar=default_calendar))
