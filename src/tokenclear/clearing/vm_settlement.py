"""A cycle's variation margin, settled: the moves of each account's positions between the previous daily
cycle's settlement prices and this one's, paid in the stablecoin both ways in one batch on chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import structlog

from tokenclear.book.positions import Book
from tokenclear.clearing.instructions import Instructions
from tokenclear.clearing.interfaces import LedgerPort, StorePort
from tokenclear.clearing.requirements import RiskInputs, stored_book
from tokenclear.clearing.vm_batch import PAR_E8, paid, vm_batch
from tokenclear.margin.variation import settlement_prices, variation_margin
from tokenclear.store import queries

log = structlog.get_logger("tokenclear.vm")
VM_TOKEN = "TUSD"  # variation margin is paid in the stablecoin


@dataclass(frozen=True)
class Settled:
    paid_by_members_usd: Decimal = Decimal(0)
    paid_to_members_usd: Decimal = Decimal(0)
    blocked: list[dict] = field(default_factory=list)  # legs the token refused: account, units, usd, reason
    warnings: list[str] = field(default_factory=list)


def settle(key: str, day: np.datetime64, *, store: StorePort, ledger: LedgerPort, instructions: Instructions,
           risk: RiskInputs, price_usd: float | None) -> Settled:
    """VM since the previous daily cycle's date, under the instruction ``{key}:vm``.

    A leg the token would refuse (frozen or paused wallet, not enough balance: its ERC-1404 pre-check) is
    left out of the batch instead of reverting everyone's VM; it is returned as blocked with the token's
    reason, and the cycle adds VM a member could not pay to its requirement (so it is called). The units are
    taken at ``price_usd``, the stablecoin's guarded price (None: no usable price, paid at par with a
    warning). A rerun or a restart sends the batch as first decided."""
    instruction = f"{key}:vm"
    with store.session() as session:
        done = queries.instruction(session, instruction)
        previous = queries.previous_daily_cycle(session, key)
        wallets = queries.wallets(session)
    if done is not None:
        params = done.params
    else:
        if previous is None or previous.detail.get("date") == str(day):
            return Settled()
        book = stored_book(store, risk.catalogue)
        rows = variation_margin(book, risk.catalogue, _prices(risk, book, np.datetime64(previous.detail["date"])),
                                _prices(risk, book, day))
        price_e8 = PAR_E8 if price_usd is None else int(round(price_usd * 10**8))
        params = vm_batch(rows, wallets, ledger.operator,
                          lambda transfers: ledger.transfer_restrictions(VM_TOKEN, transfers),
                          price_e8)
        if not params["legs"] and not params["blocked"]:
            return Settled()
    if params["legs"]:
        instructions.execute(instruction, "settle_payments", params)
    for one in params["blocked"]:
        log.warning("VM leg blocked", key=instruction, account=one["account"], units=one["units"],
                    reason=one["reason"])
    warnings = []
    if "price_e8" in params and params["price_e8"] != PAR_E8:
        warnings.append(f"VM paid in {VM_TOKEN} at its market price {params['price_e8'] / 1e8:.4f} USD")
    if price_usd is None and done is None:
        warnings.append(f"no usable {VM_TOKEN} price: VM paid at par")
    return Settled(*paid(params), params["blocked"], warnings)


def _prices(risk: RiskInputs, book: Book, day: np.datetime64) -> list[Decimal]:
    return settlement_prices(risk.catalogue, book.instruments, risk.market, risk.specs, day,
                             max_stale_days=risk.config.max_stale_days)
