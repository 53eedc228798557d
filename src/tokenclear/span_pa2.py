"""CME SPAN risk-parameter files in the expanded unpacked positional format (``.pa2``, file format ``U2``):
read whole and strictly, every error naming the file, line and field (adapter edge; the margin itself is the
pure :mod:`tokenclear.margin.span_arrays`).

Record types read (layouts: CME Group, "SPAN Risk Parameter File Layouts for the Positional Formats",
expanded format; ``docs/span-files.md`` lists each field and where its layout comes from):

``0`` exchange complex header, ``1`` exchange header, ``2`` combined commodity (its products, currency,
option style, risk-array decimal locator), ``3`` intra-commodity tiers (method 10), ``C`` tier-to-tier
intra-commodity spreads, ``4`` delivery charges (method 10) and short option minimum, ``6`` inter-commodity
spreads (delta-based), ``81``/``82`` risk arrays (16 values, composite delta, settlement), ``B`` delta scaling
factors, ``P`` price conversion (settlement and strike decimals, contract value factor), ``S`` scanning tiers.
``5`` (commodity groups) and ``T`` (currency rates) are read past: the margin needs neither. Any other record
type present is named in the run's notes, with what it would change.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tokenclear.errors import InputError
from tokenclear.margin.span_arrays import (
    SCENARIOS,
    Commodity,
    Contract,
    DeliveryMonth,
    InterSpread,
    IntraSpread,
    RiskFile,
    Tier,
)

RECORD_LENGTH = 132
IGNORED = {"5": "commodity groups (not needed: spreads name their commodities)",
           "T": "currency conversion rates (a book in one currency needs none)"}
NOT_READ = {"E": "series-to-series intra-commodity spreads (their charges are not added)",
            "V": "daily adjustment / value maintenance rates", "X": "combination margining method",
            "Y": "options on combinations", "Z": "combination underlying legs",
            "R": "product redefinitions", "9": "debt securities"}


def is_pa2(path: Path) -> bool:
    """Whether ``path`` starts like a positional SPAN file (a type 0 or 1 record)."""
    with Path(path).open("rb") as handle:
        head = handle.read(2)
    return head in (b"0 ", b"1 ")


class _Line:
    """One record, padded to 132 columns; ``field`` reads columns ``start``..``end`` (1-based, inclusive)."""

    def __init__(self, path: Path, number: int, text: str) -> None:
        self.path, self.lineno = path, number
        if len(text) > RECORD_LENGTH:
            raise InputError(f"record is {len(text)} characters, longer than {RECORD_LENGTH}", path=path,
                             line=number)
        self.text = text.ljust(RECORD_LENGTH)

    def error(self, message: str, name: str) -> InputError:
        return InputError(message, path=self.path, line=self.lineno, field=name)

    def text_at(self, start: int, end: int) -> str:
        return self.text[start - 1:end].strip()

    def integer(self, start: int, end: int, name: str, *, blank: int | None = None) -> int:
        raw = self.text[start - 1:end]
        if not raw.strip() and blank is not None:
            return blank
        if not raw.isdigit():
            raise self.error(f"'{raw}' in columns {start}-{end} is not a number", name)
        return int(raw)

    def number(self, start: int, end: int, name: str, decimals: int = 0, *, sign: int | None = None,
               blank: Decimal | None = None) -> Decimal:
        """Digits ``start..end`` with ``decimals`` implied decimals; ``sign``: the column of '+'/'-'."""
        raw = self.text[start - 1:end]
        if not raw.strip() and blank is not None:
            return blank
        if not raw.isdigit():
            raise self.error(f"'{raw}' in columns {start}-{end} is not a number", name)
        value = Decimal(int(raw)).scaleb(-decimals)
        if sign is not None:
            mark = self.text[sign - 1]
            if mark not in "+- ":
                raise self.error(f"sign '{mark}' in column {sign} is not + or -", name)
            value = -value if mark == "-" else value
        return value

    def month(self, start: int, name: str, *, blank: bool = False) -> str | None:
        raw = self.text[start - 1:start + 5]
        if blank and (not raw.strip() or raw == "000000"):
            return None
        if not raw.isdigit() or not 1 <= int(raw[4:]) <= 12:
            raise self.error(f"'{raw}' in columns {start}-{start + 5} is not a month CCYYMM", name)
        return raw


@dataclass
class _Product:
    commodity: str
    kind: str
    decimals: int  # risk-array value decimal locator


@dataclass
class _Prices:
    settlement_decimals: int = 0
    strike_decimals: int = 0
    value_factor: Decimal | None = None


@dataclass
class _State:
    header: dict[str, str] = field(default_factory=dict)
    products: dict[tuple[str, str, str], _Product] = field(default_factory=dict)  # (exchange, product, kind)
    commodities: dict[str, dict] = field(default_factory=dict)
    prices: dict[tuple[str, str, str], _Prices] = field(default_factory=dict)
    scaling: dict[tuple, Decimal] = field(default_factory=dict)
    first: dict[tuple, tuple[_Line, list[Decimal]]] = field(default_factory=dict)  # 81 records by contract key
    contracts: list[tuple[_Line, dict]] = field(default_factory=list)
    inter: list[InterSpread] = field(default_factory=list)
    present: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def read_risk_file(path: Path) -> RiskFile:
    """The whole file parsed, or an :class:`InputError` naming the line and field at fault."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"not a positional SPAN file: byte {error.start} is not ASCII", path=path) from None
    state = _State()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        line = _Line(path, number, text)
        kind = "81" if text.startswith("81") else "82" if text.startswith("82") else text[:2].rstrip()
        reader = _READERS.get(kind)
        if reader is not None:
            reader(state, line)
        elif kind in IGNORED:
            continue
        elif kind in NOT_READ:
            state.present.add(kind)
        else:
            raise line.error(f"unknown record type '{text[:2]}'", "record id")
    if "format" not in state.header:
        raise InputError("no type 0 (exchange complex header) record: not an expanded-format SPAN file", path=path)
    if state.first:
        line, _ = next(iter(state.first.values()))
        raise line.error("type 81 record without its type 82 record", "record id")
    notes = state.notes + [f"record type {kind} not read: {NOT_READ[kind]}" for kind in sorted(state.present)]
    return RiskFile(state.header["complex"], state.header["date"], state.header["flag"] == "S",
                    state.header["format"], _contracts(state), _commodities(state), state.inter, notes)


def _header(state: _State, line: _Line) -> None:
    if state.header:
        raise line.error("a second type 0 record", "record id")
    fmt = line.text_at(36, 37)
    if fmt != "U2":
        raise line.error(f"file format '{fmt}': only the expanded unpacked format (U2) is read", "file format")
    raw = line.text_at(9, 16)
    try:
        date = dt.datetime.strptime(raw, "%Y%m%d").date().isoformat()
    except ValueError:
        raise line.error(f"business date '{raw}' is not CCYYMMDD", "business date") from None
    flag = line.text_at(17, 17)
    if flag not in ("S", "I"):
        raise line.error(f"settlement/intraday flag '{flag}' is not S or I", "settlement or intraday flag")
    state.header = {"complex": line.text_at(3, 8), "date": date, "flag": flag, "format": fmt}


def _exchange(state: _State, line: _Line) -> None:
    if not line.text_at(3, 5):
        raise line.error("blank exchange acronym", "exchange acronym")


def _combined(state: _State, line: _Line) -> None:
    exchange, code = line.text_at(3, 5), line.text_at(7, 12)
    if not code:
        raise line.error("blank combined commodity code", "combined commodity code")
    if line.integer(13, 13, "risk exponent", blank=0) != 0:
        raise line.error("a risk exponent other than 0 is not supported", "risk exponent")
    style = line.text_at(18, 18) or "P"
    if style not in ("P", "F"):
        raise line.error(f"option margin style '{style}' is not P or F", "option margin style")
    state.commodities.setdefault(code, {"exchange": exchange, "currency": line.text_at(14, 16),
                                                "premium": style == "P", "intra": [], "spreads": [],
                                                "scan": [], "delivery": [], "som": (0.0, True)})
    for start in range(23, 119, 16):  # up to six products a record
        product = line.text_at(start, start + 9)
        if not product:
            continue
        kind = line.text_at(start + 10, start + 12)
        decimals = line.integer(start + 13, start + 13, "risk array value decimal locator", blank=0)
        if line.text_at(start + 14, start + 14) == "-":
            raise line.error("a negative risk-array decimal locator is not supported", "risk array decimal sign")
        key = (exchange, product, kind)
        if key in state.products and state.products[key].commodity != code:
            raise line.error(f"product {product} {kind} already in combined commodity "
                             f"{state.products[key].commodity}", "commodity code")
        state.products[key] = _Product(code, kind, decimals)


def _tiers(line: _Line, start: int, count: int, name: str) -> list[Tier]:
    tiers = []
    for i in range(count):
        at = start + 14 * i
        if not line.text[at - 1:at + 13].strip():
            continue
        number = line.integer(at, at + 1, f"{name} {i + 1} tier number")
        first, last = line.month(at + 2, f"{name} {i + 1} starting month"), line.month(at + 8, f"{name} {i + 1} "
                                                                                          "ending month")
        if last < first:
            raise line.error(f"tier {number} ends ({last}) before it starts ({first})", f"{name} {i + 1} ending month")
        tiers.append(Tier(number, first, last))
    return tiers


def _commodity(state: _State, line: _Line, code: str) -> dict:
    if code not in state.commodities:
        raise line.error(f"combined commodity '{code}' has no type 2 record before this one",
                         "combined commodity code")
    return state.commodities[code]


def _intra_tiers(state: _State, line: _Line) -> None:
    entry = _commodity(state, line, line.text_at(3, 8))
    method = line.text_at(9, 10)
    if method != "10":
        raise line.error(f"intra-commodity spread method '{method}': only 10 (tiered, type C spreads) is read",
                         "intracommodity spread charge method code")
    entry["intra"] += _tiers(line, 11, 4, "tier")


def _intra_spread(state: _State, line: _Line) -> None:
    entry = _commodity(state, line, line.text_at(3, 8))
    priority = line.integer(11, 12, "spread priority")
    count = line.integer(13, 14, "number of legs")
    if not 2 <= count <= 8:
        raise line.error(f"{count} legs: a spread has 2 to 8", "number of legs")
    rate = line.number(15, 21, "charge rate")
    legs = []
    for i in range(count):
        at = 22 + 7 * i
        ratio = line.integer(at + 4, at + 5, f"leg {i + 1} delta per spread ratio")
        side = line.text_at(at + 6, at + 6)
        if side not in ("A", "B") or ratio <= 0:
            raise line.error(f"leg {i + 1}: side '{side}' (A or B) and ratio {ratio} (> 0)", f"leg {i + 1} side")
        legs.append((line.integer(at, at + 1, f"leg {i + 1} tier number"), float(ratio), side))
    entry["spreads"].append((line, IntraSpread(priority, float(rate), tuple(legs))))


def _delivery_som(state: _State, line: _Line) -> None:
    entry = _commodity(state, line, line.text_at(3, 8))
    method = line.text_at(9, 10)
    if method == "10":
        for i in range(line.integer(11, 12, "number of contract months in delivery", blank=0)):
            at = 13 + 22 * i
            if i > 1:
                raise line.error("more than two delivery months", "number of contract months in delivery")
            month = line.month(at + 2, f"delivery month {i + 1} contract month")
            entry["delivery"].append((line, DeliveryMonth(
                month, float(line.number(at + 8, at + 14, f"delivery month {i + 1} charge rate per delta consumed")),
                float(line.number(at + 15, at + 21, f"delivery month {i + 1} charge rate per delta remaining")))))
    elif method not in ("", "00"):
        raise line.error(f"delivery charge method '{method}': only 10 (table-driven) is read",
                         "delivery (spot) charge method code")
    rate = line.number(63, 69, "short option minimum charge rate", blank=Decimal(0))
    way = line.text_at(79, 79)
    entry["som"] = (float(rate), way == "1")


def _inter_spread(state: _State, line: _Line) -> None:
    method = line.text_at(89, 90)
    priority = line.integer(6, 9, "spread priority")
    rate = line.number(10, 16, "spread credit rate", 4) / 100
    legs = []
    for i in range(4):
        at = 17 + 18 * i
        code = line.text_at(at + 4, at + 9)
        if not code:
            continue
        ratio = line.number(at + 10, at + 16, f"delta/spread ratio leg {i + 1}", 4)
        side = line.text_at(at + 17, at + 17)
        if side not in ("A", "B") or ratio <= 0:
            raise line.error(f"leg {i + 1}: side '{side}' (A or B) and ratio {ratio} (> 0)",
                             f"spread side leg {i + 1}")
        legs.append((code, float(ratio), side))
    tiered = any(line.text_at(102 + 2 * i, 103 + 2 * i).strip("0") for i in range(4))
    credit_method = line.text_at(101, 101) or "W"
    skip = ("scanning-based (method 04)" if method == "04" else "tiered (legs name tiers)" if tiered else
            f"flat-rate credit '{credit_method}'" if credit_method != "W" else None)
    if skip is not None:
        state.notes.append(f"inter-commodity spread line {line.lineno} (priority {priority}) not applied: {skip} "
                           "spreads are not read, so no credit is taken for it (a higher requirement)")
        return
    if len(legs) < 2:
        raise line.error("an inter-commodity spread needs two legs", "combined commodity code leg 2")
    state.inter.append(InterSpread(priority, float(rate), tuple(legs), line.lineno))


def _scan_tiers(state: _State, line: _Line) -> None:
    entry = _commodity(state, line, line.text_at(3, 8))
    method = line.text_at(9, 10)
    count = line.integer(11, 12, "number of tiers")
    if method in ("10", "21", "22"):
        entry["scan"] += _tiers(line, 13, min(count, 8), "tier")
    elif method in ("20", "23"):
        pass  # inter-commodity tiers: only tiered inter spreads use them, and those are not applied (noted)
    elif method not in ("01",):
        raise line.error(f"scanning method '{method}' is not read", "scanning method code")


def _price_conversion(state: _State, line: _Line) -> None:
    key = (line.text_at(3, 5), line.text_at(6, 15), line.text_at(16, 18))
    if line.integer(73, 75, "contract value factor exponent", blank=0) != 0:
        raise line.error("a contract value factor exponent other than 0 is not supported",
                         "contract value factor exponent")
    state.prices[key] = _Prices(line.integer(34, 36, "settlement price decimal locator", blank=0),
                                line.integer(37, 39, "strike price decimal locator", blank=0),
                                line.number(42, 55, "contract value factor", 7))


def _scaling(state: _State, line: _Line) -> None:
    key = (line.text_at(3, 5), line.text_at(6, 15), line.text_at(16, 18), line.text_at(19, 24),
           line.text_at(28, 33).strip("0"))
    state.scaling[key] = line.number(86, 91, "delta scaling factor", 4)


def _contract_key(line: _Line) -> tuple:
    return (line.text_at(3, 5), line.text_at(6, 15), line.text_at(26, 28), line.text_at(29, 29),
            line.text_at(30, 35), line.text_at(36, 37), line.text_at(39, 44), line.text_at(45, 46),
            line.text_at(48, 54))


def _arrays(line: _Line, first: int, count: int, offset: int) -> list[Decimal]:
    return [line.number(first + 6 * i, first + 6 * i + 4, f"array value {offset + i}", sign=first + 6 * i + 5)
            for i in range(count)]


def _risk_first(state: _State, line: _Line) -> None:
    key = _contract_key(line)
    if state.first:
        other, _ = next(iter(state.first.values()))
        raise other.error("type 81 record without its type 82 record", "record id")
    state.first[key] = (line, _arrays(line, 55, 9, 1))


def _risk_second(state: _State, line: _Line) -> None:
    key = _contract_key(line)
    if key not in state.first:
        raise line.error("type 82 record without the type 81 record of the same contract before it", "record id")
    first, values = state.first.pop(key)
    values = values + _arrays(line, 55, 7, 10)
    state.contracts.append((first, {
        "key": key, "values": values, "delta": line.number(97, 101, "composite delta", 4, sign=102),
        "settlement": line.number(111, 117, "settlement price", sign=118)}))


def _contracts(state: _State) -> list[Contract]:
    out, seen = [], {}
    for line, record in state.contracts:
        exchange, product, kind, put_call, month, _, option_month, _, strike_text = record["key"]
        if record["key"] in seen:
            raise line.error(f"contract repeats the one on line {seen[record['key']]}", "commodity code")
        seen[record["key"]] = line.lineno
        info = state.products.get((exchange, product, kind))
        if info is None:
            raise line.error(f"product {exchange} {product} {kind} is in no combined commodity (type 2 record)",
                             "commodity code")
        option = kind.startswith("OO")
        if option and put_call not in ("P", "C"):
            raise line.error(f"option right '{put_call}' is not P or C", "option right code")
        if not month.isdigit():
            raise line.error(f"futures contract month '{month}' is not CCYYMM", "futures contract month")
        prices = state.prices.get((exchange, product, kind))
        strike = None
        value = 0.0
        if option:
            if prices is None:
                raise line.error(f"option {exchange} {product} {kind} has no type P record (its strike and "
                                 "settlement decimals and contract value factor)", "commodity code")
            strike = Decimal(int(strike_text)).scaleb(-prices.strike_decimals)
            settlement = record["settlement"].scaleb(-prices.settlement_decimals)
            if state.commodities[info.commodity]["premium"]:
                value = float(settlement * prices.value_factor)
        scale = 10 ** -info.decimals
        arrays = tuple(float(v) * scale for v in record["values"])
        dsf = state.scaling.get((exchange, product, kind, month, option_month.strip("0") if option else ""),
                                Decimal(1))
        out.append(Contract(exchange, product, kind, put_call or None, month, option_month if option else month,
                            strike, info.commodity, arrays, float(record["delta"] * dsf), value, line.lineno))
    assert all(len(c.arrays) == SCENARIOS for c in out)
    return out


def _commodities(state: _State) -> dict[str, Commodity]:
    out = {}
    for code, entry in state.commodities.items():
        numbers = {t.number for t in entry["intra"]}
        for line, spread in entry["spreads"]:
            for number, _, _ in spread.legs:
                if number not in numbers:
                    raise line.error(f"tier {number} is not an intra-commodity tier of {code} (type 3 records)",
                                     "leg tier number")
        for line, month in entry["delivery"]:
            alone = [t for t in entry["intra"] if t.start <= month.month <= t.end]
            if alone and not (alone[0].start == alone[0].end == month.month):
                raise line.error(f"delivery month {month.month} shares intra tier {alone[0].number} with other "
                                 "months: its delta consumed by spreads is not known apart", "contract month")
        out[code] = Commodity(code, entry["exchange"], entry["currency"], entry["premium"], entry["intra"],
                              [s for _, s in entry["spreads"]], entry["scan"], [m for _, m in entry["delivery"]],
                              *entry["som"])
    return out


_READERS = {"0": _header, "1": _exchange, "2": _combined, "3": _intra_tiers, "C": _intra_spread, "4": _delivery_som,
            "6": _inter_spread, "S": _scan_tiers, "P": _price_conversion, "B": _scaling, "81": _risk_first,
            "82": _risk_second}


def resolver(file: RiskFile, path: Path):
    """A resolver of the rows of the positions file ``path`` (for :func:`tokenclear.book.positions.read_entries`)
    naming each row's contract of ``file`` and checking its month lies in its commodity's tiers; and the map of
    the names it gave to their contracts."""
    from tokenclear.book.positions import one_match, symbol_key

    index: dict[tuple, list[Contract]] = defaultdict(list)
    for contract in file.contracts:
        index[(contract.exchange, contract.product, contract.expiry, contract.put_call, contract.strike)].append(
            contract)
    by_name: dict[str, Contract] = {}

    def resolve(row: dict[str, str], by_symbol: bool, line: int) -> str:
        key = symbol_key(row, path, line)
        found = index.get(key, [])
        name = one_match([c.name for c in found], row, f"in the SPAN file of {file.business_date}", path, line)
        contract = found[0]
        commodity = file.commodities[contract.commodity]
        for tiers, what in ((commodity.intra_tiers, "intra-commodity"), (commodity.scan_tiers, "scanning")):
            if tiers and not any(t.start <= contract.month <= t.end for t in tiers):
                raise InputError(f"{name}: month {contract.month} is in no {what} tier of {contract.commodity} "
                                 "in the SPAN file", path=path, line=line, field="expiry")
        by_name[name] = contract
        return name

    return resolve, by_name

