"""Reference files of the margin methods (adapter edge): concentration rules, SPAN inter-commodity pairs and the
EMIR margin classes, each validated whole with errors naming the file, line and field. The pure ``margin/``
package receives the parsed values and reads no file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import CLEARING_CLASSES
from tokenclear.margin.addons import VOLUME_UNITS, ConcentrationRule
from tokenclear.margin.classes import MarginClass
from tokenclear.margin.span import InterPair, SpanParameters


def load_concentration(path: Path) -> dict[str, ConcentrationRule]:
    """CSV ``underlying,adv_usd,volume_unit,participation``; blank adv_usd = from volumes."""
    rows = read_rows(path, ["underlying", "adv_usd", "volume_unit", "participation"])
    out: dict[str, ConcentrationRule] = {}
    for line, row in rows:
        name = row["underlying"]
        if name in out:
            raise InputError(f"duplicate underlying '{name}'", path=path, line=line, field="underlying")
        adv = parse_float(row["adv_usd"], path=path, line=line, field="adv_usd", allow_blank=True)
        unit = row["volume_unit"] or None
        if np.isnan(adv) and unit not in VOLUME_UNITS:
            raise InputError(f"give adv_usd or a volume_unit in {VOLUME_UNITS}", path=path, line=line,
                             field="volume_unit")
        participation = parse_float(row["participation"], path=path, line=line, field="participation")
        if not 0 < participation <= 1:
            raise InputError("participation must lie in (0, 1]", path=path, line=line, field="participation")
        out[name] = ConcentrationRule(name, None if np.isnan(adv) else adv, unit, participation)
    return out


def load_pairs(path: Path) -> list[InterPair]:
    """Inter-commodity pairs: CSV ``first,second,ratio_first,ratio_second`` (exposure ratios)."""
    rows = read_rows(path, ["first", "second", "ratio_first", "ratio_second"])
    pairs = []
    for line, row in rows:
        ratios = [parse_float(row[key], path=path, line=line, field=key) for key in ("ratio_first", "ratio_second")]
        if min(ratios) <= 0:
            raise InputError("ratios must be > 0", path=path, line=line, field="ratio_first")
        pairs.append(InterPair(row["first"], row["second"], *ratios))
    return pairs


def load_classes(path: Path) -> dict[str, MarginClass]:
    """CSV ``class,confidence,mpor_days,source``; every clearing class must have a row."""
    path = Path(path)
    out: dict[str, MarginClass] = {}
    for line, row in read_rows(path, ["class", "confidence", "mpor_days", "source"]):
        name = row["class"]
        if name not in CLEARING_CLASSES:
            raise InputError(f"class '{name}' is not one of {', '.join(CLEARING_CLASSES)}", path=path, line=line,
                             field="class")
        if name in out:
            raise InputError(f"duplicate class '{name}'", path=path, line=line, field="class")
        confidence = parse_float(row["confidence"], path=path, line=line, field="confidence")
        if not 0.5 < confidence < 1:
            raise InputError("confidence must lie in (0.5, 1)", path=path, line=line, field="confidence")
        mpor = parse_float(row["mpor_days"], path=path, line=line, field="mpor_days")
        if mpor < 1 or mpor != int(mpor):
            raise InputError("mpor_days must be a whole number >= 1", path=path, line=line, field="mpor_days")
        if not row["source"]:
            raise InputError("a class needs the source of its parameters", path=path, line=line, field="source")
        out[name] = MarginClass(name, confidence, int(mpor), row["source"])
    missing = [name for name in CLEARING_CLASSES if name not in out]
    if missing:
        raise InputError(f"no row for class(es) {', '.join(missing)}", path=path)
    return out


def load_span_parameters(path: Path) -> SpanParameters:
    """SPAN parameters as ``tokenclear params span`` writes them, JSON or CSV (one row per product, the common
    parameters and the inter-commodity pairs in the metadata / the ``#`` preamble)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("{"):
            body = json.loads(text)
            header, rows = body["metadata"], body["rows"]
        else:
            header = {}
            for line in text.splitlines():
                if line.startswith("# ") and ": " in line and not line.startswith("# warning:"):
                    key, value = line[2:].split(": ", 1)
                    header[key] = _preamble_value(value)
            rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    except (json.JSONDecodeError, KeyError) as error:
        raise InputError(f"not a SPAN parameter file of tokenclear: {error}", path=path) from None
    if not rows:
        raise InputError("no product rows", path=path)
    fields = ("product", "returns", "price_scan", "vol_scan", "intra_multiple", "extreme_multiple",
              "extreme_fraction", "lookahead_days")
    for line, row in enumerate(rows, start=2):
        for name in fields:
            if name not in row or row[name] in (None, ""):
                raise InputError(f"missing {name}", path=path, line=line, field=name)

    def number(row: dict, name: str, line: int, kind=float):
        try:
            value = kind(row[name])
        except (TypeError, ValueError):
            raise InputError(f"'{row[name]}' is not a number", path=path, line=line, field=name) from None
        if value < 0:
            raise InputError(f"{name} must be >= 0", path=path, line=line, field=name)
        return value

    lines = list(enumerate(rows, start=2))
    try:
        pairs = [InterPair(**pair) for pair in header.get("pairs", [])]
        return SpanParameters(
            str(header["as_of"]), float(header["coverage"]), int(header["mpor_days"]),
            [row["product"] for row in rows], [row["returns"] for row in rows],
            [number(row, "price_scan", line) for line, row in lines],
            [number(row, "vol_scan", line) for line, row in lines],
            [number(row, "intra_multiple", line) for line, row in lines],
            [number(row, "extreme_multiple", line) for line, row in lines],
            [number(row, "extreme_fraction", line) for line, row in lines],
            [number(row, "lookahead_days", line, int) for line, row in lines],
            float(header.get("spot_multiple", 0.25)), float(header.get("som_multiple", 0.10)),
            int(header.get("spot_month_days", 30)), pairs)
    except (KeyError, TypeError) as error:
        raise InputError(f"missing or bad common parameter {error}", path=path) from None


def _preamble_value(text: str) -> object:
    """A ``# key: value`` preamble value: JSON where it parses (numbers, lists, objects), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
