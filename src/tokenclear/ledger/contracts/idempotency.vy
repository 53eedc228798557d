# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Idempotent instructions (module)
@notice Every instruction carries a key; the key and a digest of the
        instruction's parameters are stored on chain. A replay with the
        same parameters is a no-op; the same key with other parameters
        reverts (Stripe's idempotency contract). A key is bound to its
        caller and function: the slot is keccak256(caller, function, key),
        so no caller can claim (squat) a key another caller or function
        will use.
"""

# keccak256(abi_encode(caller, function, key)) -> digest of the parameters
instruction: public(HashMap[bytes32, bytes32])

event InstructionReplayed:
    key: indexed(bytes32)


@external
@view
def claimed(caller: address, function: String[16], key: bytes32) -> bytes32:
    """
    @return The digest `caller` claimed `key` with in `function`, or zero.
    """
    return self.instruction[keccak256(abi_encode(caller, function, key))]


@internal
def _claim(key: bytes32, function: String[16], digest: bytes32) -> bool:
    """
    @return True the first time msg.sender uses `key` in `function`, False on a replay.
    """
    assert key != empty(bytes32), "idempotency: key required"
    slot: bytes32 = keccak256(abi_encode(msg.sender, function, key))
    seen: bytes32 = self.instruction[slot]
    if seen == empty(bytes32):
        self.instruction[slot] = digest
        return True
    assert seen == digest, "idempotency: key reused with other parameters"
    log InstructionReplayed(key=key)
    return False
