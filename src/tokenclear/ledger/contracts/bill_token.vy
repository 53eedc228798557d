# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Tokenized Treasury bill
@notice One token is one USD of face value. The price accretes from the
        issue price to par in a straight line in time, which is exact for
        a bill quoted on the bank-discount basis: P = F (1 - d t / 360).
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

PAR_E8: constant(uint256) = 10**8

issue_price_e8: public(immutable(uint256))
issue_time: public(immutable(uint256))
maturity: public(immutable(uint256))


@deploy
def __init__(
    name_: String[25], symbol_: String[5], decimals_: uint8, registry_: i_registry,
    issue_price_e8_: uint256, maturity_: uint256
):
    assert issue_price_e8_ > 0 and issue_price_e8_ <= PAR_E8, "bill: issue price must be in (0, par]"
    assert maturity_ > block.timestamp, "bill: maturity must be in the future"
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
    access_control.__init__()
    permissioned.__init__(registry_)
    issue_price_e8 = issue_price_e8_
    issue_time = block.timestamp
    maturity = maturity_


@external
@view
def price_time() -> uint256:
    """
    @notice The accreted price is computed now: it is never stale.
    """
    return block.timestamp


@external
@view
def price_e8() -> uint256:
    """
    @notice USD per token (one USD face), 8 decimals, accreted to now.
    """
    now: uint256 = min(block.timestamp, maturity)
    return issue_price_e8 + (PAR_E8 - issue_price_e8) * (now - issue_time) // (maturity - issue_time)
