# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Permissioned collateral token (module)
@notice Transfer rules for a collateral token a clearing house accepts:
        holders must be on the clearing house's identity registry; an
        agent can freeze a wallet fully or in part, pause the token,
        force a transfer or recover a lost wallet, each with an on-chain
        reason code, but never against a protocol contract (vault,
        settlement, escrows: registry class 3), whose balance is held for
        others and booked by the contract itself; a pre-check returns a restriction code (ERC-1404
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
PROTOCOL_CLASS: constant(uint8) = 3  # identity_registry: a settlement or escrow contract

MAX_BATCH: constant(uint256) = 1024

registry: public(i_registry)
frozen: public(HashMap[address, bool])
frozen_amount: public(HashMap[address, uint256])

event Frozen:
    holder: indexed(address)
    status: bool
    reason: bytes32
    agent: indexed(address)

event PartiallyFrozen:
    holder: indexed(address)
    amount: uint256
    reason: bytes32
    agent: indexed(address)

event PauseChanged:
    paused: bool
    reason: bytes32
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
def _holder_restriction(sender: address, receiver: address, amount: uint256) -> uint8:
    """
    @notice The holder rules of one transfer (freezes, balance), written once for
            single transfers and batches; the allow-list and pause are checked by the caller.
    """
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
@view
def _restriction(sender: address, receiver: address, amount: uint256) -> uint8:
    if pausable.paused:
        return PAUSED
    if not staticcall self.registry.is_verified(sender):
        return SENDER_NOT_ALLOWED
    if not staticcall self.registry.is_verified(receiver):
        return RECEIVER_NOT_ALLOWED
    return self._holder_restriction(sender, receiver, amount)


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
def _not_protocol(holder: address):
    assert staticcall self.registry.holder_class(holder) != PROTOCOL_CLASS, "token: a protocol contract's balance is booked by the contract: no freeze or forced transfer"


@internal
@pure
def _require_ok(code: uint8):
    assert code == OK, concat("token: ", self._message(code))


@external
@view
def detectTransferRestriction(sender: address, receiver: address, amount: uint256) -> uint8:
    """
    @notice ERC-1404 pre-check: 0 when the transfer would pass, else a reason code.
    @param sender The wallet the units leave.
    @param receiver The wallet they go to.
    @param amount Base units.
    """
    return self._restriction(sender, receiver, amount)


@external
@view
def detect_transfer_restrictions(
    senders: DynArray[address, MAX_BATCH], receivers: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]
) -> DynArray[uint8, MAX_BATCH]:
    """
    @notice detectTransferRestriction of each transfer in one call (a batch's pre-check, leg by leg).
    @param senders The wallets the units leave.
    @param receivers The wallets they go to.
    @param amounts Base units of each transfer.
    @return Each transfer's code, in the order given.
    """
    assert len(senders) == len(receivers) and len(senders) == len(amounts), "permissioned: lengths differ"
    out: DynArray[uint8, MAX_BATCH] = []
    for i: uint256 in range(len(senders), bound=MAX_BATCH):
        out.append(self._restriction(senders[i], receivers[i], amounts[i]))
    return out


@external
@pure
def messageForTransferRestriction(code: uint8) -> String[48]:
    """
    @notice The text of a restriction code.
    @param code A code detectTransferRestriction returned.
    """
    return self._message(code)


@external
@view
def is_paused() -> bool:
    """
    @notice Whether the agent has paused every transfer.
    """
    return pausable.paused


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transfer under the token's rules.
    @param to An allow-listed, unfrozen wallet.
    @param amount Base units (not frozen in the sender's balance).
    """
    self._require_ok(self._restriction(msg.sender, to, amount))
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transferFrom under the token's rules.
    @param owner The wallet the units leave (it approved the caller).
    @param to An allow-listed, unfrozen wallet.
    @param amount Base units (not frozen in the owner's balance).
    """
    self._require_ok(self._restriction(owner, to, amount))
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
    @param senders The wallets each leg leaves (each approved the caller).
    @param receivers The wallets each leg goes to.
    @param amounts Base units per leg.
    """
    n: uint256 = len(senders)
    assert len(receivers) == n and len(amounts) == n, "token: batch legs differ in length"
    if pausable.paused:
        self._require_ok(PAUSED)
    if not staticcall self.registry.all_verified(senders):
        self._require_ok(SENDER_NOT_ALLOWED)
    if not staticcall self.registry.all_verified(receivers):
        self._require_ok(RECEIVER_NOT_ALLOWED)
    for i: uint256 in range(n, bound=MAX_BATCH):
        self._require_ok(self._holder_restriction(senders[i], receivers[i], amounts[i]))
        erc20._spend_allowance(senders[i], msg.sender, amounts[i])
        erc20._transfer(senders[i], receivers[i], amounts[i])
    return True


@external
def mint(to: address, amount: uint256):
    """
    @notice Issue `amount` base units to an allow-listed holder (issuer only).
    @param to An allow-listed wallet.
    @param amount Base units.
    """
    access_control._check_role(ISSUER, msg.sender)
    pausable._require_not_paused()
    if not staticcall self.registry.is_verified(to):
        self._require_ok(RECEIVER_NOT_ALLOWED)
    erc20._mint(to, amount)
    log Issued(holder=to, amount=amount)


@external
def redeem(holder: address, amount: uint256):
    """
    @notice Burn a holder's units on redemption (issuer only; frozen units stay frozen).
    @param holder The wallet redeemed.
    @param amount Base units.
    """
    access_control._check_role(ISSUER, msg.sender)
    if erc20.balanceOf[holder] < amount:
        self._require_ok(INSUFFICIENT_BALANCE)
    if erc20.balanceOf[holder] - amount < self.frozen_amount[holder]:
        self._require_ok(AMOUNT_FROZEN)
    erc20._burn(holder, amount)
    log Redeemed(holder=holder, amount=amount)


@external
def freeze(holder: address, status: bool, reason: bytes32):
    """
    @notice Agent freezes (or unfreezes) a whole wallet.
    @param holder The wallet.
    @param status True: frozen.
    @param reason A non-zero reason code, recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "token: reason code required"
    if status:
        self._not_protocol(holder)
    self.frozen[holder] = status
    log Frozen(holder=holder, status=status, reason=reason, agent=msg.sender)


@external
def freeze_partial(holder: address, amount: uint256, reason: bytes32):
    """
    @notice Set the part of `holder`'s balance that cannot move.
    @param holder The wallet.
    @param amount Base units frozen (absolute, not added).
    @param reason A non-zero reason code, recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "token: reason code required"
    if amount != 0:
        self._not_protocol(holder)
    self.frozen_amount[holder] = amount
    log PartiallyFrozen(holder=holder, amount=amount, reason=reason, agent=msg.sender)


@external
def pause(reason: bytes32):
    """
    @notice Agent stops every transfer, mint and batch.
    @param reason A non-zero reason code, recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "token: reason code required"
    pausable._pause()
    log PauseChanged(paused=True, reason=reason, agent=msg.sender)


@external
def unpause(reason: bytes32):
    """
    @notice Agent lets transfers resume.
    @param reason A non-zero reason code, recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "token: reason code required"
    pausable._unpause()
    log PauseChanged(paused=False, reason=reason, agent=msg.sender)


@external
def forced_transfer(sender: address, receiver: address, amount: uint256, reason: bytes32):
    """
    @notice Agent moves units without the holder's signature (court order,
            mistaken transfer, default). Frozen units are unfrozen as needed;
            the receiver must be allow-listed.
    @param sender The wallet the units leave.
    @param receiver An allow-listed wallet.
    @param amount Base units.
    @param reason A non-zero reason code, recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "token: reason code required"
    self._not_protocol(sender)
    if not staticcall self.registry.is_verified(receiver):
        self._require_ok(RECEIVER_NOT_ALLOWED)
    balance: uint256 = erc20.balanceOf[sender]
    if balance < amount:
        self._require_ok(INSUFFICIENT_BALANCE)
    free: uint256 = balance - min(balance, self.frozen_amount[sender])
    if amount > free:
        self.frozen_amount[sender] -= amount - free
        log PartiallyFrozen(holder=sender, amount=self.frozen_amount[sender], reason=reason, agent=msg.sender)
    erc20._transfer(sender, receiver, amount)
    log ForcedTransfer(sender=sender, receiver=receiver, amount=amount, reason=reason, agent=msg.sender)


@external
def recover(lost: address, replacement: address, reason: bytes32):
    """
    @notice Wallet recovery: move the whole balance of a lost wallet to the
            holder's replacement wallet, carrying its freeze state over.
    @param lost The lost wallet.
    @param replacement The holder's new, allow-listed wallet.
    @param reason A non-zero reason code, recorded on chain.
    """
    access_control._check_role(AGENT, msg.sender)
    assert reason != empty(bytes32), "token: reason code required"
    self._not_protocol(lost)
    if not staticcall self.registry.is_verified(replacement):
        self._require_ok(RECEIVER_NOT_ALLOWED)
    amount: uint256 = erc20.balanceOf[lost]
    erc20._transfer(lost, replacement, amount)
    self.frozen_amount[replacement] += self.frozen_amount[lost]
    self.frozen_amount[lost] = 0
    if self.frozen[lost]:
        self.frozen[replacement] = True
        self.frozen[lost] = False
    log WalletRecovered(lost=lost, replacement=replacement, amount=amount, reason=reason)
