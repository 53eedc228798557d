# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Segregated collateral vault
@notice Holds pledged collateral per account; an account belongs to one
        member and is either HOUSE (1) or CUSTOMER (2), and nothing moves
        between accounts, so customer collateral never meets a house
        default. Accounts are known only by pseudonymous 32-byte ids.
        The clearing house's parameter role keeps each asset's price and
        haircut on chain; an account's floor is the post-haircut value
        (micro-USD, 6 decimals) that releases and substitutions may not
        break. Every instruction carries an idempotency key.
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from snekmate.auth import access_control
import idempotency
import i_priced

initializes: access_control
initializes: idempotency
exports: (access_control.__interface__, idempotency.instruction)

OPERATOR: public(constant(bytes32)) = keccak256("OPERATOR")
PARAMETER: public(constant(bytes32)) = keccak256("PARAMETER")
DEFAULT_MANAGER: public(constant(bytes32)) = keccak256("DEFAULT_MANAGER")

HOUSE: constant(uint8) = 1
CUSTOMER: constant(uint8) = 2
MAX_ASSETS: constant(uint256) = 16
BPS: constant(uint256) = 10_000

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

event DefaultDeclared:
    account: indexed(bytes32)

event AssetParameters:
    token: indexed(address)
    eligible: bool
    haircut_bps: uint256
    price_e8: uint256
    price_from_token: bool


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
        if units != 0:
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
    return self._value(token, amount)


@external
@view
def collateral_value(account: bytes32) -> uint256:
    """
    @notice Post-haircut value of everything the account holds, micro-USD.
    """
    return self._collateral_value(account)


@external
@view
def price_of(token: address) -> uint256:
    return self._price(token)


@external
@view
def assets_count() -> uint256:
    return len(self.asset_list)


@external
def set_asset(token: address, eligible: bool, haircut_bps: uint256, price_e8: uint256, price_from_token: bool):
    """
    @notice Parameter role: an asset's eligibility, haircut (bps) and price
            (USD per whole token, 8 decimals; or read from the token itself).
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
    asset.eligible = eligible
    asset.haircut_bps = haircut_bps
    asset.price_e8 = price_e8
    asset.price_from_token = price_from_token
    self.assets[token] = asset
    log AssetParameters(token=token, eligible=eligible, haircut_bps=haircut_bps, price_e8=price_e8, price_from_token=price_from_token)


@external
def set_prices(tokens: DynArray[address, MAX_ASSETS], prices_e8: DynArray[uint256, MAX_ASSETS]):
    access_control._check_role(PARAMETER, msg.sender)
    assert len(tokens) == len(prices_e8), "vault: tokens and prices differ in length"
    for i: uint256 in range(len(tokens), bound=MAX_ASSETS):
        asset: Asset = self.assets[tokens[i]]
        assert asset.eligible, "vault: unknown asset"
        asset.price_e8 = prices_e8[i]
        self.assets[tokens[i]] = asset
        log AssetParameters(token=tokens[i], eligible=True, haircut_bps=asset.haircut_bps, price_e8=prices_e8[i], price_from_token=asset.price_from_token)


@external
def open_account(account: bytes32, member: address, segregation: uint8):
    access_control._check_role(OPERATOR, msg.sender)
    assert account != empty(bytes32), "vault: empty account id"
    assert member != empty(address), "vault: zero member address"
    assert segregation == HOUSE or segregation == CUSTOMER, "vault: segregation must be 1 (house) or 2 (customer)"
    assert self.accounts[account].member == empty(address), "vault: account exists"
    self.accounts[account] = Account(member=member, segregation=segregation, defaulted=False)
    log AccountOpened(account=account, member=member, segregation=segregation)


@external
def set_requirement(account: bytes32, floor_: uint256, commitment: bytes32):
    """
    @notice Operator posts the account's floor (micro-USD) and a commitment
            keccak256(abi.encode(requirement, salt)) to the exact requirement.
    """
    access_control._check_role(OPERATOR, msg.sender)
    self._account(account)
    self.required_floor[account] = floor_
    self.commitment[account] = commitment
    log RequirementPosted(account=account, floor=floor_, commitment=commitment)


@external
@view
def verify_requirement(account: bytes32, requirement: uint256, salt: bytes32) -> bool:
    """
    @notice True when (requirement, salt) opens the account's commitment.
    """
    return keccak256(abi_encode(requirement, salt)) == self.commitment[account]


@external
@nonreentrant
def pledge(key: bytes32, account: bytes32, token: address, amount: uint256) -> bool:
    """
    @notice The account's member pledges `amount` base units of `token`.
    @return False when `key` was already carried out (no second effect).
    """
    acct: Account = self._account(account)
    assert msg.sender == acct.member, "vault: only the account's member may pledge"
    assert self.assets[token].eligible, "vault: asset not eligible"
    assert amount > 0, "vault: amount must be positive"
    if not idempotency._claim(key, keccak256(abi_encode("pledge", account, token, amount))):
        return False
    self.held[account][token] += amount
    self.total_held[token] += amount
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True)
    log Pledged(key=key, account=account, token=token, amount=amount)
    return True


@external
@nonreentrant
def release(key: bytes32, account: bytes32, token: address, amount: uint256) -> bool:
    """
    @notice Operator releases collateral to the account's member; the account
            must still cover its floor afterwards.
    """
    access_control._check_role(OPERATOR, msg.sender)
    acct: Account = self._account(account)
    assert not acct.defaulted, "vault: account in default"
    if not idempotency._claim(key, keccak256(abi_encode("release", account, token, amount))):
        return False
    assert self.held[account][token] >= amount, "vault: amount exceeds the account's holding"
    self.held[account][token] -= amount
    self.total_held[token] -= amount
    assert self._collateral_value(account) >= self.required_floor[account], "vault: release would breach the requirement"
    assert extcall IERC20(token).transfer(acct.member, amount, default_return_value=True)
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
    """
    acct: Account = self._account(account)
    assert msg.sender == acct.member, "vault: only the account's member may substitute"
    assert not acct.defaulted, "vault: account in default"
    assert self.assets[token_in].eligible, "vault: asset not eligible"
    if not idempotency._claim(key, keccak256(abi_encode("substitute", account, token_out, amount_out, token_in, amount_in))):
        return False
    assert self.held[account][token_out] >= amount_out, "vault: amount exceeds the account's holding"
    assert self._value(token_in, amount_in) >= self._value(token_out, amount_out), "vault: substitute does not cover the asset it replaces"
    self.held[account][token_out] -= amount_out
    self.total_held[token_out] -= amount_out
    self.held[account][token_in] += amount_in
    self.total_held[token_in] += amount_in
    assert extcall IERC20(token_in).transferFrom(msg.sender, self, amount_in, default_return_value=True)
    assert extcall IERC20(token_out).transfer(msg.sender, amount_out, default_return_value=True)
    log Substituted(key=key, account=account, token_out=token_out, amount_out=amount_out, token_in=token_in, amount_in=amount_in)
    return True


@external
def declare_default(account: bytes32):
    access_control._check_role(DEFAULT_MANAGER, msg.sender)
    acct: Account = self._account(account)
    acct.defaulted = True
    self.accounts[account] = acct
    log DefaultDeclared(account=account)


@external
@nonreentrant
def seize(key: bytes32, account: bytes32, token: address, amount: uint256, receiver: address) -> bool:
    """
    @notice Default manager takes a defaulted account's collateral.
    """
    access_control._check_role(DEFAULT_MANAGER, msg.sender)
    acct: Account = self._account(account)
    assert acct.defaulted, "vault: account not in default"
    if not idempotency._claim(key, keccak256(abi_encode("seize", account, token, amount, receiver))):
        return False
    assert self.held[account][token] >= amount, "vault: amount exceeds the account's holding"
    self.held[account][token] -= amount
    self.total_held[token] -= amount
    assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True)
    log Seized(key=key, account=account, token=token, amount=amount, receiver=receiver)
    return True
