"""Collateral that counts, per account, read from the vault and the book: the vault's exact post-haircut
value less what the concentration limits and general wrong-way risk keep from counting (the pure rules
are :func:`tokenclear.clearing.coverage.counted`), with the risk state a cycle stored."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from tokenclear.clearing import coverage
from tokenclear.clearing.coverage import Holdings, Limits, RiskState
from tokenclear.clearing.interfaces import LedgerPort, StorePort
from tokenclear.collateral.valuation import BPS
from tokenclear.store import queries
from tokenclear.store.models import Account


class CollateralCount:
    def __init__(self, store: StorePort, ledger: LedgerPort, symbols: list[str], limits: Limits) -> None:
        self.store, self.ledger, self.symbols, self.limits = store, ledger, symbols, limits
        self._risk: dict[int, RiskState] = {}  # the last cycle's, by its id

    def risk_state(self) -> RiskState:
        """The risk state of the last cycle that measured one (empty before the first). Read from the store
        once per cycle: a member's release would otherwise decode every account's state of the last run."""
        with self.store.session() as session:
            found = queries.last_risk_detail(session, self._risk)
        if found is None:
            return RiskState()
        cycle_id, stored = found
        if stored is not None:
            self._risk = {cycle_id: RiskState.from_json(stored)}  # immutable once recorded: a cache, not state
        return self._risk[cycle_id]

    def holdings(self, session, accounts: list[Account]) -> Holdings:
        """What ``accounts`` hold, at the vault's prices, haircuts and eligibility now."""
        ids = [account.id for account in accounts]
        index = {account: i for i, account in enumerate(ids)}
        n = len(self.symbols)
        quantity = np.zeros((len(accounts), n))
        price, haircut, eligible = np.zeros(n), np.zeros(n), np.zeros(n, bool)
        terms = self.ledger.assets_parameters(self.symbols)  # read once per chain head
        for j, symbol in enumerate(self.symbols):
            asset = terms[symbol]
            eligible[j], haircut[j], price[j] = asset.eligible, asset.haircut_bps / BPS, asset.price_e8 / 1e8
            for account_id, units in queries.holding_units(session, symbol, ids).items():
                quantity[index[account_id], j] = units / 10**asset.decimals
        return Holdings(ids, self.symbols, quantity, price, haircut, eligible)

    def counted(self, session, accounts: list[Account], required: dict[str, Decimal],
                risk: RiskState | None = None) -> dict[str, Decimal]:
        """Collateral that counts per account (USD, down to the cent), with ``risk`` or the last cycle's
        risk state; ``required``: each account's requirement (USD), which bounds the wrong-way cut."""
        risk = self.risk_state() if risk is None else risk
        holdings = self.holdings(session, accounts)
        vault = [coverage.usd(value) for value in self.ledger.collateral_values(
            [bytes.fromhex(account.onchain_id[2:]) for account in accounts])]  # the whole book in a few calls
        values = coverage.counted(vault, holdings, [required[account] for account in holdings.accounts], risk,
                                  self.limits)
        return dict(zip(holdings.accounts, values, strict=True))

    def counting(self, session, accounts: list[Account], required: dict[str, Decimal]) -> coverage.Counting:
        """How the concentration limits and wrong-way risk bind on ``accounts`` now, with the last cycle's
        risk state (see :func:`tokenclear.clearing.coverage.counting`)."""
        holdings = self.holdings(session, accounts)
        return coverage.counting(holdings, [required[account] for account in holdings.accounts], self.risk_state(),
                                 self.limits)

    def vault_value(self, onchain_id: str) -> Decimal:
        """Post-haircut collateral of an account as the vault values it, USD rounded down to the cent."""
        return coverage.usd(self.ledger.collateral_value(bytes.fromhex(onchain_id[2:])))
