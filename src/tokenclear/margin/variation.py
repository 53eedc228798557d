"""Variation margin: mark-to-market P&L between two valuation times, exact.

Per futures, perpetual or futures-style option contract: ``multiplier x (settlement_1 -
settlement_0)`` in the contract's currency; per account ``VM = -sum quantity x that``
(> 0 owed by the member, < 0 paid to it), each contract's variation taken to the cent first, so the
VM of a matched book sums to zero exactly. Settlement prices are ``Decimal``; a contract
month's settlement is its term-structure price
(:func:`~tokenclear.margin.valuation.forward_price`) rounded to ``SETTLEMENT_PLACES``
decimals, or an exchange settlement price where one is given. A futures-style option
(Eurex style) settles at its model premium on that futures settlement (Black-76 or
Bachelier, the catalogue's implied volatility, undiscounted), rounded the same way; a
premium-paid option (CME style) carries no VM: its value enters initial margin as the
net option value. Arithmetic is in integer cents (numpy object arrays of Python ints), so no
cent is lost for any book size.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from tokenclear.book.positions import Book
from tokenclear.errors import MarketDataError
from tokenclear.instruments.catalogue import Catalogue
from tokenclear.instruments.pricing import option_value
from tokenclear.instruments.underlyings import Underlying, underlying_spec
from tokenclear.market.history import MarketData
from tokenclear.money import CENT

SETTLEMENT_PLACES = 6


@dataclass(frozen=True)
class VariationMargin:
    account: str
    currency: str
    vm: Decimal  # > 0 owed by the member, exact to the cent (half to even)

    def to_dict(self) -> dict[str, object]:
        return {"account": self.account, "currency": self.currency, "vm": str(self.vm)}


def close_on(market: MarketData, name: str, date: np.datetime64, *, max_stale_days: int) -> Decimal:
    """The series' last close on or before ``date`` as the file's decimal figure."""
    series = market.get(name)
    index = int(np.searchsorted(series.dates, date, side="right")) - 1
    if index < 0 or (date - series.dates[index]).astype(np.int64) > max_stale_days:
        raise MarketDataError(f"no close of '{name}' within {max_stale_days} days before {date}")
    return Decimal(repr(float(series.closes[index])))


def settlement_prices(catalogue: Catalogue, names: list[str], market: MarketData, specs: dict[str, Underlying],
                      date: np.datetime64, *, max_stale_days: int = 5,
                      published: dict[tuple[np.datetime64, str], Decimal] | None = None) -> list[Decimal]:
    """Settlement price per instrument on ``date``: the exchange's where ``published`` has one for
    (date, instrument), else the term-structure rule on the index close, rounded."""
    quantum = Decimal(1).scaleb(-SETTLEMENT_PLACES)
    out = []
    for one in catalogue.select(names):  # reference data, once per instrument
        if published is not None and (date, one.instrument) in published:
            out.append(published[(date, one.instrument)])
            continue
        if one.expiry is not None and date > one.expiry:
            raise MarketDataError(f"'{one.instrument}' expired on {one.expiry}: its variation margin ends at its "
                                  f"final settlement on that day, none is due on {date}")
        spot = close_on(market, one.underlying, date, max_stale_days=max_stale_days)
        spec = underlying_spec(specs, one.underlying, "XNYS")
        years = 0.0 if one.expiry is None else max(int((one.expiry - date).astype(np.int64)), 0) / 365.25
        if spec.returns == "absolute":
            price = spot + Decimal(repr(spec.carry_rate * years))
        else:
            price = spot * Decimal(repr(float(np.exp(spec.carry_rate * years))))
        price = price.quantize(quantum, rounding=ROUND_HALF_EVEN)
        if one.is_option and not one.premium_paid:
            if one.volatility is None:
                raise MarketDataError(f"futures-style option '{one.instrument}' needs an implied volatility in the "
                                      "catalogue for its settlement price")
            premium = option_value(np.array(spec.option_model == "bachelier"), np.array(float(price)),
                                   np.array(float(one.strike)), np.array(years),  # type: ignore[arg-type]
                                   np.array(one.volatility), np.array(one.option_type == "call"))
            price = Decimal(repr(float(premium))).quantize(quantum, rounding=ROUND_HALF_EVEN)
        out.append(price)
    return out


def variation_per_contract(multiplier: Decimal, price_0: Decimal, price_1: Decimal) -> Decimal:
    """One contract's variation (its currency, > 0 a gain for the long): ``multiplier x (price_1 - price_0)``
    to the cent, half to even. Exchange settlement prices lie on the tick grid, where this is exact; a
    derived price need not, and rounding per contract (not per account) keeps a matched book at zero:
    every long's cent has its short's."""
    return (multiplier * (price_1 - price_0)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def variation_margin(book: Book, catalogue: Catalogue, price_0: list[Decimal],
                     price_1: list[Decimal]) -> list[VariationMargin]:
    """VM per account and currency between two settlement-price vectors (book order)."""
    instruments = catalogue.select(book.instruments)
    per_contract = np.array([0 if one.premium_paid else int(variation_per_contract(one.multiplier, p0, p1) / CENT)
                             for one, p0, p1 in zip(instruments, price_0, price_1, strict=True)], dtype=object)
    currencies = sorted({one.currency for one in instruments})
    quantity = book.quantity.astype(object)
    out: list[VariationMargin] = []
    for currency in currencies:  # one exact integer product per currency
        mask = np.array([one.currency == currency for one in instruments])
        totals = quantity[:, mask].dot(per_contract[mask]) if mask.any() else np.zeros(len(book.accounts), object)
        held = (book.quantity[:, mask] != 0).any(axis=1)
        for account, total, holds in zip(book.accounts, totals.tolist(), held.tolist(), strict=True):
            if holds:
                vm = -Decimal(total) * CENT
                out.append(VariationMargin(account, currency, vm))
    return out
