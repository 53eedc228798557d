# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Hashed time-lock contract
@notice One side of a cross-chain atomic swap. The initiator locks
        tokens for the receiver under sha256(secret) until `timelock`;
        the receiver claims with the secret (which the Claimed event then
        reveals to the other chain), or the sender refunds after expiry.
        The responder's lock must expire well before the initiator's:
        the client checks the ordering before it locks.
"""
from ethereum.ercs import IERC20

LOCKED: constant(uint8) = 1
CLAIMED: constant(uint8) = 2
REFUNDED: constant(uint8) = 3

struct Lock:
    token: address
    sender: address
    receiver: address
    amount: uint256
    hashlock: bytes32
    timelock: uint256
    state: uint8

locks: public(HashMap[bytes32, Lock])

event Locked:
    lock_id: indexed(bytes32)
    token: address
    sender: indexed(address)
    receiver: indexed(address)
    amount: uint256
    hashlock: bytes32
    timelock: uint256

event Claimed:
    lock_id: indexed(bytes32)
    secret: bytes32

event Refunded:
    lock_id: indexed(bytes32)


@external
@nonreentrant
def lock(token: address, receiver: address, amount: uint256, hashlock: bytes32, timelock: uint256) -> bytes32:
    """
    @notice Lock `amount` of `token` for `receiver` until `timelock`, claimable with the preimage of `hashlock`.
    @param token The token locked.
    @param receiver Who may claim.
    @param amount Base units.
    @param hashlock sha256 of the secret.
    @param timelock Unix time after which the sender may refund.
    """
    assert timelock > block.timestamp, "htlc: timelock must be in the future"
    assert amount > 0, "htlc: amount must be positive"
    lock_id: bytes32 = keccak256(abi_encode(token, msg.sender, receiver, amount, hashlock, timelock))
    assert self.locks[lock_id].state == 0, "htlc: lock exists"
    self.locks[lock_id] = Lock(
        token=token, sender=msg.sender, receiver=receiver, amount=amount,
        hashlock=hashlock, timelock=timelock, state=LOCKED
    )
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "htlc: token transfer failed"
    log Locked(lock_id=lock_id, token=token, sender=msg.sender, receiver=receiver, amount=amount, hashlock=hashlock, timelock=timelock)
    return lock_id


@external
@nonreentrant
def claim(lock_id: bytes32, secret: bytes32):
    """
    @notice The receiver claims with the secret, before the timelock (revealing it on chain).
    @param lock_id The lock's id.
    @param secret The 32-byte preimage of the hashlock.
    """
    lk: Lock = self.locks[lock_id]
    assert lk.state == LOCKED, "htlc: not locked"
    assert block.timestamp < lk.timelock, "htlc: lock expired"
    assert sha256(secret) == lk.hashlock, "htlc: wrong secret"
    self.locks[lock_id].state = CLAIMED
    assert extcall IERC20(lk.token).transfer(lk.receiver, lk.amount, default_return_value=True), "htlc: token transfer failed"
    log Claimed(lock_id=lock_id, secret=secret)


@external
@nonreentrant
def refund(lock_id: bytes32):
    """
    @notice The sender takes the units back once the timelock has passed.
    @param lock_id The lock's id.
    """
    lk: Lock = self.locks[lock_id]
    assert lk.state == LOCKED, "htlc: not locked"
    assert block.timestamp >= lk.timelock, "htlc: lock not expired"
    self.locks[lock_id].state = REFUNDED
    assert extcall IERC20(lk.token).transfer(lk.sender, lk.amount, default_return_value=True), "htlc: token transfer failed"
    log Refunded(lock_id=lock_id)
