# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Segregated collateral vault
@notice Holds pledged collateral per account; an account belongs to one
        member and is either HOUSE (1) or CUSTOMER (2), or holds a member's
        default-fund contribution (DEFAULT_FUND, 3). Nothing moves between
        accounts, so customer collateral never meets a house default, with
        one exception: the default manager ports a defaulted member's
        customer account to a surviving member's customer account. A
        default-fund account pays out only towards a declared default. Accounts are known only by pseudonymous 32-byte ids.
        The clearing house's parameter role keeps each asset's price and
        haircut on chain; an account's floor is the post-haircut value
        (micro-USD, 6 decimals) that releases and substitutions may not
        break. Every instruction that moves collateral or posts floors carries
        an idempotency key, claimed before any other check, so a replay is a
        no-op whatever happened since (ineligibility, default, repricing).
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from snekmate.auth import access_control
import idempotency
import i_priced

initializes: access_control
initializes: idempotency
exports: (access_control.__interface__, idempotency.instruction, idempotency.claimed)

OPERATOR: public(constant(bytes32)) = keccak256("OPERATOR")
PARAMETER: public(constant(bytes32)) = keccak256("PARAMETER")
DEFAULT_MANAGER: public(constant(bytes32)) = keccak256("DEFAULT_MANAGER")

HOUSE: constant(uint8) = 1
CUSTOMER: constant(uint8) = 2
DEFAULT_FUND: constant(uint8) = 3
MAX_ASSETS: constant(uint256) = 16
MAX_FLOORS: public(constant(uint256)) = 128  # accounts per set_requirements call (about 6.5 M gas)
MAX_VIEW: public(constant(uint256)) = 128  # accounts per bulk view call (collateral_values, holdings)
BPS: constant(uint256) = 10_000
DEFAULT_MAX_AGE: public(constant(uint256)) = 2 * 86_400  # a listed asset's maximum price age until set

struct Account:
    member: address
    segregation: uint8
    defaulted: bool

struct Asset:
    eligible: bool
    decimals: uint8
    haircut_bps: uint256
    price_e8: uint256
    price_from_token: bool
    priced_at: uint256  # when price_e8 was pushed (unix seconds); a token that prices itself says its own
    max_age: uint256  # seconds a price may be old before releases and substitutions that depend on it stop

accounts: public(HashMap[bytes32, Account])
assets: public(HashMap[address, Asset])
asset_list: public(DynArray[address, MAX_ASSETS])
listed: public(HashMap[address, bool])
held: public(HashMap[bytes32, HashMap[address, uint256]])
total_held: public(HashMap[address, uint256])
required_floor: public(HashMap[bytes32, uint256])
commitment: public(HashMap[bytes32, bytes32])

event AccountOpened:
    account: indexed(bytes32)
    member: indexed(address)
    segregation: uint8

event Pledged:
    key: indexed(bytes32)
    account: indexed(bytes32)
    token: indexed(address)
    amount: uint256

event Released:
    key: indexed(bytes32)
    account: indexed(bytes32)
    token: indexed(address)
    amount: uint256
    receiver: address

event Seized:
    key: indexed(bytes32)
    account: indexed(bytes32)
    token: indexed(address)
    amount: uint256
    receiver: address

event Substituted:
    key: indexed(bytes32)
    account: indexed(bytes32)
    token_out: address
    amount_out: uint256
    token_in: address
    amount_in: uint256

event RequirementPosted:
    account: indexed(bytes32)
    floor: uint256
    commitment: bytes32

event Ported:
    key: indexed(bytes32)
    account: indexed(bytes32)
    token: indexed(address)
    amount: uint256
    to_account: bytes32

event FundApplied:
    key: indexed(bytes32)
    account: indexed(bytes32)
    token: indexed(address)
    amount: uint256
    defaulted: bytes32
    receiver: address

event DefaultDeclared:
    account: indexed(bytes32)

event AssetParameters:
    token: indexed(address)
    eligible: bool
    haircut_bps: uint256
    price_e8: uint256
    price_from_token: bool

event MaxAgeSet:
    token: indexed(address)
    max_age: uint256


@deploy
def __init__():
    access_control.__init__()
    access_control._grant_role(OPERATOR, msg.sender)
    access_control._grant_role(PARAMETER, msg.sender)
    access_control._grant_role(DEFAULT_MANAGER, msg.sender)


@internal
@view
def _price(token: address) -> uint256:
    asset: Asset = self.assets[token]
    if asset.price_from_token:
        return staticcall i_priced(token).price_e8()
    return asset.price_e8


@internal
@view
def _price_time(token: address) -> uint256:
    if self.assets[token].price_from_token:
        return staticcall i_priced(token).price_time()
    return self.assets[token].priced_at


@internal
@view
def _fresh(token: address) -> bool:
    return block.timestamp <= self._price_time(token) + self.assets[token].max_age


@internal
@view
def _check_fresh(account: bytes32):
    """
    @notice Every eligible asset the account holds has a price within its maximum age.
    """
    for token: address in self.asset_list:
        if self.held[account][token] != 0 and self.assets[token].eligible:
            assert self._fresh(token), "vault: stale price"


@internal
@view
def _value(token: address, amount: uint256) -> uint256:
    """
    @notice Post-haircut value of `amount` base units in micro-USD, rounded down.
    """
    asset: Asset = self.assets[token]
    scale: uint256 = 10 ** (convert(asset.decimals, uint256) + 2) * BPS
    return amount * self._price(token) * (BPS - asset.haircut_bps) // scale


@internal
@view
def _collateral_value(account: bytes32) -> uint256:
    total: uint256 = 0
    for token: address in self.asset_list:
        units: uint256 = self.held[account][token]
        if units != 0 and self.assets[token].eligible:
            total += self._value(token, units)
    return total


@internal
@view
def _account(account: bytes32) -> Account:
    acct: Account = self.accounts[account]
    assert acct.member != empty(address), "vault: unknown account"
    return acct


@external
@view
def value_of(token: address, amount: uint256) -> uint256:
    """
    @notice Post-haircut value of `amount` base units of `token`, micro-USD, rounded down.
    @param token The collateral token.
    @param amount Base units of the token.
    """
    return self._value(token, amount)


@external
@view
def collateral_value(account: bytes32) -> uint256:
    """
    @notice Post-haircut value of the eligible assets the account holds, micro-USD.
    @param account The account's pseudonymous id.
    """
    return self._collateral_value(account)


@external
@view
def collateral_values(accounts: DynArray[bytes32, MAX_VIEW]) -> DynArray[uint256, MAX_VIEW]:
    """
    @notice `collateral_value` of each account in one call (a cycle's valuation of the whole book).
    @param accounts The accounts' pseudonymous ids.
    @return Each account's post-haircut value, micro-USD, in the order given.
    """
    out: DynArray[uint256, MAX_VIEW] = []
    for account: bytes32 in accounts:
        out.append(self._collateral_value(account))
    return out


@external
@view
def holdings(
    accounts: DynArray[bytes32, MAX_VIEW], tokens: DynArray[address, MAX_ASSETS]
) -> DynArray[uint256, MAX_VIEW * MAX_ASSETS]:
    """
    @notice `held` of every account and token in one call (a reconciliation of the whole book).
    @param accounts The accounts' pseudonymous ids.
    @param tokens The collateral tokens.
    @return Base units, account by account, each account's tokens in the order given.
    """
    out: DynArray[uint256, MAX_VIEW * MAX_ASSETS] = []
    for account: bytes32 in accounts:
        for token: address in tokens:
            out.append(self.held[account][token])
    return out


@external
@view
def price_of(token: address) -> uint256:
    """
    @notice The price the vault values `token` at, USD per whole token with 8 decimals.
    @param token The collateral token.
    """
    return self._price(token)


@external
@view
def price_age(token: address) -> uint256:
    """
    @notice Seconds since the price the vault values `token` at was set.
    @param token The collateral token.
    """
    return block.timestamp - min(self._price_time(token), block.timestamp)


@external
@view
def assets_count() -> uint256:
    """
    @notice How many assets the vault has listed (at most MAX_ASSETS).
    """
    return len(self.asset_list)


@external
def set_asset(token: address, eligible: bool, haircut_bps: uint256, price_e8: uint256, price_from_token: bool):
    """
    @notice Parameter role: an asset's eligibility, haircut and price.
    @param token The collateral token (listed on first use; at most MAX_ASSETS).
    @param eligible Whether the asset may be pledged and counts in an account's value.
    @param haircut_bps Haircut in basis points, below 10,000.
    @param price_e8 USD per whole token, 8 decimals; 0 only when the token prices
           itself or the asset is not eligible.
    @param price_from_token True: read the price from the token (fund NAV, bill accretion).
    """
    access_control._check_role(PARAMETER, msg.sender)
    assert haircut_bps < BPS, "vault: haircut must be below 100%"
    assert price_from_token or price_e8 > 0 or not eligible, "vault: eligible asset needs a price"
    asset: Asset = self.assets[token]
    if not self.listed[token]:
        assert len(self.asset_list) < MAX_ASSETS, "vault: too many assets"
        self.listed[token] = True
        self.asset_list.append(token)
        asset.decimals = staticcall IERC20Detailed(token).decimals()
        asset.max_age = DEFAULT_MAX_AGE
    asset.eligible = eligible
    asset.haircut_bps = haircut_bps
    asset.price_e8 = price_e8
    asset.price_from_token = price_from_token
    asset.priced_at = block.timestamp
    self.assets[token] = asset
    log AssetParameters(token=token, eligible=eligible, haircut_bps=haircut_bps, price_e8=price_e8, price_from_token=price_from_token)


@external
def set_prices(tokens: DynArray[address, MAX_ASSETS], prices_e8: DynArray[uint256, MAX_ASSETS]):
    """
    @notice Parameter role: new prices of listed assets that do not price themselves.
    @param tokens Listed collateral tokens.
    @param prices_e8 USD per whole token, 8 decimals, each above zero.
    """
    access_control._check_role(PARAMETER, msg.sender)
    assert len(tokens) == len(prices_e8), "vault: tokens and prices differ in length"
    for i: uint256 in range(len(tokens), bound=MAX_ASSETS):
        assert self.listed[tokens[i]], "vault: asset not listed"
        asset: Asset = self.assets[tokens[i]]
        assert not asset.price_from_token, "vault: asset prices itself"
        assert prices_e8[i] > 0, "vault: price must be positive"
        asset.price_e8 = prices_e8[i]
        asset.priced_at = block.timestamp
        self.assets[tokens[i]] = asset
        log AssetParameters(token=tokens[i], eligible=asset.eligible, haircut_bps=asset.haircut_bps, price_e8=prices_e8[i], price_from_token=False)


@external
def set_max_age(token: address, max_age: uint256):
    """
    @notice Parameter role: how old (seconds) the asset's price may be before the
            releases and substitutions that depend on it are refused.
    @param token A listed collateral token.
    @param max_age Seconds, above zero.
    """
    access_control._check_role(PARAMETER, msg.sender)
    assert self.listed[token], "vault: asset not listed"
    assert max_age > 0, "vault: maximum age must be positive"
    self.assets[token].max_age = max_age
    log MaxAgeSet(token=token, max_age=max_age)


@external
def open_account(account: bytes32, member: address, segregation: uint8):
    """
    @notice Operator opens an account; an id is never reused.
    @param account The account's pseudonymous 32-byte id.
    @param member The member's wallet, the only one that may pledge or substitute.
    @param segregation 1 (house), 2 (customer) or 3 (default fund).
    """
    access_control._check_role(OPERATOR, msg.sender)
    assert account != empty(bytes32), "vault: empty account id"
    assert member != empty(address), "vault: zero member address"
    assert segregation == HOUSE or segregation == CUSTOMER or segregation == DEFAULT_FUND, "vault: segregation must be 1 (house), 2 (customer) or 3 (default fund)"
    assert self.accounts[account].member == empty(address), "vault: account exists"
    self.accounts[account] = Account(member=member, segregation=segregation, defaulted=False)
    log AccountOpened(account=account, member=member, segregation=segregation)


@external
def set_requirements(
    key: bytes32, accounts: DynArray[bytes32, MAX_FLOORS], floors: DynArray[uint256, MAX_FLOORS],
    commitments: DynArray[bytes32, MAX_FLOORS]
) -> bool:
    """
    @notice Operator posts each account's floor, the post-haircut value releases
            may not break, and a commitment to its exact requirement.
    @param key Idempotency key of this posting (one per cycle and chunk).
    @param accounts Open accounts.
    @param floors Micro-USD per account.
    @param commitments keccak256(abi.encode(requirement_micro_usd, salt)) per account.
    @return False when `key` was already carried out (no second effect).
    """
    access_control._check_role(OPERATOR, msg.sender)
    if not idempotency._claim(key, "floors", keccak256(abi_encode("floors", accounts, floors, commitments))):
        return False
    assert len(accounts) == len(floors) and len(accounts) == len(commitments), "vault: accounts, floors and commitments differ in length"
    for i: uint256 in range(len(accounts), bound=MAX_FLOORS):
        self._account(accounts[i])
        self.required_floor[accounts[i]] = floors[i]
        self.commitment[accounts[i]] = commitments[i]
        log RequirementPosted(account=accounts[i], floor=floors[i], commitment=commitments[i])
    return True


@external
@view
def verify_requirement(account: bytes32, requirement: uint256, salt: bytes32) -> bool:
    """
    @notice True when (requirement, salt) opens the account's commitment.
    @param account The account's pseudonymous id.
    @param requirement The requirement revealed, micro-USD.
    @param salt The 32-byte salt revealed with it.
    """
    return keccak256(abi_encode(requirement, salt)) == self.commitment[account]


@external
@nonreentrant
def pledge(key: bytes32, account: bytes32, token: address, amount: uint256) -> bool:
    """
    @notice The account's member pledges `amount` base units of `token`.
    @param key Idempotency key of the instruction.
    @param account The account's pseudonymous id.
    @param token An eligible collateral token.
    @param amount Base units, above zero.
    @return False when `key` was already carried out (no second effect).
    """
    if not idempotency._claim(key, "pledge", keccak256(abi_encode("pledge", account, token, amount))):
        return False
    acct: Account = self._account(account)
    assert msg.sender == acct.member, "vault: only the account's member may pledge"
    assert self.assets[token].eligible, "vault: asset not eligible"
    assert amount > 0, "vault: amount must be positive"
    self.held[account][token] += amount
    self.total_held[token] += amount
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "vault: token transfer failed"
    log Pledged(key=key, account=account, token=token, amount=amount)
    return True


@external
@nonreentrant
def release(key: bytes32, account: bytes32, token: address, amount: uint256) -> bool:
    """
    @notice Operator releases collateral to the account's member; the account
            must still cover its floor afterwards.
    @param key Idempotency key of the instruction.
    @param account The account's pseudonymous id.
    @param token The collateral token.
    @param amount Base units.
    @return False when `key` was already carried out (no second effect).
    """
    access_control._check_role(OPERATOR, msg.sender)
    if not idempotency._claim(key, "release", keccak256(abi_encode("release", account, token, amount))):
        return False
    acct: Account = self._account(account)
    assert not acct.defaulted, "vault: account in default"
    assert self.held[account][token] >= amount, "vault: amount exceeds the account's holding"
    self.held[account][token] -= amount
    self.total_held[token] -= amount
    self._check_fresh(account)
    assert self._collateral_value(account) >= self.required_floor[account], "vault: release would breach the requirement"
    assert extcall IERC20(token).transfer(acct.member, amount, default_return_value=True), "vault: token transfer failed"
    log Released(key=key, account=account, token=token, amount=amount, receiver=acct.member)
    return True


@external
@nonreentrant
def substitute(
    key: bytes32, account: bytes32, token_out: address, amount_out: uint256, token_in: address, amount_in: uint256
) -> bool:
    """
    @notice The member swaps pledged `token_out` for `token_in` in one step;
            accepted only if the new asset's post-haircut value covers what
            the old one did.
    @param key Idempotency key of the instruction.
    @param account The account's pseudonymous id.
    @param token_out The pledged token taken out; `amount_out` its base units.
    @param token_in The eligible token put in; `amount_in` its base units.
    @return False when `key` was already carried out (no second effect).
    """
    if not idempotency._claim(key, "substitute", keccak256(abi_encode("substitute", account, token_out, amount_out, token_in, amount_in))):
        return False
    acct: Account = self._account(account)
    assert msg.sender == acct.member, "vault: only the account's member may substitute"
    assert not acct.defaulted, "vault: account in default"
    assert self.assets[token_in].eligible, "vault: asset not eligible"
    assert self.held[account][token_out] >= amount_out, "vault: amount exceeds the account's holding"
    assert self._fresh(token_in) and self._fresh(token_out), "vault: stale price"
    assert self._value(token_in, amount_in) >= self._value(token_out, amount_out), "vault: substitute does not cover the asset it replaces"
    self.held[account][token_out] -= amount_out
    self.total_held[token_out] -= amount_out
    self.held[account][token_in] += amount_in
    self.total_held[token_in] += amount_in
    assert extcall IERC20(token_in).transferFrom(msg.sender, self, amount_in, default_return_value=True), "vault: token transfer failed"
    assert extcall IERC20(token_out).transfer(msg.sender, amount_out, default_return_value=True), "vault: token transfer failed"
    log Substituted(key=key, account=account, token_out=token_out, amount_out=amount_out, token_in=token_in, amount_in=amount_in)
    return True


@external
def declare_default(account: bytes32):
    """
    @notice Default manager declares the account in default: no more releases or
            substitutions; its collateral may be seized. Declaring it again is a no-op.
    @param account The account's pseudonymous id.
    """
    access_control._check_role(DEFAULT_MANAGER, msg.sender)
    acct: Account = self._account(account)
    if acct.defaulted:
        return
    acct.defaulted = True
    self.accounts[account] = acct
    log DefaultDeclared(account=account)


@external
@nonreentrant
def seize(key: bytes32, account: bytes32, token: address, amount: uint256, receiver: address) -> bool:
    """
    @notice Default manager takes a defaulted account's collateral.
    @param key Idempotency key of the instruction.
    @param account The account's pseudonymous id (in default).
    @param token The collateral token; `amount` its base units.
    @param receiver Where the seized units go (the default manager's wallet).
    @return False when `key` was already carried out (no second effect).
    """
    access_control._check_role(DEFAULT_MANAGER, msg.sender)
    if not idempotency._claim(key, "seize", keccak256(abi_encode("seize", account, token, amount, receiver))):
        return False
    acct: Account = self._account(account)
    assert acct.defaulted, "vault: account not in default"
    assert self.held[account][token] >= amount, "vault: amount exceeds the account's holding"
    self.held[account][token] -= amount
    self.total_held[token] -= amount
    assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), "vault: token transfer failed"
    log Seized(key=key, account=account, token=token, amount=amount, receiver=receiver)
    return True


@external
@nonreentrant
def port(key: bytes32, account: bytes32, token: address, amount: uint256, to_account: bytes32) -> bool:
    """
    @notice Default manager moves a defaulted member's customer collateral to
            the customer's account at a surviving member (porting): the
            units never leave the vault.
    @param key Idempotency key of the instruction.
    @param account The customer account in default.
    @param token The collateral token; `amount` its base units.
    @param to_account An open customer account of another member, not in default.
    @return False when `key` was already carried out (no second effect).
    """
    access_control._check_role(DEFAULT_MANAGER, msg.sender)
    if not idempotency._claim(key, "port", keccak256(abi_encode("port", account, token, amount, to_account))):
        return False
    source: Account = self._account(account)
    target: Account = self._account(to_account)
    assert source.defaulted, "vault: account not in default"
    assert source.segregation == CUSTOMER and target.segregation == CUSTOMER, "vault: only customer accounts are ported"
    assert not target.defaulted, "vault: receiving account in default"
    assert target.member != source.member, "vault: porting stays with the defaulted member"
    assert self.held[account][token] >= amount, "vault: amount exceeds the account's holding"
    self.held[account][token] -= amount
    self.held[to_account][token] += amount
    log Ported(key=key, account=account, token=token, amount=amount, to_account=to_account)
    return True


@external
@nonreentrant
def apply_fund(key: bytes32, account: bytes32, token: address, amount: uint256, defaulted: bytes32, receiver: address) -> bool:
    """
    @notice Default manager uses a default-fund contribution (or the clearing
            house's own capital, held the same way) towards the loss of a
            declared default.
    @param key Idempotency key of the instruction.
    @param account A default-fund account.
    @param token The token it holds; `amount` its base units.
    @param defaulted The defaulted account whose loss it meets.
    @param receiver Where the units go (the default manager's liquidation wallet).
    @return False when `key` was already carried out (no second effect).
    """
    access_control._check_role(DEFAULT_MANAGER, msg.sender)
    if not idempotency._claim(key, "apply_fund", keccak256(abi_encode("apply_fund", account, token, amount, defaulted, receiver))):
        return False
    assert self._account(account).segregation == DEFAULT_FUND, "vault: not a default-fund account"
    assert self._account(defaulted).defaulted, "vault: no declared default"
    assert self.held[account][token] >= amount, "vault: amount exceeds the account's holding"
    self.held[account][token] -= amount
    self.total_held[token] -= amount
    assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), "vault: token transfer failed"
    log FundApplied(key=key, account=account, token=token, amount=amount, defaulted=defaulted, receiver=receiver)
    return True
