"""Reference data per underlying price series: calendar, return type, term structure.

CSV columns: ``underlying,calendar,returns,carry_rate,term_decay,option_model`` and the
optional ``notional_rate``.

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

from dataclasses import dataclass
from pathlib import Path

from tokenclear.csvfiles import parse_float, read_rows
from tokenclear.errors import InputError

RETURN_TYPES = ("relative", "absolute")
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
        out[name] = Underlying(
            name=name,
            calendar=row["calendar"] or "XNYS",
            returns=row["returns"],
            carry_rate=parse_float(row["carry_rate"], path=path, line=line, field="carry_rate"),
            term_decay=parse_float(row["term_decay"], path=path, line=line, field="term_decay"),
            option_model=row["option_model"],
            notional_rate=None if notional != notional else notional,
        )
    return out


def underlying_spec(specs: dict[str, Underlying], name: str, default_calendar: str) -> Underlying:
    """The spec of ``name``, or relative returns on ``default_calendar`` with no carry."""
    return specs.get(name, Underlying(name=name, calendar=default_calendar))
