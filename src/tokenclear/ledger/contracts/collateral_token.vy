# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Permissioned collateral token
@notice A stablecoin (6 decimals) or a wrapped crypto asset (BTC 8,
        ETH 18) that only allow-listed holders may hold.
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


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8, registry_: i_registry):
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
    access_control.__init__()
    permissioned.__init__(registry_)
