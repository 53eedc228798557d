"""What a cycle puts on chain before it values anything: prices through the oracle guard, haircuts
calibrated from the market (plus the guard's fallback add-on) with each token's eligibility, and, after
the requirements, each account's floor with a commitment to its exact requirement."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np

from tokenclear.clearing import coverage
from tokenclear.clearing.instructions import Instructions, WorkflowError
from tokenclear.clearing.interfaces import PriceFeed, StorePort
from tokenclear.collateral.assets import Registry
from tokenclear.collateral.files import Reference
from tokenclear.collateral.haircuts import HaircutConfig, HaircutTable, calibrate
from tokenclear.collateral.valuation import BPS
from tokenclear.ledger.privacy import commitment
from tokenclear.market.history import MarketData
from tokenclear.market.oracle import OracleGuard
from tokenclear.store import queries
from tokenclear.store.models import Account, Requirement

MAX_HAIRCUT_BPS = BPS - 1  # the vault refuses a haircut of 100%


@dataclass(frozen=True)
class TokenAsset:
    """A token on chain and the registry asset whose haircut it takes. ``series``: its price
    series (``None``: the token prices itself on chain, as fund shares and bills do)."""

    symbol: str
    asset: str
    series: str | None


@dataclass(frozen=True)
class Guarded:
    """A cycle's prices as the guard let them through: USD per token by asset (only usable ones), the
    guard's status by asset, and the haircut add-on (fraction) it asks for a fallback price."""

    prices: dict[str, float]
    status: dict[str, str]
    addon: dict[str, float]


class ChainParameters:
    def __init__(self, *, store: StorePort, instructions: Instructions, feed: PriceFeed, guard: OracleGuard,
                 tokens: list[TokenAsset], registry: Registry, reference: Reference,
                 collateral_market: tuple[MarketData, MarketData], haircuts: HaircutConfig, schedule: str,
                 policy_date: np.datetime64, floor_grid_usd: Decimal) -> None:
        self.store, self.instructions, self.feed, self.guard = store, instructions, feed, guard
        self.tokens, self.registry, self.reference = tokens, registry, reference
        self.prices, self.volumes = collateral_market
        self.haircuts, self.schedule, self.policy_date = haircuts, schedule, policy_date
        self.floor_grid_usd = floor_grid_usd
        # the risk desk's standing decisions by token: a haircut floor (bps) and a suspension, set between cycles
        self.haircut_floor_bps: dict[str, int] = {}
        self.suspended: set[str] = set()

    def table(self, day: np.datetime64) -> HaircutTable:
        """Haircuts calibrated from the market as of ``day``, with each component (registry order)."""
        return calibrate(self.registry, market=self.prices, volumes=self.volumes, floors=self.reference.floors,
                         as_of=day, config=self.haircuts, schedule=self.reference.schedule_floors)

    def guarded_prices(self, at: datetime) -> Guarded:
        """Each priced token's quotes at ``at`` through the guard (which keeps its history)."""
        prices, status, addon = {}, {}, {}
        for token in self.tokens:
            if token.series is None:
                continue
            decision = self.guard.update(token.asset, self.feed.quotes(token.series, at), at)
            status[token.asset] = decision.status
            addon[token.asset] = decision.haircut_addon
            if decision.usable:
                prices[token.asset] = decision.price
        return Guarded(prices, status, addon)

    def push(self, key: str, day: np.datetime64, guarded: Guarded) -> tuple[dict[str, int], np.ndarray]:
        """Haircuts calibrated as of ``day`` (plus the guard's fallback add-on) and prices on chain; a token
        whose price the guard halted is made ineligible. Returns the haircuts pushed (bps per token) and
        the market haircut component (fraction per token). The risk desk's haircut floors and suspensions apply
        on top (never below the calibration)."""
        table = self.table(day)
        eligible = self.reference.schedules.eligible_mask(self.registry.assets, self.schedule, self.policy_date)
        out = {}
        for i, token in enumerate(self.tokens):
            haircut = float(table.published[i]) + guarded.addon.get(token.asset, 0.0)
            bps = min(max(int(math.ceil(round(haircut * BPS, 6))), self.haircut_floor_bps.get(token.symbol, 0)),
                      MAX_HAIRCUT_BPS)
            halted = token.series is not None and token.asset not in guarded.prices
            price_e8 = 0 if token.series is None or halted else int(round(guarded.prices[token.asset] * 10**8))
            params = {"symbol": token.symbol, "haircut_bps": bps, "price_e8": price_e8,
                      "eligible": bool(eligible[i]) and not halted and token.symbol not in self.suspended}
            self.instructions.execute(f"{key}:asset:{token.symbol}", "set_asset", params)
            out[token.symbol] = bps
        return out, table.market

    def post_floors(self, key: str, floors: list[tuple[str, Decimal]]) -> None:
        """Each account's floor (on-chain id, requirement in USD) and a commitment to its exact requirement
        on chain, idempotently: the salts are drawn once and kept in the instruction's stored parameters,
        so a resend after a crash posts the same commitments (and a member or regulator given the salt
        can open them)."""
        instruction = f"{key}:floors"
        with self.store.session() as session:
            done = queries.instruction(session, instruction)
            params = None if done is None else done.params
        if params is None:
            rows = []
            for onchain, required in floors:
                salt = secrets.token_bytes(32)
                rows.append([onchain, coverage.floor_micro(required, self.floor_grid_usd),
                             "0x" + commitment(coverage.micro(required), salt).hex(), "0x" + salt.hex()])
            params = {"floors": rows}
        if params["floors"]:
            self.instructions.execute(instruction, "set_requirements", params)

    def requirement_opening(self, cycle_key: str, account_id: str) -> tuple[int, bytes]:
        """(requirement in micro-USD, salt) that open the commitment a cycle posted for an account: what
        the clearing house hands the member or the regulator."""
        with self.store.session() as session:
            account = session.get(Account, account_id)
            done = queries.instruction(session, f"{cycle_key}:floors")
            cycle = queries.cycle_by_key(session, cycle_key)
            if account is None or done is None or cycle is None:
                raise WorkflowError(f"no floor posted for '{account_id}' by cycle '{cycle_key}'")
            required = session.get(Requirement, (cycle.id, account_id)).requirement
        salt = next(bytes.fromhex(row[3][2:]) for row in done.params["floors"] if row[0] == account.onchain_id)
        return coverage.micro(required), salt
