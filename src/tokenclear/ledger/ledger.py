"""The ``Ledger``: the clearing system's contracts on one chain, and the instructions the clearing
workflow sends them. Amounts here are integer token base units; prices USD per whole token with 8
decimals (``_e8``); values micro-USD (6 decimals). Conversion from ``Decimal`` books happens in
``tokenclear.money`` callers, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from eth_utils import keccak

from tokenclear.errors import LedgerError
from tokenclear.ledger.abi import Abi, Event
from tokenclear.ledger.chain import Chain, Receipt
from tokenclear.ledger.contract import Contract, artifact, deploy

MAX_UINT = 2**256 - 1
#: Accounts per bulk view call (the vault's MAX_VIEW).
MAX_VIEW = 128
#: Transfers per bulk restriction check (the tokens' MAX_BATCH is 1,024; this keeps a call near 8 M gas).
RESTRICTION_CHUNK = 512
HOUSE, CUSTOMER, DEFAULT_FUND = 1, 2, 3
#: Holder classes on the identity registry.
MEMBER, CLEARING_HOUSE, SETTLEMENT_CONTRACT = 1, 2, 3
#: Legs per on-chain VM batch: keeps a batch near 7.5 M gas, under every chain's per-transaction cap
#: (at most settlement.vy's MAX_BATCH, 1,024; a test reads it from the contract).
VM_CHUNK = 500
#: Accounts per floor posting: vault.vy's MAX_FLOORS (a test reads it from the contract).
FLOOR_CHUNK = 128


def instruction_key(text: str | bytes) -> bytes:
    """bytes32 idempotency key of a workflow instruction id (its keccak256; 32 raw bytes pass as is)."""
    if isinstance(text, bytes) and len(text) == 32:
        return text
    return keccak(text if isinstance(text, bytes) else text.encode())


@dataclass(frozen=True)
class AssetSpec:
    """A collateral token to deploy. ``kind``: stable, wrapped, fund_accruing, fund_dividend, bill."""

    symbol: str
    name: str
    kind: str
    decimals: int
    price_e8: int
    haircut_bps: int
    max_nav_move_bps: int = 50  # a fund's NAV may move at most this much within a UTC day
    bill_days: int = 91
    max_price_age_s: int = 2 * 86_400  # how old its price may be before releases and substitutions on it stop


#: A fund publishes its NAV once a business day: four days carry it over a long weekend.
FUND_PRICE_AGE_S = 4 * 86_400


DEFAULT_ASSETS = (
    AssetSpec("TUSD", "tokenclear USD", "stable", 6, 10**8, 0),
    AssetSpec("TMMF", "tokenclear MMF (accruing)", "fund_accruing", 6, 10**8, 200,
              max_price_age_s=FUND_PRICE_AGE_S),
    AssetSpec("TMMFD", "tokenclear MMF (dividend)", "fund_dividend", 6, 10**8, 200,
              max_price_age_s=FUND_PRICE_AGE_S),
    AssetSpec("TBILL", "tokenclear 3M T-bill", "bill", 6, 98_990_000, 100),
    AssetSpec("WBTC", "tokenclear wrapped BTC", "wrapped", 8, 20_000 * 10**8, 2_500),
    AssetSpec("WETH", "tokenclear wrapped ETH", "wrapped", 18, 1_500 * 10**8, 3_000),
)

_PRICED_KINDS = ("fund_accruing", "fund_dividend", "bill")


@dataclass(frozen=True)
class Payment:
    """A stablecoin leg: ``units`` base units from ``payer`` to ``receiver``."""

    payer: str
    receiver: str
    units: int


@dataclass(frozen=True)
class Floor:
    """An account's posted floor: ``floor_micro`` is the post-haircut value (micro-USD) releases may not
    break; ``commitment`` is keccak256(abi.encode(requirement_micro_usd, salt)) of its exact requirement."""

    account: bytes
    floor_micro: int
    commitment: bytes


@dataclass(frozen=True)
class AssetParameters:
    """An asset as the vault values it now: ``price_e8`` is the token's own price for fund shares and
    bills (NAV, accretion), else the one the parameter role pushed."""

    eligible: bool
    decimals: int
    haircut_bps: int
    price_e8: int


@dataclass(frozen=True)
class Roles:
    """Who holds each power on chain (addresses). ``admin`` deploys and may grant or revoke roles, and operates
    nothing; ``operator`` (the clearing house's cash wallet) opens accounts, releases, posts floors and settles
    (vault OPERATOR, settlement SETTLER, registry REGISTRAR, bid-bond AUTHORITY); ``parameter`` sets prices,
    haircuts and price ages (vault PARAMETER); ``default_manager`` declares defaults and seizes (vault
    DEFAULT_MANAGER); ``token_agent`` mints, freezes and publishes NAVs (tokens ISSUER, AGENT, NAV_AGENT)."""

    admin: str
    operator: str
    parameter: str
    default_manager: str
    token_agent: str

    @classmethod
    def one_key(cls, address: str) -> Roles:
        return cls(address, address, address, address, address)

    @classmethod
    def separate(cls, chain: Chain) -> Roles:
        """A new key per role (where the chain can make and keep keys: the embedded EVM)."""
        return cls(*(chain.new_account() for _ in range(5)))

    @property
    def shared(self) -> bool:
        """Whether one key holds more than one role."""
        return len({self.admin, self.operator, self.parameter, self.default_manager, self.token_agent}) < 5


class Ledger:
    def __init__(self, chain: Chain, roles: Roles, contracts: dict[str, Contract],
                 tokens: dict[str, Contract], specs: dict[str, AssetSpec], deployed_block: int) -> None:
        self.chain = chain
        self.roles = roles
        self.operator = roles.operator
        self.registry = contracts["registry"]
        self.vault = contracts["vault"]
        self.settlement = contracts["settlement"]
        self.htlc = contracts["htlc"]
        self.bid_bond = contracts["bid_bond"]
        self.tokens = tokens
        self.specs = specs
        self.deployed_block = deployed_block
        self._assets_head: object = None  # the chain head the cached asset parameters were read at
        self._assets: dict[str, AssetParameters] = {}

    # ---- deployment -------------------------------------------------------------------------
    @classmethod
    def deploy(cls, chain: Chain, operator: str | None = None, assets: Sequence[AssetSpec] = DEFAULT_ASSETS,
               roles: Roles | None = None) -> Ledger:
        """Deploy registry, tokens, vault, settlement, HTLC and bid-bond escrow. ``roles``: who holds each power;
        default: ``operator`` (or a new key) holds every one. The admin deploys, grants each role to its key
        and gives up every role it does not hold itself."""
        roles = roles or Roles.one_key(operator or chain.new_account())
        admin = roles.admin
        first_block = chain.block_number() + 1
        registry = deploy(chain, "identity_registry", sender=admin)
        tokens: dict[str, Contract] = {}
        for spec in assets:
            tokens[spec.symbol] = _deploy_token(chain, spec, registry.address, admin)
        contracts = {"registry": registry}
        for name in ("vault", "settlement", "htlc", "bid_bond"):
            contracts[name] = deploy(chain, name, sender=admin)
        holders = {"registry": {"REGISTRAR": roles.operator},
                   "vault": {"OPERATOR": roles.operator, "PARAMETER": roles.parameter,
                             "DEFAULT_MANAGER": roles.default_manager},
                   "settlement": {"SETTLER": roles.operator}, "bid_bond": {"AUTHORITY": roles.operator}}
        for name, granted in holders.items():
            _hand_over(contracts[name], granted, admin)
        specs = assets_by(assets)
        for symbol, token in tokens.items():
            granted = {"ISSUER": roles.token_agent, "AGENT": roles.token_agent}
            if specs[symbol].kind.startswith("fund"):
                granted["NAV_AGENT"] = roles.token_agent
            _hand_over(token, granted, admin)
        registry.send("register_many", sorted({roles.operator, roles.default_manager}), CLEARING_HOUSE,
                      sender=roles.operator)
        registry.send("register_many", [contracts[n].address for n in ("vault", "settlement", "htlc", "bid_bond")],
                      SETTLEMENT_CONTRACT, sender=roles.operator)
        ledger = cls(chain, roles, contracts, tokens, specs, first_block)
        for spec in assets:
            ledger.set_asset(spec.symbol, haircut_bps=spec.haircut_bps, price_e8=spec.price_e8)
            ledger.vault.send("set_max_age", tokens[spec.symbol].address, spec.max_price_age_s,
                              sender=roles.parameter)
        for token in tokens.values():  # the CCP's cash wallet and its liquidation wallet settle through it
            for wallet in dict.fromkeys((roles.operator, roles.default_manager)):
                token.send("approve", contracts["settlement"].address, MAX_UINT, sender=wallet)
        return ledger

    def record(self) -> dict:
        """What :meth:`attach` needs to find this deployment again (store it with the book)."""
        return {"chain_id": self.chain.chain_id, "operator": self.operator, "roles": asdict(self.roles),
                "deployed_block": self.deployed_block, "addresses": self.addresses(), "assets": sorted(self.specs)}

    @classmethod
    def attach(cls, chain: Chain, record: dict, assets: Sequence[AssetSpec] = DEFAULT_ASSETS) -> Ledger:
        """The clearing system deployed earlier (after a restart); ``chain`` must sign for the operator."""
        if chain.chain_id != record["chain_id"]:
            raise LedgerError(f"the book was kept on chain {record['chain_id']}, not {chain.chain_id}")
        addresses = record["addresses"]
        specs = {spec.symbol: spec for spec in assets if spec.symbol in record["assets"]}

        def contract(name: str, address: str) -> Contract:
            return Contract(chain, address, Abi(artifact(name)["abi"]), name)

        contracts = {name: contract(artifact_name, addresses[name]) for name, artifact_name in (
            ("registry", "identity_registry"), ("vault", "vault"), ("settlement", "settlement"), ("htlc", "htlc"),
            ("bid_bond", "bid_bond"))}
        tokens = {symbol: contract(_token_contract(spec.kind), addresses[f"token:{symbol}"])
                  for symbol, spec in specs.items()}
        roles = Roles(**record["roles"]) if "roles" in record else Roles.one_key(record["operator"])
        return cls(chain, roles, contracts, tokens, specs, record["deployed_block"])

    def addresses(self) -> dict[str, str]:
        out = {name: c.address for name, c in (("registry", self.registry), ("vault", self.vault),
                                                ("settlement", self.settlement), ("htlc", self.htlc),
                                                ("bid_bond", self.bid_bond))}
        out.update({f"token:{sym}": tok.address for sym, tok in self.tokens.items()})
        return out

    def token(self, symbol: str) -> Contract:
        try:
            return self.tokens[symbol]
        except KeyError:
            raise LedgerError(f"unknown token '{symbol}' (deployed: {', '.join(self.tokens)})") from None

    # ---- parameters ---------------------------------------------------------------------------
    def set_asset(self, symbol: str, *, haircut_bps: int, price_e8: int, eligible: bool = True) -> Receipt:
        """Push a haircut and price on chain; fund shares and bills price themselves (NAV, accretion)."""
        from_token = self.specs[symbol].kind in _PRICED_KINDS
        return self.vault.send("set_asset", self.token(symbol).address, eligible, int(haircut_bps),
                               0 if from_token else int(price_e8), from_token, sender=self.roles.parameter)

    def set_prices(self, prices_e8: dict[str, int]) -> Receipt:
        symbols = [s for s in prices_e8 if self.specs[s].kind not in _PRICED_KINDS]
        return self.vault.send("set_prices", [self.token(s).address for s in symbols],
                               [int(prices_e8[s]) for s in symbols], sender=self.roles.parameter)

    # ---- members ------------------------------------------------------------------------------
    def onboard(self, members: Iterable[str]) -> None:
        """Put members on the allow-list (256 a transaction)."""
        members = list(members)
        for start in range(0, len(members), 256):
            self.registry.send("register_many", members[start:start + 256], MEMBER, sender=self.operator)

    def authorise(self, member: str) -> None:
        """The member's standing authorisations: the vault and the settlement contract may debit it."""
        for token in self.tokens.values():
            token.send("approve", self.vault.address, MAX_UINT, sender=member)
            token.send("approve", self.settlement.address, MAX_UINT, sender=member)

    def issue(self, symbol: str, holder: str, units: int) -> Receipt:
        """The token agent mints ``units`` to an allow-listed holder."""
        return self.token(symbol).send("mint", holder, int(units), sender=self.roles.token_agent)

    def open_account(self, account: bytes, member: str, segregation: int) -> Receipt:
        return self.vault.send("open_account", account, member, segregation, sender=self.operator)

    # ---- collateral instructions (each idempotent on its key) --------------------------------
    def pledge(self, key: str | bytes, account: bytes, symbol: str, units: int, member: str) -> Receipt:
        return self.vault.send("pledge", instruction_key(key), account, self.token(symbol).address, int(units),
                               sender=member)

    def pledge_transactions(self, key: str | bytes, account: bytes, symbol: str, units: int,
                            member: str) -> list[dict]:
        """The unsigned transactions a member signs itself to pledge (an approval of the vault first, if its
        allowance is short, then the pledge under ``key``): each {to, data (hex), purpose}, in order."""
        token = self.token(symbol)
        out = []
        if int(token.call("allowance", member, self.vault.address)) < int(units):
            out.append({"to": token.address, "purpose": f"approve the vault to take {symbol}",
                        "data": "0x" + token.calldata("approve", self.vault.address, MAX_UINT).hex()})
        out.append({"to": self.vault.address, "purpose": f"pledge {int(units)} {symbol} units",
                    "data": "0x" + self.vault.calldata("pledge", instruction_key(key), account, token.address,
                                                       int(units)).hex()})
        return out

    def contract_addresses(self) -> set[str]:
        """Every contract of this deployment (the vault, settlement, escrows, registry and the tokens)."""
        return {c.address for c in (self.registry, self.vault, self.settlement, self.htlc, self.bid_bond,
                                    *self.tokens.values())}

    def release(self, key: str | bytes, account: bytes, symbol: str, units: int) -> Receipt:
        return self.vault.send("release", instruction_key(key), account, self.token(symbol).address, int(units),
                               sender=self.operator)

    def substitute(self, key: str | bytes, account: bytes, out_symbol: str, out_units: int, in_symbol: str,
                   in_units: int, member: str) -> Receipt:
        return self.vault.send("substitute", instruction_key(key), account, self.token(out_symbol).address,
                               int(out_units), self.token(in_symbol).address, int(in_units), sender=member)

    def declare_default(self, account: bytes) -> Receipt:
        return self.vault.send("declare_default", account, sender=self.roles.default_manager)

    def seize(self, key: str | bytes, account: bytes, symbol: str, units: int, receiver: str) -> Receipt:
        return self.vault.send("seize", instruction_key(key), account, self.token(symbol).address, int(units),
                               receiver, sender=self.roles.default_manager)

    def port(self, key: str | bytes, account: bytes, symbol: str, units: int, to_account: bytes) -> Receipt:
        """Move a defaulted customer account's units to its new clearing member's customer account."""
        return self.vault.send("port", instruction_key(key), account, self.token(symbol).address, int(units),
                               to_account, sender=self.roles.default_manager)

    def apply_fund(self, key: str | bytes, account: bytes, symbol: str, units: int, defaulted: bytes,
                   receiver: str) -> Receipt:
        """Use a default-fund account's units towards the declared default of ``defaulted``."""
        return self.vault.send("apply_fund", instruction_key(key), account, self.token(symbol).address, int(units),
                               defaulted, receiver, sender=self.roles.default_manager)

    def set_requirements(self, key: str, floors: Sequence[Floor], chunk: int = FLOOR_CHUNK) -> list[Receipt]:
        """Post floors and commitments, ``chunk`` accounts a transaction, each idempotent on ``key#i``."""
        receipts = []
        for i, start in enumerate(range(0, len(floors), chunk)):
            part = floors[start:start + chunk]
            receipts.append(self.vault.send(
                "set_requirements", instruction_key(f"{key}#{i}"), [f.account for f in part],
                [int(f.floor_micro) for f in part], [f.commitment for f in part], sender=self.operator))
        return receipts

    def set_requirement(self, account: bytes, floor_micro_usd: int, commitment: bytes) -> Receipt:
        """One account's floor, keyed by its content (posting the same floor again is a no-op)."""
        key = keccak(account + int(floor_micro_usd).to_bytes(32, "big") + commitment)
        return self.set_requirements(key.hex(), [Floor(account, floor_micro_usd, commitment)])[0]

    # ---- settlement ---------------------------------------------------------------------------
    def dvp(self, key: str | bytes, asset: str, seller: str, asset_units: int, cash: str, buyer: str,
            cash_units: int) -> Receipt:
        return self.settlement.send("dvp", instruction_key(key), self.token(asset).address, seller,
                                    int(asset_units), self.token(cash).address, buyer, int(cash_units),
                                    sender=self.operator)

    def settle_payments(self, key: str, payments: Sequence[Payment], symbol: str = "TUSD",
                        chunk: int = VM_CHUNK) -> list[Receipt]:
        """Pay every leg in the stablecoin, both ways, in batches of ``chunk`` legs; each batch is
        all-or-nothing and idempotent on ``key#i``, so a rerun after a crash pays nothing twice."""
        token = self.token(symbol).address
        receipts = []
        for i, start in enumerate(range(0, len(payments), chunk)):
            part = payments[start:start + chunk]
            receipts.append(self.settlement.send(
                "settle_token_batch", instruction_key(f"{key}#{i}"), token, [p.payer for p in part],
                [p.receiver for p in part], [int(p.units) for p in part], sender=self.operator))
        return receipts

    # ---- reading the chain --------------------------------------------------------------------
    def balance(self, symbol: str, holder: str) -> int:
        return self.token(symbol).call("balanceOf", holder)

    def held(self, account: bytes, symbol: str) -> int:
        return self.vault.call("held", account, self.token(symbol).address)

    def total_held(self, symbol: str) -> int:
        return self.vault.call("total_held", self.token(symbol).address)

    def asset_parameters(self, symbol: str) -> AssetParameters:
        return self.assets_parameters([symbol])[symbol]

    def assets_parameters(self, symbols: Sequence[str]) -> dict[str, AssetParameters]:
        """The vault's terms of each token (eligibility, decimals, haircut, price), read once per chain head:
        a valuation between two transactions does not read them again."""
        head = self.chain.head()
        if head != self._assets_head:
            self._assets_head, self._assets = head, {}
        out = {}
        for symbol in symbols:
            if symbol not in self._assets:
                token = self.token(symbol)
                eligible, decimals, haircut_bps, price_e8, from_token, _, _ = self.vault.call("assets",
                                                                                              token.address)
                if from_token:
                    price_e8 = token.call("price_e8")
                self._assets[symbol] = AssetParameters(bool(eligible), int(decimals), int(haircut_bps),
                                                       int(price_e8))
            out[symbol] = self._assets[symbol]
        return out

    def block_number(self) -> int:
        return self.chain.block_number()

    def token_address(self, symbol: str) -> str:
        return self.token(symbol).address

    @property
    def vault_address(self) -> str:
        """Where the collateral is held (named in margin calls as the blockchain address)."""
        return self.vault.address

    def transfer_restriction(self, symbol: str, payer: str, receiver: str, units: int) -> str | None:
        """The token's ERC-1404 pre-check of a transfer: None when it would go through, else its reason."""
        token = self.token(symbol)
        code = token.call("detectTransferRestriction", payer, receiver, int(units))
        return None if code == 0 else token.call("messageForTransferRestriction", code)

    def transfer_restrictions(self, symbol: str, transfers: Sequence[tuple[str, str, int]]) -> list[str | None]:
        """:meth:`transfer_restriction` of each (payer, receiver, units), :data:`RESTRICTION_CHUNK` a call."""
        token = self.token(symbol)
        codes: list[int] = []
        for start in range(0, len(transfers), RESTRICTION_CHUNK):  # a loop over calls
            chunk = transfers[start:start + RESTRICTION_CHUNK]
            codes += [int(code) for code in token.call("detect_transfer_restrictions", [one[0] for one in chunk],
                                                       [one[1] for one in chunk], [int(one[2]) for one in chunk])]
        messages = {code: token.call("messageForTransferRestriction", code) for code in set(codes) if code}
        return [messages[code] if code else None for code in codes]

    def is_open(self, account: bytes) -> bool:
        """Whether the vault has opened the account."""
        return int(self.vault.call("accounts", account)[0], 16) != 0

    def price_age(self, symbol: str) -> int:
        """Seconds since the price the vault values ``symbol`` at was set (a fund's NAV time, for fund shares)."""
        return int(self.vault.call("price_age", self.token(symbol).address))

    def carried_out(self, key: str | bytes, function: str, caller: str | None = None) -> bool:
        """Whether ``caller`` (default: the operator) has used ``key`` in the vault's ``function`` (keys are bound
        to caller and function on chain: a replay after a crash is told apart from a new instruction)."""
        return self.vault.call("claimed", caller or self.operator, function, instruction_key(key)) != bytes(32)

    def is_defaulted(self, account: bytes) -> bool:
        """Whether the vault has the account in default."""
        return bool(self.vault.call("accounts", account)[2])

    def required_floor(self, account: bytes) -> int:
        """The floor the vault enforces on releases, micro-USD."""
        return int(self.vault.call("required_floor", account))

    def collateral_value(self, account: bytes) -> int:
        """Post-haircut value of an account's collateral on chain, micro-USD."""
        return self.vault.call("collateral_value", account)

    def collateral_values(self, accounts: Sequence[bytes]) -> list[int]:
        """:meth:`collateral_value` of every account, :data:`MAX_VIEW` accounts per call, in order."""
        out: list[int] = []
        for start in range(0, len(accounts), MAX_VIEW):  # a loop over calls, each a slice of the book
            out += [int(one) for one in self.vault.call("collateral_values", list(accounts[start:start + MAX_VIEW]))]
        return out

    def holdings(self, accounts: Sequence[bytes], symbols: Sequence[str]) -> list[list[int]]:
        """:meth:`held` of every account (rows) and symbol (columns), :data:`MAX_VIEW` accounts per call."""
        tokens = [self.token(symbol).address for symbol in symbols]
        out: list[list[int]] = []
        for start in range(0, len(accounts), MAX_VIEW):  # a loop over calls
            flat = self.vault.call("holdings", list(accounts[start:start + MAX_VIEW]), tokens)
            out += [[int(one) for one in flat[k:k + len(tokens)]] for k in range(0, len(flat), len(tokens))]
        return out

    def vault_events(self, from_block: int | None = None, to_block: int | None = None) -> list[Event]:
        return self.vault.history(from_block=self.deployed_block if from_block is None else from_block,
                                  to_block=to_block)


def _token_contract(kind: str) -> str:
    names = {"stable": "collateral_token", "wrapped": "collateral_token", "fund_accruing": "fund_share",
             "fund_dividend": "fund_share", "bill": "bill_token"}
    if kind not in names:
        raise LedgerError(f"unknown token kind '{kind}'")
    return names[kind]


def assets_by(assets: Sequence[AssetSpec]) -> dict[str, AssetSpec]:
    return {spec.symbol: spec for spec in assets}


def _hand_over(contract: Contract, granted: dict[str, str], admin: str) -> None:
    """Grant each named role (``contract.NAME()``) to its holder; the admin, which got every role from the
    constructor, gives up those it does not hold itself and keeps only the admin role."""
    for name, holder in granted.items():
        role = contract.call(name)
        if holder != admin:
            contract.send("grantRole", role, holder, sender=admin)
            contract.send("renounceRole", role, admin, sender=admin)


def _deploy_token(chain: Chain, spec: AssetSpec, registry: str, operator: str) -> Contract:
    common = (spec.name, spec.symbol, spec.decimals, registry)
    contract = _token_contract(spec.kind)
    if contract == "collateral_token":
        return deploy(chain, "collateral_token", *common, sender=operator)
    if contract == "fund_share":
        model = 1 if spec.kind == "fund_accruing" else 2
        return deploy(chain, "fund_share", *common, model, spec.price_e8, spec.max_nav_move_bps, sender=operator)
    maturity = chain.timestamp() + spec.bill_days * 86_400
    return deploy(chain, "bill_token", *common, spec.price_e8, maturity, sender=operator)
