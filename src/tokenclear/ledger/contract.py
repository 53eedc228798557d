"""A deployed contract on a chain: call and send by function name, decode the receipt's events."""

from __future__ import annotations

from typing import Any

from tokenclear.errors import TransactionReverted
from tokenclear.ledger.abi import Abi, Event
from tokenclear.ledger.build import load_artifacts
from tokenclear.ledger.chain import Chain, Receipt

_ARTIFACTS: dict | None = None


def artifact(name: str) -> dict:
    """ABI and bytecode of a shipped contract (from ``artifacts.json``)."""
    global _ARTIFACTS
    if _ARTIFACTS is None:
        _ARTIFACTS = load_artifacts()["contracts"]
    return _ARTIFACTS[name]


class Contract:
    def __init__(self, chain: Chain, address: str, abi: Abi, name: str = "") -> None:
        self.chain = chain
        self.address = address
        self.abi = abi
        self.name = name

    def call(self, fn: str, *args: Any, sender: str | None = None) -> Any:
        function = self.abi.function(fn)
        try:
            return function.decode(self.chain.call(self.address, function.encode(args), sender))
        except TransactionReverted as exc:
            raise TransactionReverted(exc.reason, function=f"{self.name}.{fn}") from None

    def send(self, fn: str, *args: Any, sender: str) -> Receipt:
        function = self.abi.function(fn)
        try:
            return self.chain.send(self.address, function.encode(args), sender)
        except TransactionReverted as exc:
            raise TransactionReverted(exc.reason, function=f"{self.name}.{fn}") from None

    def events(self, receipt: Receipt, name: str | None = None) -> list[Event]:
        """This contract's events in a receipt, optionally only those called ``name``."""
        out = []
        for log in receipt.logs:
            if log.address != self.address:
                continue
            event = self.abi.decode_log(log.address, list(log.topics), log.data, log.block)
            if event is not None and (name is None or event.name == name):
                out.append(event)
        return out

    def history(self, name: str | None = None, from_block: int = 0) -> list[Event]:
        """Every event this contract emitted since ``from_block`` (read from the chain)."""
        out = []
        for log in self.chain.logs(self.address, from_block):
            event = self.abi.decode_log(log.address, list(log.topics), log.data, log.block)
            if event is not None and (name is None or event.name == name):
                out.append(event)
        return out


def deploy(chain: Chain, name: str, *args: Any, sender: str, built: dict | None = None) -> Contract:
    """Deploy shipped contract ``name`` (or a ``built`` {abi, bytecode}) with constructor ``args``."""
    art = built if built is not None else artifact(name)
    abi = Abi(art["abi"])
    initcode = bytes.fromhex(art["bytecode"].removeprefix("0x")) + abi.encode_constructor(args)
    address, _ = chain.deploy(initcode, sender)
    return Contract(chain, address, abi, name)
