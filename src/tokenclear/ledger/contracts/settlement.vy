# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Atomic settlement: delivery versus payment and batches
@notice The clearing house's settler submits instructions; the parties
        have authorised this contract to debit them (ERC-20 allowance),
        as members authorise a CCP's direct debit today. A DvP moves the
        asset and the cash together or not at all; a batch of legs
        settles all-or-nothing (Daml Finance's batch semantics): any leg
        that fails reverts every leg.
"""
from ethereum.ercs import IERC20
import i_batch_token
from snekmate.auth import access_control
import idempotency

initializes: access_control
initializes: idempotency
exports: (access_control.__interface__, idempotency.instruction, idempotency.claimed)

SETTLER: public(constant(bytes32)) = keccak256("SETTLER")
MAX_LEGS: constant(uint256) = 512
MAX_BATCH: public(constant(uint256)) = 1024

struct Leg:
    token: address
    sender: address
    receiver: address
    amount: uint256

event DvPSettled:
    key: indexed(bytes32)
    asset: indexed(address)
    seller: address
    asset_amount: uint256
    cash: indexed(address)
    buyer: address
    cash_amount: uint256

event BatchSettled:
    key: indexed(bytes32)
    legs: uint256


@deploy
def __init__():
    access_control.__init__()
    access_control._grant_role(SETTLER, msg.sender)


@external
@nonreentrant
def dvp(
    key: bytes32, asset: address, seller: address, asset_amount: uint256,
    cash: address, buyer: address, cash_amount: uint256
) -> bool:
    """
    @notice Seller delivers `asset_amount` of `asset` to the buyer, who pays
            `cash_amount` of `cash`; both or neither.
    @return False when `key` was already carried out.
    @param key Idempotency key of the instruction.
    @param asset The token delivered; `asset_amount` its base units.
    @param seller The wallet delivering the asset (it approved this contract).
    @param cash The token paid; `cash_amount` its base units.
    @param buyer The wallet paying (it approved this contract).
    """
    access_control._check_role(SETTLER, msg.sender)
    digest: bytes32 = keccak256(abi_encode("dvp", asset, seller, asset_amount, cash, buyer, cash_amount))
    if not idempotency._claim(key, "dvp", digest):
        return False
    assert extcall IERC20(asset).transferFrom(seller, buyer, asset_amount, default_return_value=True), "settlement: token transfer failed"
    assert extcall IERC20(cash).transferFrom(buyer, seller, cash_amount, default_return_value=True), "settlement: token transfer failed"
    log DvPSettled(key=key, asset=asset, seller=seller, asset_amount=asset_amount, cash=cash, buyer=buyer, cash_amount=cash_amount)
    return True


@external
@nonreentrant
def settle_batch(key: bytes32, legs: DynArray[Leg, MAX_LEGS]) -> bool:
    """
    @notice Settle every leg or none.
    @return False when `key` was already carried out.
    @param key Idempotency key of the batch.
    @param legs Token, sender, receiver and base units of each leg (at most MAX_LEGS).
    """
    access_control._check_role(SETTLER, msg.sender)
    if not idempotency._claim(key, "batch", keccak256(abi_encode(legs))):
        return False
    for leg: Leg in legs:
        assert extcall IERC20(leg.token).transferFrom(leg.sender, leg.receiver, leg.amount, default_return_value=True), "settlement: token transfer failed"
    log BatchSettled(key=key, legs=len(legs))
    return True


@external
@nonreentrant
def settle_token_batch(
    key: bytes32, token: i_batch_token, senders: DynArray[address, MAX_BATCH],
    receivers: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]
) -> bool:
    """
    @notice Settle many legs in one token all-or-nothing through the token's
            own batch transfer: one external call instead of one per leg.
    @return False when `key` was already carried out.
    @param key Idempotency key of the batch (one per chunk: `key#i`).
    @param token The token every leg moves.
    @param senders The paying wallets.
    @param receivers The receiving wallets.
    @param amounts Base units per leg (at most MAX_BATCH legs).
    """
    access_control._check_role(SETTLER, msg.sender)
    if not idempotency._claim(key, "token_batch", keccak256(abi_encode(token, senders, receivers, amounts))):
        return False
    assert extcall token.transfer_batch_from(senders, receivers, amounts), "settlement: batch transfer failed"
    log BatchSettled(key=key, legs=len(senders))
    return True
