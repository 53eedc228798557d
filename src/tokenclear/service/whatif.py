"""What-if margin: the requirement of a hypothetical portfolio, or of an account with hypothetical trades added,
by the cycle's own method and setup (HS-VaR with its add-ons and APC, as of the last cycle's closes). The
scenario context is the cycle's (the book's instruments and the portfolio's), built once per as-of date and kept:
a what-if is then the portfolio's P&L over the stored scenarios, the method's quantile and the add-ons."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from decimal import Decimal

import numpy as np
from sqlalchemy import select

from tokenclear.book.positions import book_from_entries
from tokenclear.errors import InputError
from tokenclear.margin.context import Context, RunConfig, build_context
from tokenclear.margin.setup import book_margin
from tokenclear.service.auth import Principal
from tokenclear.service.core import Service
from tokenclear.service.views import NotFound, account_of, usd
from tokenclear.store import queries
from tokenclear.store.models import Cycle, Position

ACCOUNT = "WHAT-IF"
MAX_ROWS = 10_000
CACHED_CONTEXTS = 32


class WhatIf:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._contexts: OrderedDict[tuple, Context] = OrderedDict()
        self._lock = threading.Lock()
        self._cycle: tuple[str | None, str | None, set[str]] = (None, None, set())  # key, closes' date, instruments

    def _context(self, book, config: RunConfig, day: np.datetime64) -> Context:
        """The scenario context of ``book``'s instruments as of ``day`` (the quantities are the book's own)."""
        risk = self.service.workflow.risk
        key = (tuple(book.instruments), config, str(day))
        with self._lock:
            cached = self._contexts.get(key)
            if cached is not None:
                self._contexts.move_to_end(key)
        if cached is None:
            cached = build_context(book=book, catalogue=risk.catalogue, market=risk.market, specs=risk.specs,
                                   config=config, as_of=day)
            with self._lock:
                self._contexts[key] = cached
                while len(self._contexts) > CACHED_CONTEXTS:
                    self._contexts.popitem(last=False)
        return replace(cached, book=book)  # the same instruments in the same order: only quantities differ

    def _last_cycle(self) -> tuple[str | None, set[str]]:
        """The date of the closes the last cycle valued at and the instruments the book held then (its stored
        positions), read from the cycle's detail once per cycle (the detail holds every account's risk state)."""
        with self.service.store.session() as session:
            key = session.scalar(select(Cycle.key).where(Cycle.status == "closed").order_by(Cycle.at.desc()))
            if key is None:
                return None, set()
            if self._cycle[0] == key:
                return self._cycle[1], self._cycle[2]
            detail = queries.cycle_by_key(session, key).detail
        held = detail.get("positions")
        instruments = set(self.service.workflow.book().instruments) if held is None else \
            {instrument for account in held.values() for instrument in account}
        self._cycle = (key, detail["date"], instruments)
        return detail["date"], instruments

    def margin(self, principal: Principal, rows: list[dict], account: str | None = None) -> dict:
        """``rows``: [{instrument, quantity}] (repeated instruments add up). With ``account``: its positions plus
        the rows, against its positions alone."""
        if principal.role == "feed":
            raise NotFound("the feed role reads no margin")
        if not rows:
            raise InputError("at least one position", field="positions")
        if len(rows) > MAX_ROWS:
            raise InputError(f"at most {MAX_ROWS} positions", field="positions")
        risk = self.service.workflow.risk
        trades: dict[str, int] = {}
        for index, row in enumerate(rows):
            instrument, quantity = row.get("instrument"), row.get("quantity")
            if instrument not in risk.catalogue.instruments:
                raise InputError(f"unknown instrument '{instrument}'", field=f"positions[{index}].instrument")
            if risk.catalogue.instruments[instrument].underlying not in risk.market.series:
                raise InputError(f"'{instrument}' moves with a series the service has not loaded",
                                 field=f"positions[{index}].instrument")
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                raise InputError(f"'{quantity}' is not a whole number of contracts",
                                 field=f"positions[{index}].quantity")
            trades[instrument] = trades.get(instrument, 0) + quantity
        day, instruments = self._last_cycle()
        with self.service.store.session() as session:
            held: dict[str, int] = {}
            if account is not None:
                account_of(session, principal, account)
                for p in session.query(Position).filter(Position.account_id == account):
                    held[p.instrument] = int(p.quantity)
        if day is None:
            raise InputError("no cycle has run yet: a what-if values at the last cycle's closes", field="positions")
        after = {i: held.get(i, 0) + trades.get(i, 0) for i in {*held, *trades}}
        new = self._requirement(after, np.datetime64(day, "D"), instruments)
        out = {"as_of": day, "method": "hsvar", "requirement_usd": usd(new["margin"]), "components_usd": new["parts"],
               "worst_scenario": new["worst"], "positions": len(rows)}
        if account is not None:
            before = self._requirement(held, np.datetime64(day, "D"), instruments)
            out.update({"account": account, "current_requirement_usd": usd(before["margin"]),
                        "change_usd": usd(new["margin"] - before["margin"])})
        return out

    def _requirement(self, quantities: dict[str, int], day: np.datetime64, instruments: set[str]) -> dict:
        entries = [(ACCOUNT, instrument, q) for instrument, q in sorted(quantities.items()) if q]
        if not entries:
            return {"margin": Decimal(0), "parts": {}, "worst": None}
        risk = self.service.workflow.risk
        # the book's other instruments held at zero: the scenarios are the cycle's own (the common history of
        # every instrument the book holds), so an account's what-if equals its requirement in the cycle
        entries += [(ACCOUNT, instrument, 0) for instrument in sorted(instruments) if instrument not in quantities]
        book = book_from_entries(entries, risk.catalogue)
        run = book_margin(book, risk.catalogue, risk.setup, "hsvar",
                          build=lambda sub, config: self._context(sub, config, day), capacity=risk.capacity)
        one = run.accounts[0]
        parts = {"base": one.base, "holiday_addon": one.holiday_addon, "history_addon": one.history_addon,
                 "concentration_addon": one.concentration_addon, "apc_addon": one.apc_addon}
        return {"margin": one.margin, "parts": {name: usd(value) for name, value in parts.items()},
                "worst": one.worst_scenario}
