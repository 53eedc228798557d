# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Identity and eligibility registry
@notice The clearing house's allow-list: which addresses may hold its
        permissioned collateral tokens. A holder carries a class
        (1 member, 2 clearing house, 3 settlement contract, 4 custodian).
        Written for tokenclear; ERC-3643's identity-registry idea.
"""
from snekmate.auth import access_control
initializes: access_control
exports: access_control.__interface__

REGISTRAR: public(constant(bytes32)) = keccak256("REGISTRAR")

holder_class: public(HashMap[address, uint8])

event HolderRegistered:
    holder: indexed(address)
    holder_class: uint8

event HolderRemoved:
    holder: indexed(address)


@deploy
def __init__():
    access_control.__init__()
    access_control._grant_role(REGISTRAR, msg.sender)


@external
@view
def is_verified(holder: address) -> bool:
    """
    @notice Whether `holder` is on the allow-list (any class).
    @param holder A wallet.
    """
    return self.holder_class[holder] != 0


@external
@view
def all_verified(holders: DynArray[address, 1024]) -> bool:
    """
    @notice True when every address in `holders` is on the registry (one call per batch).
    @param holders Wallets (at most 1,024).
    """
    for holder: address in holders:
        if self.holder_class[holder] == 0:
            return False
    return True


@external
def register(holder: address, holder_class: uint8):
    """
    @notice Registrar puts a wallet on the allow-list with a class.
    @param holder A wallet.
    @param holder_class 1 member, 2 clearing house, 3 settlement contract (0 is reserved).
    """
    access_control._check_role(REGISTRAR, msg.sender)
    assert holder != empty(address), "registry: zero address"
    assert holder_class != 0, "registry: class 0 is reserved"
    self.holder_class[holder] = holder_class
    log HolderRegistered(holder=holder, holder_class=holder_class)


@external
def register_many(holders: DynArray[address, 256], holder_class: uint8):
    """
    @notice Registrar puts many wallets on the allow-list with one class.
    @param holders Wallets (at most 256).
    @param holder_class As in register.
    """
    access_control._check_role(REGISTRAR, msg.sender)
    assert holder_class != 0, "registry: class 0 is reserved"
    for holder: address in holders:
        assert holder != empty(address), "registry: zero address"
        self.holder_class[holder] = holder_class
        log HolderRegistered(holder=holder, holder_class=holder_class)


@external
def remove(holder: address):
    """
    @notice Registrar takes a wallet off the allow-list.
    @param holder A wallet.
    """
    access_control._check_role(REGISTRAR, msg.sender)
    self.holder_class[holder] = 0
    log HolderRemoved(holder=holder)
