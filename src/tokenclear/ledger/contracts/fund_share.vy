# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Tokenized money-market-fund share
@notice Two yield models. ACCRUING (1): the share's NAV (USD per share,
        8 decimals) rises with the fund's income, as USDY does. DIVIDEND
        (2): NAV stays at 1.00 and the income is paid in new units, as
        BUIDL and BENJI do. Every NAV update is bounded in time: within a
        UTC day the NAV stays within max_move_bps of the day's opening NAV,
        however many updates are sent (a per-call bound lets many small
        calls walk the NAV anywhere).
"""
from snekmate.auth import ownable
from snekmate.auth import access_control
from snekmate.tokens import erc20
import permissioned
import i_registry

initializes: ownable
initializes: erc20[ownable := ownable]
initializes: access_control
initializes: permissioned[erc20 := erc20, access_control := access_control]

exports: (
    erc20.balanceOf, erc20.totalSupply, erc20.allowance, erc20.approve,
    erc20.name, erc20.symbol, erc20.decimals, erc20.permit, erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    access_control.__interface__,
    permissioned.__interface__,
)

ACCRUING: constant(uint8) = 1
DIVIDEND: constant(uint8) = 2
NAV_AGENT: public(constant(bytes32)) = keccak256("NAV_AGENT")

yield_model: public(immutable(uint8))
max_move_bps: public(immutable(uint256))
nav_e8: public(uint256)
nav_time: public(uint256)
DAY: constant(uint256) = 86_400
day_open_e8: public(uint256)  # the NAV the current UTC day opened at
day_index: public(uint256)  # block.timestamp // DAY of the last update

event NavUpdated:
    previous_e8: uint256
    nav_e8: uint256
    timestamp: uint256

event DividendPaid:
    holder: indexed(address)
    units: uint256
    record_date: uint256


@deploy
def __init__(
    name_: String[25], symbol_: String[5], decimals_: uint8, registry_: i_registry,
    yield_model_: uint8, nav_e8_: uint256, max_move_bps_: uint256
):
    assert yield_model_ == ACCRUING or yield_model_ == DIVIDEND, "fund: unknown yield model"
    assert nav_e8_ > 0, "fund: NAV must be positive"
    assert max_move_bps_ > 0 and max_move_bps_ < 10_000, "fund: bound must be in (0, 10000) bps"
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
    access_control.__init__()
    permissioned.__init__(registry_)
    access_control._grant_role(NAV_AGENT, msg.sender)
    yield_model = yield_model_
    max_move_bps = max_move_bps_
    self.nav_e8 = nav_e8_
    self.nav_time = block.timestamp
    self.day_open_e8 = nav_e8_
    self.day_index = block.timestamp // DAY


@external
@view
def price_time() -> uint256:
    """
    @notice When the NAV was last published (unix seconds).
    """
    return self.nav_time


@external
@view
def price_e8() -> uint256:
    """
    @notice USD per whole share, 8 decimals: the NAV.
    """
    return self.nav_e8


@external
def set_nav(nav_e8_: uint256):
    """
    @notice Publish a new NAV per share (accruing model only). Reverts when it
            moves by more than max_move_bps from the previous NAV.
    @param nav_e8_ The new NAV, USD per share with 8 decimals, within the move bound.
    """
    access_control._check_role(NAV_AGENT, msg.sender)
    assert yield_model == ACCRUING, "fund: NAV is fixed in the dividend model"
    previous: uint256 = self.nav_e8
    today: uint256 = block.timestamp // DAY
    if today != self.day_index:
        self.day_index = today
        self.day_open_e8 = previous
    opening: uint256 = self.day_open_e8
    move: uint256 = max(nav_e8_, opening) - min(nav_e8_, opening)
    assert move * 10_000 <= opening * max_move_bps, "fund: NAV move exceeds the daily bound"
    self.nav_e8 = nav_e8_
    self.nav_time = block.timestamp
    log NavUpdated(previous_e8=previous, nav_e8=nav_e8_, timestamp=block.timestamp)


@external
def pay_dividend(holders: DynArray[address, 256], units: DynArray[uint256, 256], record_date: uint256):
    """
    @notice Pay the day's income as new units (dividend model only, issuer only).
    @param holders Wallets paid.
    @param units New shares per holder (base units).
    @param record_date Unix time of the record date.
    """
    access_control._check_role(permissioned.ISSUER, msg.sender)
    assert yield_model == DIVIDEND, "fund: NAV accrues in the accruing model"
    assert len(holders) == len(units), "fund: holders and units differ in length"
    for i: uint256 in range(len(holders), bound=256):
        erc20._mint(holders[i], units[i])
        log DividendPaid(holder=holders[i], units=units[i], record_date=record_date)
