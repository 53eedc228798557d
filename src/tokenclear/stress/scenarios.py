"""The stress scenario library: data files, not code (schema in docs/stress.md).

``scenarios.csv`` names each scenario (``historical`` with the dates it spans, or ``hypothetical``) with its
description and source; ``shocks.csv`` holds the shocks, one a line: a price move of an underlying (relative or
absolute), a collateral asset taken to a price or moved, a haircut set or scaled, a token frozen, daily volume
scaled (by weekday), price feeds silent or the chain unable to settle for some hours. A historical scenario's
moves come from the shipped closes over its dates (:mod:`tokenclear.stress.history`); its lines in
``shocks.csv`` add to them. Every value is checked on load, naming file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_date, parse_float, read_rows
from tokenclear.errors import InputError

TYPES = ("historical", "hypothetical")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: kind -> the units it takes and the bounds of its value (inclusive; None = unbounded)
KINDS: dict[str, tuple[tuple[str, ...], float | None, float | None]] = {
    "move": (("relative", "absolute"), None, None),
    "collateral_price": (("price",), 0.0, None),
    "collateral_move": (("relative",), -1.0, None),
    "haircut": (("fraction",), 0.0, 1.0),
    "haircut_scale": (("multiplier",), 0.0, None),
    "frozen": (("flag",), 1.0, 1.0),
    "liquidity": (("multiplier",), 0.0, None),
    "feed_outage": (("hours",), 0.0, 24.0 * 7),
    "chain_outage": (("hours",), 0.0, 24.0 * 7),
}


@dataclass(frozen=True)
class Shock:
    kind: str
    target: str  # an underlying (move), a collateral asset, a weekday or "*" (liquidity), a feed or chain, "*"
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Scenario:
    name: str
    type: str
    description: str
    source: str
    start: np.datetime64 | None = None
    end: np.datetime64 | None = None
    shocks: tuple[Shock, ...] = field(default_factory=tuple)
    builds_on: str | None = None  # a scenario whose moves and shocks this one starts from

    def of(self, kind: str) -> list[Shock]:
        return [shock for shock in self.shocks if shock.kind == kind]

    def hours(self, kind: str) -> float:
        """The longest outage of ``kind`` (feed_outage, chain_outage), hours; 0 when none."""
        return max((shock.value for shock in self.of(kind)), default=0.0)


def load_library(folder: Path) -> dict[str, Scenario]:
    """Every scenario of ``folder`` (scenarios.csv and shocks.csv), in file order."""
    scenarios_path, shocks_path = Path(folder) / "scenarios.csv", Path(folder) / "shocks.csv"
    heads: dict[str, dict] = {}
    rows = read_rows(scenarios_path, ["scenario", "type", "builds_on", "start", "end", "description", "source"])
    for line, row in rows:
        name = row["scenario"].strip()
        if not name or name == "all" or "," in name:
            raise InputError(f"'{name}' is not a scenario name", path=scenarios_path, line=line, field="scenario")
        if name in heads:
            raise InputError(f"duplicate scenario '{name}'", path=scenarios_path, line=line, field="scenario")
        if row["type"] not in TYPES:
            raise InputError(f"type '{row['type']}' is not one of {', '.join(TYPES)}", path=scenarios_path,
                             line=line, field="type")
        start = parse_date(row["start"], path=scenarios_path, line=line, field="start", allow_blank=True)
        end = parse_date(row["end"], path=scenarios_path, line=line, field="end", allow_blank=True)
        if row["type"] == "historical" and (start is None or end is None or end < start):
            raise InputError("a historical scenario needs start <= end", path=scenarios_path, line=line,
                             field="end" if start is not None else "start")
        if row["type"] == "hypothetical" and (start is not None or end is not None):
            raise InputError("a hypothetical scenario spans no dates: leave start and end blank",
                             path=scenarios_path, line=line, field="start")
        if not row["source"].strip():
            raise InputError("every scenario states its source", path=scenarios_path, line=line, field="source")
        heads[name] = {"name": name, "type": row["type"], "description": row["description"],
                       "source": row["source"], "start": start, "end": end, "shocks": [],
                       "builds_on": row["builds_on"].strip() or None}
    for line, row in rows:  # a base must be a scenario of the file that builds on none itself
        base = heads[row["scenario"].strip()]["builds_on"]
        if base is not None and (base not in heads or heads[base]["builds_on"] is not None):
            raise InputError(f"'{base}' is not a scenario that builds on none", path=scenarios_path, line=line,
                             field="builds_on")
    for line, row in read_rows(shocks_path, ["scenario", "kind", "target", "value", "unit", "source"]):
        where = {"path": shocks_path, "line": line}
        if row["scenario"] not in heads:
            raise InputError(f"unknown scenario '{row['scenario']}' (not in {scenarios_path.name})", **where,
                             field="scenario")
        if row["kind"] not in KINDS:
            raise InputError(f"kind '{row['kind']}' is not one of {', '.join(KINDS)}", **where, field="kind")
        units, low, high = KINDS[row["kind"]]
        if row["unit"] not in units:
            raise InputError(f"a {row['kind']} shock is in {' or '.join(units)}, not '{row['unit']}'", **where,
                             field="unit")
        value = parse_float(row["value"], field="value", **where)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(f"{value:g} is outside [{low if low is not None else '-inf'}, "
                             f"{high if high is not None else 'inf'}] for a {row['kind']} shock", **where,
                             field="value")
        target = row["target"].strip()
        if not target or (row["kind"] == "liquidity" and target not in (*WEEKDAYS, "*")):
            wanted = "a weekday (mon..sun) or *" if row["kind"] == "liquidity" else "named"
            raise InputError(f"target '{target}' is not {wanted}", **where, field="target")
        if not row["source"].strip():
            raise InputError("every shock states its source", **where, field="source")
        heads[row["scenario"]]["shocks"].append(Shock(row["kind"], target, value, row["unit"], row["source"]))
    return {name: Scenario(**{**head, "shocks": tuple(head["shocks"])}) for name, head in heads.items()}


def select(library: dict[str, Scenario], names: str) -> list[Scenario]:
    """``all`` or a comma-separated list of scenario names."""
    if names.strip() == "all":
        return list(library.values())
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in library]
    if unknown or not chosen:
        raise InputError(f"unknown scenario {', '.join(unknown) or '(none)'}; choose all or some of "
                         f"{', '.join(library)}", field="--scenarios")
    return [library[name] for name in dict.fromkeys(chosen)]
