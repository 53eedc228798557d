"""Pseudonymous account ids and requirement commitments.

Positions never go on chain. The vault knows an account only as ``keccak256(salt || member || "/" ||
account)``; the clearing house keeps the salt and maps ids back. A requirement is posted as
``keccak256(abi.encode(uint256 requirement_micro_usd, bytes32 salt))``: the member and the regulator,
given the salt, check it (``verify_commitment`` or the vault's ``verify_requirement``); the public
cannot invert it. See docs/ledger.md for what an observer can and cannot learn.
"""

from __future__ import annotations

import secrets

from eth_abi import encode
from eth_utils import keccak


def new_salt() -> bytes:
    return secrets.token_bytes(32)


def account_id(salt: bytes, member: str, account: str) -> bytes:
    """32-byte pseudonym of ``member``'s ``account``; without the salt it links to nothing."""
    if len(salt) < 16:
        raise ValueError("salt must be at least 16 bytes")
    return keccak(salt + member.encode() + b"/" + account.encode())


def commitment(requirement_micro_usd: int, salt: bytes) -> bytes:
    if len(salt) != 32:
        raise ValueError("commitment salt must be 32 bytes")
    return keccak(encode(["uint256", "bytes32"], [int(requirement_micro_usd), salt]))


def verify_commitment(committed: bytes, requirement_micro_usd: int, salt: bytes) -> bool:
    return committed == commitment(requirement_micro_usd, salt)


def floor_bucket(requirement_micro_usd: int, grid_micro_usd: int) -> int:
    """The on-chain floor in privacy mode: the requirement rounded down to a coarse grid, so an observer
    learns a bucket, not the figure (the exact figure stays behind the commitment). Down, not up: a floor
    above the requirement would refuse releases the requirement allows; the book enforces the rest.
    A grid of 1 posts the requirement itself."""
    if grid_micro_usd <= 0:
        raise ValueError("grid must be positive")
    return int(requirement_micro_usd) // grid_micro_usd * grid_micro_usd
