# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Permissioned collateral token (module)
@notice Transfer rules for a collateral token a clearing house accepts:
        holders must be on the clearing house's identity registry; an
        agent can freeze a wallet fully or in part, pause the token,
        force a transfer or recover a lost wallet, each with an on-chain
        reason code; a pre-check returns a restriction code (ERC-1404
        style); the issuer mints and burns. Ideas from ERC-3643 and
        ERC-1404, written fresh on snekmate's ERC-20.
"""
from snekmate.tokens import erc20
from snekmate.auth import access_control
from snekmate.utils import pausable
import i_registry

uses: erc20
uses: access_control
initializes: pausable

ISSUER: public(constant(bytes32)) = keccak256("ISSUER")
AGENT: public(constant(bytes32)) = keccak256("AGENT")

OK: constant(uint8) = 0
PAUSED: constant(uint8) = 1
SENDER_NOT_ALLOWED: constant(uint8) = 2
RECEIVER_NOT_ALLOWED: constant(uint8) = 3
SENDER_FROZEN: constant(uint8) = 4
RECEIVER_FROZEN: constant(uint8) = 5
AMOUNT_FROZEN: constant(uint8) = 6
INSUFFICIENT_BALANCE: constant(uint8) = 7

MAX_BATCH: constant(uint256) = 1024

registry: public(i_registry)
frozen: public(HashMap[address, bool])
frozen_amount: public(HashMap[address, uint256])

event Frozen:
    holder: indexed(address)
    status: bool
    agent: indexed(address)

event PartiallyFrozen:
    holder: indexed(address)
    amount: uint256
    agent: indexed(address)

event ForcedTransfer:
    sender: indexed(address)
    receiver: indexed(address)
    amount: uint256
    reason: bytes32
    agent: indexed(address)

event WalletRecovered:
    lost: indexed(address)
    replacement: indexed(address)
    amount: uint256
    reason: bytes32

event Issued:
    holder: indexed(address)
    amount: uint256

event Redeemed:
    holder: indexed(address)
    amount: uint256


@deploy
def __init__(registry_: i_registry):
    pausable.__init__()
    self.registry = registry_
    access_control._grant_role(ISSUER, msg.sender)
    access_control._grant_role(AGENT, msg.sender)


@internal
@view
def _restriction(sender: address, receiver: address, amount: uint256) -> uint8:
    if pausable.paused:
        return PAUSED
    if not staticcall self.registry.is_verified(sender):
        return SENDER_NOT_ALLOWED
    if not staticcall self.registry.is_verified(receiver):
        return RECEIVER_NOT_ALLOWED
    if self.frozen[sender]:
        return SENDER_FROZEN
    if self.frozen[receiver]:
        return RECEIVER_FROZEN
    balance: uint256 = erc20.balanceOf[sender]
    if balance < amount:
        return INSUFFICIENT_BALANCE
    if balance - amount < self.frozen_amount[sender]:
        return AMOUNT_FROZEN
    return OK


@internal
@pure
def _message(code: uint8) -> String[48]:
    if code == OK:
        return "ok"
    if code == PAUSED:
        return "token is paused"
    if code == SENDER_NOT_ALLOWED:
        return "sender is not on the allow-list"
    if code == RECEIVER_NOT_ALLOWED:
        return "receiver is not on the allow-list"
    if code == SENDER_FROZEN:
        return "sender wallet is frozen"
    if code == RECEIVER_FROZEN:
        return "receiver wallet is frozen"
    if code == AMOUNT_FROZEN:
        return "amount exceeds the unfrozen balance"
    if code == INSUFFICIENT_BALANCE:
        return "amount exceeds the balance"
    return "unknown restriction"


@internal
@view
def _require_allowed(sender: address, receiver: address, amount: uint256):
    code: uint8 = self._restriction(sender, receiver, amount)
    assert code == OK, self._message(code)


@external
@view
def detectTransferRestriction(sender: address, receiver: address, amount: uint256) -> uint8:
    """
    @notice ERC-1404 pre-check: 0 when the transfer would pass, else a reason code.
    """
    return self._restriction(sender, receiver, amount)


@external
@pure
def messageForTransferRestriction(code: uint8) -> String[48]:
    return self._message(code)


@external
@view
def is_paused() -> bool:
    return pausable.paused


@external
def transfer(to: address, amount: uint256) -> bool:
    self._require_allowed(msg.sender, to, amount)
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._require_allowed(owner, to, amount)
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


@external
def transfer_batch_from(
    senders: DynArray[address, MAX_BATCH], receivers: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]
) -> bool:
    """
    @notice Many transferFrom legs in one call, all or none: the settlement
            path for variation margin. Same rules as transferFrom; the
            allow-list is checked once per batch.
    """
    n: uint256 = len(senders)
    assert len(receivers) == n and len(amounts) == n, "batch legs differ in length"
    assert not pausable.paused, "token is paused"
    assert staticcall self.registry.all_verified(senders), "sender is not on the allow-list"
    assert staticcall self.registry.all_verified(receivers), "receiver is not on the allow-list"
    for i: uint256 in range(n, bound=MAX_BATCH):
        sender: address = senders[i]
        receiver: address = receivers[i]
        amount: uint256 = amounts[i]
        assert not self.frozen[sender], "sender wallet is frozen"
        assert not self.frozen[receiver], "receiver wallet is frozen"
        assert erc20.balanceOf[sender] >= amount + self.frozen_amount[sender], "amount exceeds the unfrozen balance"
        erc20._spend_allowance(sender, msg.sender, amount)
        erc20._transfer(sender, receiver, amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @notice Issue `amount` base units to an allow-listed holder (issuer only).
    """
    access_control._check_role(ISSUER, msg.sender)
    pausable._require_not_paused()
    assert staticcall self.registry.is_verified(to), "receiver is not on the allow-list"
    erc20._mint(to, amount)
    log Issued(holder=to, amount=amount)


@external
def redeem(holder: address, amount: uint256):
    """
    @notice Burn a holder's units on redemption (issuer only; frozen units stay frozen).
    """
    access_control._check_role(ISSUER, msg.sender)
    assert erc20.balanceOf[holder] - amount >= self.frozen_amount[holder], "amount exceeds the unfrozen balance"
    erc20._burn(holder, amount)
    log Redeemed(holder=holder, amount=amount)


@external
def freeze(holder: address, status: bool):
    access_control._check_role(AGENT, msg.sender)
    self.frozen[holder] = status
    log Frozen(holder=holder, status=status, agent=msg.sender)


@external
def freeze_partial(holder: address, amount: uint256):
    """
    @notice Set the part of `holder`'s balance that cannot move (absolute, base units).
    """
    access_control._check_role(AGENT, msg.sender)
    self.frozen_amount[holder] = amount
    log PartiallyFrozen(holder=holder, amount=amount, agent=msg.sender)


@external
def pause():
    access_control._check_role(AGENT, msg.sender)
    pausable._pause()


@external
def unpause():
    access_control._check_role(AGENT, msg.sender)
    pausable._unpause()


@external
def forced_transfer(sender: address, receiver: address, amount: uint256, reason: bytes32):
    """
    @notice Agent moves units without the holder's signature (court order,
            mistaken transfer, default). Frozen units are unfrozen as needed;
            the receiver must be allow-listed. `reason` is recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "reason code required"
    assert staticcall self.registry.is_verified(receiver), "receiver is not on the allow-list"
    balance: uint256 = erc20.balanceOf[sender]
    assert balance >= amount, "amount exceeds the balance"
    free: uint256 = balance - min(balance, self.frozen_amount[sender])
    if amount > free:
        self.frozen_amount[sender] -= amount - free
        log PartiallyFrozen(holder=sender, amount=self.frozen_amount[sender], agent=msg.sender)
    erc20._transfer(sender, receiver, amount)
    log ForcedTransfer(sender=sender, receiver=receiver, amount=amount, reason=reason, agent=msg.sender)


@external
def recover(lost: address, replacement: address, reason: bytes32):
    """
    @notice Wallet recovery: move the whole balance of a lost wallet to the
            holder's replacement wallet, carrying its freeze state over.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "reason code required"
    assert staticcall self.registry.is_verified(replacement), "receiver is not on the allow-list"
    amount: uint256 = erc20.balanceOf[lost]
    erc20._transfer(lost, replacement, amount)
    self.frozen_amount[replacement] += self.frozen_amount[lost]
    self.frozen_amount[lost] = 0
    if self.frozen[lost]:
        self.frozen[replacement] = True
        self.frozen[lost] = False
    log WalletRecovered(lost=lost, replacement=replacement, amount=amount, reason=reason)
