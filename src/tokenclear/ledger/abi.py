"""ABI codec: encode calls, decode results, reverts and events from a contract's JSON ABI.

Pure functions over bytes, shared by the embedded and the JSON-RPC chain so both decode alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

ERROR_SELECTOR = keccak(text="Error(string)")[:4]
PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]


def canonical_type(param: dict) -> str:
    """``(address,uint256)[]`` from an ABI parameter with components."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def _normalise(value: Any) -> Any:
    """eth_abi returns addresses lower-case; the ledger speaks checksummed addresses."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, tuple | list):
        return type(value)(_normalise(v) for v in value)
    return value


@dataclass(frozen=True)
class Function:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mutates: bool

    def encode(self, args: tuple) -> bytes:
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} arguments, got {len(args)}")
        return self.selector + encode(list(self.inputs), list(args))

    def decode(self, data: bytes) -> Any:
        values = _normalise(decode(list(self.outputs), data)) if self.outputs else ()
        return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class EventType:
    name: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]
    plain: tuple[tuple[str, str], ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    """A decoded log: the emitting contract, the event name and its arguments by name."""

    address: str
    name: str
    args: dict[str, Any]
    block: int = 0


class Abi:
    """Functions by name and events by topic of one contract ABI (no overloads)."""

    def __init__(self, abi: list[dict]) -> None:
        self.functions: dict[str, Function] = {}
        self.events: dict[bytes, EventType] = {}
        for item in abi:
            if item["type"] == "function":
                ins = tuple(canonical_type(p) for p in item["inputs"])
                outs = tuple(canonical_type(p) for p in item.get("outputs", []))
                selector = keccak(text=f"{item['name']}({','.join(ins)})")[:4]
                mutates = item.get("stateMutability") not in ("view", "pure")
                self.functions[item["name"]] = Function(item["name"], selector, ins, outs, mutates)
            elif item["type"] == "event":
                types = [canonical_type(p) for p in item["inputs"]]
                topic = keccak(text=f"{item['name']}({','.join(types)})")
                idx = tuple((p["name"], t) for p, t in zip(item["inputs"], types, strict=True) if p["indexed"])
                plain = tuple((p["name"], t) for p, t in zip(item["inputs"], types, strict=True)
                              if not p["indexed"])
                self.events[topic] = EventType(item["name"], topic, idx, plain,
                                               tuple(p["name"] for p in item["inputs"]))
        self.constructor = next((item for item in abi if item["type"] == "constructor"), None)

    def function(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise AttributeError(f"contract has no function '{name}'") from None

    def encode_constructor(self, args: tuple) -> bytes:
        types = [canonical_type(p) for p in self.constructor["inputs"]] if self.constructor else []
        if len(types) != len(args):
            raise TypeError(f"constructor takes {len(types)} arguments, got {len(args)}")
        return encode(types, list(args)) if types else b""

    def decode_log(self, address: str, topics: list[bytes], data: bytes, block: int = 0) -> Event | None:
        """The event of a raw log, or None when the topic is not one of this ABI's events."""
        if not topics or topics[0] not in self.events:
            return None
        kind = self.events[topics[0]]
        args: dict[str, Any] = {}
        for (name, typ), topic in zip(kind.indexed, topics[1:], strict=True):
            args[name] = topic if typ in ("string", "bytes") or typ.endswith("]") else _normalise(
                decode([typ], topic)[0])
        values = decode([t for _, t in kind.plain], data) if kind.plain else ()
        for (name, _), value in zip(kind.plain, values, strict=True):
            args[name] = _normalise(value)
        return Event(to_checksum_address(address), kind.name, {k: args[k] for k in kind.order}, block)


def revert_reason(output: bytes) -> str:
    """Human text of revert data: Error(string), Panic(uint256) or raw hex."""
    if output[:4] == ERROR_SELECTOR:
        return decode(["string"], output[4:])[0]
    if output[:4] == PANIC_SELECTOR:
        return f"panic 0x{decode(['uint256'], output[4:])[0]:02x}"
    return "no reason given" if not output else "0x" + output.hex()
