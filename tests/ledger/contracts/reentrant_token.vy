# pragma version ~=0.4.3
# SPDX-License-Identifier: Apache-2.0
# Test double of an attacker: an ERC-20-like token whose transferFrom re-enters the vault's
# pledge while the vault is still inside its own pledge. Used only by the reentrancy test.

interface Vault:
    def pledge(key: bytes32, account: bytes32, token: address, amount: uint256) -> bool: nonpayable

decimals: public(uint8)
balanceOf: public(HashMap[address, uint256])
vault: public(Vault)
account: public(bytes32)
armed: public(bool)


@deploy
def __init__():
    self.decimals = 18
    self.balanceOf[self] = 10**30


@external
def arm(vault_: Vault, account_: bytes32):
    self.vault = vault_
    self.account = account_
    self.armed = True


@external
def attack(amount: uint256):
    extcall self.vault.pledge(keccak256("outer"), self.account, self, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.armed:
        self.armed = False
        extcall self.vault.pledge(keccak256("inner"), self.account, self, amount)
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True
