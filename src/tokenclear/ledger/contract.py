"""A deployed contract on a chain: call and send by function name, decode the receipt's events."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from tokenclear.errors import TransactionReverted
from tokenclear.ledger.abi import Abi, Event
from tokenclear.ledger.build import load_artifacts
from tokenclear.ledger.chain import Chain, RawLog, Receipt


@cache
def _shipped() -> dict:
    return load_artifacts()["contracts"]


def artifact(name: str) -> dict:
    """ABI and bytecode of a shipped contract (from ``artifacts.json``, read once)."""
    return _shipped()[name]


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

    def calldata(self, fn: str, *args: Any) -> bytes:
        """The input of a call of ``fn`` with ``args``: for a transaction someone else signs."""
        return self.abi.function(fn).encode(args)

    def send(self, fn: str, *args: Any, sender: str) -> Receipt:
        function = self.abi.function(fn)
        try:
            return self.chain.send(self.address, function.encode(args), sender)
        except TransactionReverted as exc:
            raise TransactionReverted(exc.reason, function=f"{self.name}.{fn}") from None

    def events(self, receipt: Receipt, name: str | None = None) -> list[Event]:
        """This contract's events in a receipt, optionally only those called ``name``."""
        return self._decode((log for log in receipt.logs if log.address == self.address), name)

    def history(self, name: str | None = None, from_block: int = 0, to_block: int | None = None) -> list[Event]:
        """Every event this contract emitted from ``from_block`` to ``to_block`` (default: the head)."""
        return self._decode(self.chain.logs(self.address, from_block, to_block), name)

    def _decode(self, logs: Iterable[RawLog], name: str | None) -> list[Event]:
        decoded = (self.abi.decode_log(log.address, list(log.topics), log.data, log.block) for log in logs)
        return [e for e in decoded if e is not None and (name is None or e.name == name)]


def deploy(chain: Chain, name: str, *args: Any, sender: str, built: dict | None = None) -> Contract:
    """Deploy shipped contract ``name`` (or a ``built`` {abi, bytecode}) with constructor ``args``."""
    art = built if built is not None else artifact(name)
    abi = Abi(art["abi"])
    initcode = bytes.fromhex(art["bytecode"].removeprefix("0x")) + abi.encode_constructor(args)
    address, _ = chain.deploy(initcode, sender)
    return Contract(chain, address, abi, name)
