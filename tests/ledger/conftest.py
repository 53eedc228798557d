"""Ledger fixtures: every contract test runs on the embedded EVM and on a throw-away anvil node."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import Chain, EmbeddedChain, RevmChain, RpcChain
from tokenclear.ledger.ledger import CUSTOMER, HOUSE, Ledger, Roles
from tokenclear.ledger.privacy import account_id

SALT = b"tokenclear-test-salt-0123456789a"  # 32 bytes
START = 1_678_406_400  # 2023-03-10 00:00 UTC

USD = 10**6
ETH = 10**18
BTC = 10**8


@pytest.fixture(scope="session")
def anvil_node():
    with anvil(start_time=START) as node:
        yield node


@pytest.fixture(params=["embedded", "revm", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request) -> Chain:
    if request.param == "embedded":
        return EmbeddedChain(start_time=START)
    if request.param == "revm":
        return RevmChain(start_time=START)
    node = request.getfixturevalue("anvil_node")
    return RpcChain(node.url, node.funder_key)


@dataclass
class World:
    chain: Chain
    ledger: Ledger
    m1: str
    m2: str
    outsider: str
    m1_house: bytes
    m1_customer: bytes
    m2_house: bytes

    @property
    def op(self) -> str:
        return self.ledger.operator

    @property
    def agent(self) -> str:
        """The tokens' issuer and agent (mint, freeze, NAV)."""
        return self.ledger.roles.token_agent

    @property
    def parameter(self) -> str:
        return self.ledger.roles.parameter


def fund(ledger: Ledger, member: str) -> None:
    ledger.issue("TUSD", member, 1_000_000 * USD)
    ledger.issue("WETH", member, 100 * ETH)
    ledger.issue("WBTC", member, 10 * BTC)
    ledger.issue("TMMF", member, 1_000_000 * USD)
    ledger.issue("TBILL", member, 1_000_000 * USD)


def make_world(chain: Chain) -> World:
    ledger = Ledger.deploy(chain, roles=Roles.separate(chain))  # a key per role, as deployments have
    m1, m2, outsider = chain.new_account(), chain.new_account(), chain.new_account()
    ledger.onboard([m1, m2])
    for member in (m1, m2):
        ledger.authorise(member)
        fund(ledger, member)
    ids = (account_id(SALT, "M1", "HOUSE"), account_id(SALT, "M1", "CUST"), account_id(SALT, "M2", "HOUSE"))
    ledger.open_account(ids[0], m1, HOUSE)
    ledger.open_account(ids[1], m1, CUSTOMER)
    ledger.open_account(ids[2], m2, HOUSE)
    return World(chain, ledger, m1, m2, outsider, *ids)


@pytest.fixture
def world(chain) -> World:
    return make_world(chain)
