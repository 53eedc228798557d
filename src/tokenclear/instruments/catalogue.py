"""Instrument catalogue: what a contract is (product), resolved against reference data.

CSV columns: ``instrument,kind,underlying,multiplier,currency,expiry,strike,option_type``
and optionally ``volatility`` (annualised implied volatility of an option: a fraction for
Black-76, price units for Bachelier; blank = the underlying's EWMA volatility) and
``premium_style`` of an option: ``paid`` (premium paid up front, equity style, as CME's
options on futures: no variation margin; the net option value is credited for longs and
charged for shorts in initial margin) or ``futures`` (futures-style, as Eurex's options
on futures: daily variation margin on the option's settlement price, no net option
value). A blank premium_style on an option means ``paid``. Optional ``clearing_class``:
``listed`` (blank) or ``otc``, the EMIR instrument class whose confidence and MPOR apply
(``data/margin_classes.csv``). Optional ``exchange`` and ``product_code``: the exchange's symbology, by
which a positions file can name a contract (exchange, product code, expiry month, put/call, strike)
instead of by ``instrument``; an option carries the product code of its future.

Kinds: ``future`` (one row per contract month, expiry required), ``perpetual`` (no
expiry), ``option`` (on the future of the same underlying and expiry; strike and
option_type ``call``/``put`` required).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from tokenclear.csvfiles import parse_date, parse_decimal, parse_float, read_rows
from tokenclear.errors import InputError

KINDS = ("future", "perpetual", "option")
PREMIUM_STYLES = ("paid", "futures")
CLEARING_CLASSES = ("listed", "otc")
#: Contract sizes in use run from 0.001 (crypto micros) to 12,500,000 (CME yen): beyond these, a unit error.
MIN_MULTIPLIER, MAX_MULTIPLIER = Decimal("1e-9"), Decimal("1e9")
COLUMNS = ("instrument", "kind", "underlying", "multiplier", "currency", "expiry", "strike", "option_type")


@dataclass(frozen=True)
class Instrument:
    instrument: str
    kind: str
    underlying: str
    multiplier: Decimal
    currency: str
    expiry: np.datetime64 | None = None
    strike: float | None = None
    option_type: str | None = None
    volatility: float | None = None
    premium_style: str | None = None  # options only: "paid" or "futures"
    clearing_class: str = "listed"  # EMIR class: "listed" or "otc"
    exchange: str | None = None  # exchange symbology (optional): the exchange's code, e.g. CME
    product_code: str | None = None  # and its product (contract) code, e.g. BTC, ES, 6E

    @property
    def is_option(self) -> bool:
        return self.kind == "option"

    @property
    def premium_paid(self) -> bool:
        """An option whose premium is paid up front (no VM; net option value in initial margin)."""
        return self.is_option and self.premium_style != "futures"


@dataclass(frozen=True)
class Catalogue:
    """Instruments by name, in file order."""

    instruments: dict[str, Instrument]
    source: str = "<memory>"

    def __getitem__(self, name: str) -> Instrument:
        return self.instruments[name]

    def __contains__(self, name: object) -> bool:
        return name in self.instruments

    def select(self, names: list[str]) -> list[Instrument]:
        return [self.instruments[name] for name in names]


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a catalogue file; any bad row fails the whole file."""
    path = Path(path)
    rows = read_rows(path, COLUMNS)
    instruments: dict[str, Instrument] = {}
    for line, row in rows:
        name = row["instrument"]
        if not name:
            raise InputError("instrument name is blank", path=path, line=line, field="instrument")
        if name in instruments:
            raise InputError(f"duplicate instrument '{name}'", path=path, line=line, field="instrument")
        kind = row["kind"].lower()
        if kind not in KINDS:
            raise InputError(f"kind '{row['kind']}' is not one of {', '.join(KINDS)}", path=path, line=line,
                             field="kind")
        if not row["underlying"]:
            raise InputError("underlying is blank", path=path, line=line, field="underlying")
        multiplier = parse_decimal(row["multiplier"], path=path, line=line, field="multiplier")
        if not MIN_MULTIPLIER <= multiplier <= MAX_MULTIPLIER:
            raise InputError(f"multiplier {multiplier} must lie in [{MIN_MULTIPLIER}, {MAX_MULTIPLIER}]", path=path,
                             line=line, field="multiplier")
        currency = row["currency"].upper()
        if len(currency) != 3 or not currency.isalpha():
            raise InputError(f"currency '{row['currency']}' is not an ISO 4217 code", path=path, line=line,
                             field="currency")
        expiry = parse_date(row["expiry"], path=path, line=line, field="expiry", allow_blank=True)
        strike = option_type = volatility = premium_style = None
        style_text = row.get("premium_style", "").lower()
        if kind in ("future", "option") and expiry is None:
            raise InputError(f"a {kind} needs an expiry", path=path, line=line, field="expiry")
        if kind == "perpetual" and expiry is not None:
            raise InputError("a perpetual has no expiry", path=path, line=line, field="expiry")
        if kind == "option":
            strike = parse_float(row["strike"], path=path, line=line, field="strike")
            option_type = row["option_type"].lower()
            if option_type not in ("call", "put"):
                raise InputError(f"option_type '{row['option_type']}' is not call or put", path=path, line=line,
                                 field="option_type")
            premium_style = style_text or "paid"
            if premium_style not in PREMIUM_STYLES:
                raise InputError(f"premium_style '{style_text}' is not one of {', '.join(PREMIUM_STYLES)}", path=path,
                                 line=line, field="premium_style")
            vol_text = row.get("volatility", "")
            if vol_text:
                volatility = parse_float(vol_text, path=path, line=line, field="volatility")
                if volatility <= 0:
                    raise InputError("volatility must be > 0", path=path, line=line, field="volatility")
        elif row["strike"] or row["option_type"] or style_text:
            field = "strike" if row["strike"] else "option_type" if row["option_type"] else "premium_style"
            raise InputError(f"a {kind} has no strike, option_type or premium_style", path=path, line=line,
                             field=field)
        clearing_class = row.get("clearing_class", "").lower() or "listed"
        if clearing_class not in CLEARING_CLASSES:
            raise InputError(f"clearing_class '{row['clearing_class']}' is not one of {', '.join(CLEARING_CLASSES)}",
                             path=path, line=line, field="clearing_class")
        instruments[name] = Instrument(name, kind, row["underlying"], multiplier, currency, expiry, strike,
                                       option_type, volatility, premium_style, clearing_class,
                                       row.get("exchange", "").upper() or None,
                                       row.get("product_code", "").upper() or None)
    return Catalogue(instruments, source=str(path))
