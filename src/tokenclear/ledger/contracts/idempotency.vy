# pragma version ~=0.4.3
# SPDX-License-Identifier: AGPL-3.0-only
"""
@title Idempotent instructions (module)
@notice Every instruction carries a key; the key and a digest of the
        instruction's parameters are stored on chain. A replay with the
        same parameters is a no-op; the same key with other parameters
        reverts (Stripe's idempotency contract).
"""

instruction: public(HashMap[bytes32, bytes32])

event InstructionReplayed:
    key: indexed(bytes32)


@internal
def _claim(key: bytes32, digest: bytes32) -> bool:
    """
    @return True the first time `key` is seen, False on a replay.
    """
    assert key != empty(bytes32), "idempotency: key required"
    seen: bytes32 = self.instruction[key]
    if seen == empty(bytes32):
        self.instruction[key] = digest
        return True
    assert seen == digest, "idempotency: key reused with other parameters"
    log InstructionReplayed(key=key)
    return False
