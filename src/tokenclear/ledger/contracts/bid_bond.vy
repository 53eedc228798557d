# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Bid-bond escrow
@notice Bidders in a tender lock a deposit in tokens. At award, after the
        tender closes, the winner's deposit becomes a performance bond,
        released to the winner at completion or forfeited to the
        beneficiary if the project fails, and every losing deposit becomes
        refundable: each is paid out by its own call (pull, not push), so a
        bidder whose wallet is frozen cannot block the award or the others'
        refunds. A tender the authority cancels, or does not award within
        AWARD_WINDOW of its close, is refundable to every bidder.
"""
from ethereum.ercs import IERC20
from snekmate.auth import access_control

initializes: access_control
exports: access_control.__interface__

AUTHORITY: public(constant(bytes32)) = keccak256("AUTHORITY")
MAX_BIDDERS: constant(uint256) = 64
AWARD_WINDOW: public(constant(uint256)) = 30 * 86_400  # after the close, bidders may take their deposits back

OPEN: constant(uint8) = 1
AWARDED: constant(uint8) = 2
COMPLETED: constant(uint8) = 3
FORFEITED: constant(uint8) = 4
CANCELLED: constant(uint8) = 5

struct Tender:
    token: address
    deposit: uint256
    close_time: uint256
    beneficiary: address
    winner: address
    state: uint8

tenders: public(HashMap[bytes32, Tender])
bidders: public(HashMap[bytes32, DynArray[address, MAX_BIDDERS]])
has_bid: public(HashMap[bytes32, HashMap[address, bool]])
refunded: public(HashMap[bytes32, HashMap[address, bool]])

event TenderOpened:
    tender: indexed(bytes32)
    token: address
    deposit: uint256
    close_time: uint256

event BidLocked:
    tender: indexed(bytes32)
    bidder: indexed(address)
    amount: uint256

event BidRefunded:
    tender: indexed(bytes32)
    bidder: indexed(address)
    amount: uint256

event TenderCancelled:
    tender: indexed(bytes32)

event BondLocked:
    tender: indexed(bytes32)
    winner: indexed(address)
    amount: uint256

event BondReleased:
    tender: indexed(bytes32)
    receiver: indexed(address)
    amount: uint256
    completed: bool


@deploy
def __init__():
    access_control.__init__()
    access_control._grant_role(AUTHORITY, msg.sender)


@external
def open_tender(tender: bytes32, token: address, deposit: uint256, close_time: uint256, beneficiary: address):
    """
    @notice Authority opens a tender: each bidder locks the same deposit until the award.
    @param tender The tender's 32-byte id.
    @param token The token deposits are paid in.
    @param deposit Base units each bidder locks.
    @param close_time Unix time after which no bid is taken and the award may be made.
    @param beneficiary Who receives a forfeited bond.
    """
    access_control._check_role(AUTHORITY, msg.sender)
    assert self.tenders[tender].state == 0, "bond: tender exists"
    assert deposit > 0, "bond: deposit must be positive"
    assert close_time > block.timestamp, "bond: close time must be in the future"
    assert beneficiary != empty(address), "bond: zero beneficiary"
    self.tenders[tender] = Tender(
        token=token, deposit=deposit, close_time=close_time, beneficiary=beneficiary,
        winner=empty(address), state=OPEN
    )
    log TenderOpened(tender=tender, token=token, deposit=deposit, close_time=close_time)


@external
@nonreentrant
def bid(tender: bytes32):
    """
    @notice A bidder locks the tender's deposit.
    @param tender The tender's id.
    """
    t: Tender = self.tenders[tender]
    assert t.state == OPEN, "bond: tender not open"
    assert block.timestamp < t.close_time, "bond: tender closed"
    assert not self.has_bid[tender][msg.sender], "bond: already bid"
    assert len(self.bidders[tender]) < MAX_BIDDERS, "bond: tender full"
    self.has_bid[tender][msg.sender] = True
    self.bidders[tender].append(msg.sender)
    assert extcall IERC20(t.token).transferFrom(msg.sender, self, t.deposit, default_return_value=True), "bond: token transfer failed"
    log BidLocked(tender=tender, bidder=msg.sender, amount=t.deposit)


@external
@nonreentrant
def award(tender: bytes32, winner: address):
    """
    @notice The winner's deposit becomes the bond; the others become refundable.
    @param tender The tender's id.
    @param winner A bidder; the others may take their deposits back (refund).
    """
    access_control._check_role(AUTHORITY, msg.sender)
    t: Tender = self.tenders[tender]
    assert t.state == OPEN, "bond: tender not open"
    assert block.timestamp >= t.close_time, "bond: tender still open"
    assert block.timestamp < t.close_time + AWARD_WINDOW, "bond: award window over, deposits are refundable"
    assert self.has_bid[tender][winner], "bond: winner did not bid"
    t.state = AWARDED
    t.winner = winner
    self.tenders[tender] = t
    log BondLocked(tender=tender, winner=winner, amount=t.deposit)


@external
def cancel(tender: bytes32):
    """
    @notice Authority cancels an open tender: every deposit becomes refundable.
    @param tender The tender's id.
    """
    access_control._check_role(AUTHORITY, msg.sender)
    assert self.tenders[tender].state == OPEN, "bond: tender not open"
    self.tenders[tender].state = CANCELLED
    log TenderCancelled(tender=tender)


@external
@view
def refundable(tender: bytes32, bidder: address) -> bool:
    """
    @notice Whether `bidder`'s deposit may be refunded now (and has not been).
    """
    return self._refundable(tender, bidder)


@internal
@view
def _refundable(tender: bytes32, bidder: address) -> bool:
    t: Tender = self.tenders[tender]
    if not self.has_bid[tender][bidder] or self.refunded[tender][bidder]:
        return False
    if t.state == AWARDED or t.state == COMPLETED or t.state == FORFEITED:
        return bidder != t.winner
    if t.state == CANCELLED:
        return True
    return t.state == OPEN and block.timestamp >= t.close_time + AWARD_WINDOW


@external
@nonreentrant
def refund(tender: bytes32, bidder: address):
    """
    @notice Pay a losing (or cancelled, or never awarded) bidder its deposit back;
            anyone may send it, the tokens go to the bidder only.
    @param tender The tender's id.
    @param bidder The bidder refunded.
    """
    assert self._refundable(tender, bidder), "bond: nothing to refund"
    self.refunded[tender][bidder] = True
    t: Tender = self.tenders[tender]
    assert extcall IERC20(t.token).transfer(bidder, t.deposit, default_return_value=True), "bond: token transfer failed"
    log BidRefunded(tender=tender, bidder=bidder, amount=t.deposit)


@internal
def _settle_bond(tender: bytes32, completed: bool):
    access_control._check_role(AUTHORITY, msg.sender)
    t: Tender = self.tenders[tender]
    assert t.state == AWARDED, "bond: no bond locked"
    receiver: address = t.winner if completed else t.beneficiary
    t.state = COMPLETED if completed else FORFEITED
    self.tenders[tender] = t
    assert extcall IERC20(t.token).transfer(receiver, t.deposit, default_return_value=True), "bond: token transfer failed"
    log BondReleased(tender=tender, receiver=receiver, amount=t.deposit, completed=completed)


@external
@nonreentrant
def complete(tender: bytes32):
    """
    @notice Project delivered: the bond goes back to the winner.
    @param tender The tender's id.
    """
    self._settle_bond(tender, True)


@external
@nonreentrant
def forfeit(tender: bytes32):
    """
    @notice Project failed: the bond goes to the beneficiary.
    @param tender The tender's id.
    """
    self._settle_bond(tender, False)
