"""Three chains behind one interface: revm in process (pyrevm, the embedded default), py-evm in process
(titanoboa) and any JSON-RPC node (web3.py).

All take creation bytecode and calldata, return receipts with raw logs and gas used, and raise
``TransactionReverted`` with the contract's reason, so the same contract tests run on each.
"""

from __future__ import annotations

import re
import secrets
import time
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_checksum_address

from tokenclear.errors import ChainUnavailable, InputError, LedgerError, TransactionReverted
from tokenclear.ledger.abi import revert_reason

#: Gas limit per transaction on the embedded chain, and the chunking budget of batches.
EMBEDDED_BLOCK_GAS = 100_000_000


@dataclass(frozen=True)
class RawLog:
    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block: int


@dataclass(frozen=True)
class Receipt:
    """What a mined transaction left: its hash, block, gas used (intrinsic included), logs, and the
    intrinsic part (21,000 + calldata), which depends on the bytes of the addresses sent."""

    tx_hash: str
    block: int
    gas_used: int
    logs: tuple[RawLog, ...]
    intrinsic_gas: int

    @property
    def execution_gas(self) -> int:
        return self.gas_used - self.intrinsic_gas


def intrinsic_gas(data: bytes, create: bool = False) -> int:
    """Base cost of a transaction: 21,000 (+32,000 to create) + 4 per zero and 16 per non-zero byte."""
    zeros = data.count(0)
    return 21_000 + (32_000 if create else 0) + 4 * zeros + 16 * (len(data) - zeros)


class Chain(ABC):
    """An EVM the ledger can deploy to, transact with and read from."""

    chain_id: int
    name: str
    #: The in-process engine ("revm" or "py-evm"); None for a node.
    evm: str | None = None

    @property
    def described(self) -> str:
        """The chain as shown to an operator: "embedded (revm)", "json-rpc"."""
        return self.name if self.evm is None else f"{self.name} ({self.evm})"

    @abstractmethod
    def new_account(self) -> str:
        """A fresh address this chain can sign for, with gas money."""

    @abstractmethod
    def deploy(self, initcode: bytes, sender: str) -> tuple[str, Receipt]: ...

    @abstractmethod
    def send(self, to: str, data: bytes, sender: str) -> Receipt:
        """Execute a state-changing call; raise ``TransactionReverted`` and change nothing on revert."""

    @abstractmethod
    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes: ...

    def signs_for(self, address: str) -> bool:
        """Whether this chain can send transactions from ``address`` (the embedded chain: from any)."""
        return True

    def send_raw(self, raw: bytes) -> Receipt:
        """Send a transaction signed elsewhere (a member's own wallet); raise ``TransactionReverted`` if it
        reverts."""
        raise LedgerError(f"the {self.name} chain takes no transactions signed elsewhere: a member that signs its "
                          "own transactions needs a node (serve with --rpc-url)")

    @abstractmethod
    def timestamp(self) -> int:
        """Timestamp of the latest block, seconds since the epoch (UTC)."""

    @abstractmethod
    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward (development chains only)."""

    @abstractmethod
    def block_number(self) -> int: ...

    @abstractmethod
    def head(self) -> Hashable:
        """What a view call reads from: equal heads give equal views (a state change or a clock move changes it)."""

    @abstractmethod
    def logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[RawLog]: ...


class InProcessChain(Chain):
    """An EVM in this process: no server, state lost at exit, every transaction its own block, and the
    logs kept per emitting address in block order for :meth:`logs`. ``evm`` names the engine."""

    def _init_logs(self) -> None:
        # logs per emitting address, in block order (blocks only grow), with their blocks for bisection
        self._logs: dict[str, list[RawLog]] = {}
        self._log_blocks: dict[str, list[int]] = {}

    def _keep(self, logs: tuple[RawLog, ...]) -> None:
        for log in logs:
            self._logs.setdefault(log.address, []).append(log)
            self._log_blocks.setdefault(log.address, []).append(log.block)

    def head(self) -> Hashable:
        # every transaction is its own block, and nothing rewinds this chain: block and clock name its state
        return self.block_number(), self.timestamp()

    def logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[RawLog]:
        address = to_checksum_address(address)
        top = self.block_number() if to_block is None else to_block
        blocks = self._log_blocks.get(address, [])
        return self._logs.get(address, [])[bisect_left(blocks, from_block):bisect_right(blocks, top)]


class EmbeddedChain(InProcessChain):
    """titanoboa's py-evm (an EVM interpreted in Python) in this process."""

    def __init__(self, chain_id: int = 31337, start_time: int | None = None) -> None:
        import boa

        self.env = boa.Env()
        self.env.evm.patch.chain_id = chain_id
        if start_time is not None:
            self.env.evm.patch.timestamp = start_time
        self.chain_id = chain_id
        self.name, self.evm = "embedded", "py-evm"
        self._init_logs()

    def new_account(self) -> str:
        address = self.env.generate_address()
        self.env.set_balance(address, 10**21)
        return to_checksum_address(str(address))

    def _next_block(self) -> int:
        self.env.evm.patch.block_number += 1
        # each call is its own transaction: storage values so far become the "original" ones (EIP-2200
        # net metering) and every address and slot starts cold (EIP-2929), as on a real chain
        self.env.evm.vm.state.lock_changes()
        self.env.evm.reset_access_counters()
        return self.env.evm.patch.block_number

    def _receipt(self, computation, data: bytes, block: int, create: bool = False) -> Receipt:
        logs = tuple(RawLog(to_checksum_address(addr), tuple(t.to_bytes(32, "big") for t in topics), data_, block)
                     for addr, topics, data_ in computation.get_log_entries())
        self._keep(logs)
        base = intrinsic_gas(data, create)
        used = computation.get_gas_used() + base
        gas = used - min(computation.get_gas_refund(), used // 5)  # EIP-3529 refund cap
        return Receipt(f"embedded:{block}", block, gas, logs, base)

    def deploy(self, initcode: bytes, sender: str) -> tuple[str, Receipt]:
        block = self._next_block()
        address, computation = self.env.deploy(sender=sender, bytecode=initcode, gas=EMBEDDED_BLOCK_GAS)
        if computation.is_error:
            raise TransactionReverted(revert_reason(bytes(computation.output)), function="constructor")
        return to_checksum_address(str(address)), self._receipt(computation, initcode, block, create=True)

    def send(self, to: str, data: bytes, sender: str) -> Receipt:
        block = self._next_block()
        state = self.env.evm.vm.state
        for address in (sender, to):  # EIP-2929: a transaction starts with its sender and recipient warm
            state.mark_address_warm(bytes.fromhex(address[2:]))
        computation = self.env.execute_code(to_address=to, sender=sender, data=data, gas=EMBEDDED_BLOCK_GAS)
        if computation.is_error:
            raise TransactionReverted(revert_reason(bytes(computation.output)))
        return self._receipt(computation, data, block)

    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        computation = self.env.execute_code(to_address=to, sender=sender, data=data, is_modifying=False,
                                            gas=EMBEDDED_BLOCK_GAS)
        if computation.is_error:
            raise TransactionReverted(revert_reason(bytes(computation.output)))
        return bytes(computation.output)

    def timestamp(self) -> int:
        return int(self.env.evm.patch.timestamp)

    def advance_time(self, seconds: int) -> None:
        self.env.evm.patch.timestamp += int(seconds)

    def block_number(self) -> int:
        return int(self.env.evm.patch.block_number)


#: revm's message for a reverted call: ``Revert { gas_used: N, output: 0x... }``.
_REVM_REVERT = re.compile(r"output: 0x([0-9a-fA-F]*)")
#: Who sends a view call on revm when the caller names nobody.
_NOBODY = "0x" + "00" * 20


class RevmChain(InProcessChain):
    """revm (the Rust EVM that anvil and reth run) in this process, through pyrevm: the same contracts and
    calldata as the other chains, at native speed; Cancun rules, each transaction its own block.

    pyrevm keeps one journal open across transactions, so an address or slot an earlier transaction touched
    stays warm and its first value stays "original": state and reverts are exact, but a receipt's gas can be
    below a node's (``TOKENCLEAR_EVM=py-evm`` meters each transaction exactly). Transient storage is cleared
    after each transaction, as EIP-1153 ends it."""

    def __init__(self, chain_id: int = 31337, start_time: int | None = None) -> None:
        from pyrevm import EVM, CfgEnv, Env

        self.chain_id = chain_id
        self.name, self.evm = "embedded", "revm"
        self._number = 0
        self._time = int(time.time()) if start_time is None else int(start_time)
        self._vm = EVM(env=Env(cfg=CfgEnv(chain_id=chain_id), block=self._block()), spec_id="CANCUN")
        self._init_logs()

    def _block(self):
        from pyrevm import BlockEnv

        return BlockEnv(number=self._number, timestamp=self._time, gas_limit=EMBEDDED_BLOCK_GAS, basefee=0)

    def _next_block(self) -> int:
        self._number += 1
        self._vm.set_block_env(self._block())
        return self._number

    def new_account(self) -> str:
        address = to_checksum_address(secrets.token_bytes(20))
        self._vm.set_balance(address, 10**21)
        return address

    @staticmethod
    def _reverted(exc: RuntimeError, function: str | None = None) -> TransactionReverted:
        found = _REVM_REVERT.search(str(exc))
        reason = revert_reason(bytes.fromhex(found.group(1))) if found else str(exc)
        return TransactionReverted(reason, function=function)

    def _receipt(self, data: bytes, block: int, create: bool = False) -> Receipt:
        result = self._vm.result
        logs = tuple(RawLog(to_checksum_address(log.address), tuple(bytes(t) for t in log.data[0]),
                            bytes(log.data[1]), block) for log in result.logs)
        self._keep(logs)
        return Receipt(f"revm:{block}", block, int(result.gas_used), logs, intrinsic_gas(data, create))

    def deploy(self, initcode: bytes, sender: str) -> tuple[str, Receipt]:
        block = self._next_block()
        try:
            address = self._vm.deploy(sender, initcode, gas=EMBEDDED_BLOCK_GAS)
        except RuntimeError as exc:
            raise self._reverted(exc, "constructor") from None
        return to_checksum_address(address), self._receipt(initcode, block, create=True)

    def send(self, to: str, data: bytes, sender: str) -> Receipt:
        block = self._next_block()
        try:
            self._vm.message_call(sender, to, data, gas=EMBEDDED_BLOCK_GAS)
        except RuntimeError as exc:
            raise self._reverted(exc) from None
        finally:
            self._vm.reset_transient_storage()  # a transaction's transient storage ends with it (EIP-1153)
        return self._receipt(data, block)

    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        try:
            return bytes(self._vm.message_call(sender or _NOBODY, to, data, gas=EMBEDDED_BLOCK_GAS, is_static=True))
        except RuntimeError as exc:
            raise self._reverted(exc) from None

    def timestamp(self) -> int:
        return self._time

    def advance_time(self, seconds: int) -> None:
        self._time += int(seconds)
        self._vm.set_block_env(self._block())

    def block_number(self) -> int:
        return self._number


#: The in-process engines by their setting (TOKENCLEAR_EVM): native revm (the default), or interpreted py-evm.
ENGINES: dict[str, type[InProcessChain]] = {"revm": RevmChain, "py-evm": EmbeddedChain}


def embedded_chain(evm: str = "revm", chain_id: int = 31337, start_time: int | None = None) -> InProcessChain:
    """The in-process chain of engine ``evm`` (a key of :data:`ENGINES`)."""
    if evm not in ENGINES:
        raise InputError(f"unknown embedded EVM {evm!r}: {' or '.join(ENGINES)}", field="TOKENCLEAR_EVM")
    return ENGINES[evm](chain_id=chain_id, start_time=start_time)


#: Blocks per eth_getLogs request.
LOG_RANGE = 5_000
#: A nonce another process sharing the key has used: take the node's pending count and sign again.
NONCE_TAKEN = ("nonce too low", "already known", "replacement transaction underpriced")
NONCE_RETRIES = 5


class RpcChain(Chain):
    """Any EVM node over JSON-RPC through web3.py; transactions are signed locally with a key that
    comes from the settings (environment or keystore) and is never logged."""

    def __init__(self, url: str, funder_key: str, *, timeout_s: float = 30.0) -> None:
        from web3 import Web3

        funder = _account(funder_key, "TOKENCLEAR_PRIVATE_KEY")
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}))
        self.url = shown_url(url)  # in every message: without credentials
        self.name = "json-rpc"
        try:
            self.chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:  # requests/ConnectionError, or a non-JSON-RPC answer
            raise ChainUnavailable(f"no EVM node answers at {self.url}: {type(exc).__name__}") from exc
        self._keys = {funder.address: funder}
        self._nonces: dict[str, int] = {}
        self.funder = funder.address
        self._fees: tuple[int, int] | None = None
        self._sent = 0

    @classmethod
    def from_keystore(cls, url: str, keystore: Path, password: str) -> RpcChain:
        from eth_account import Account

        try:
            key = Account.decrypt(Path(keystore).read_text(), password)
        except (OSError, ValueError) as exc:
            raise LedgerError(f"{keystore}: cannot decrypt the keystore: {exc}") from None
        return cls(url, key.hex())

    def add_key(self, key: str, field: str) -> str:
        """Sign with one more key (a role's); returns its address. ``field`` names its setting in errors."""
        account = _account(key, field)
        self._keys[account.address] = account
        return account.address

    @contextmanager
    def _node(self, what: str) -> Iterator[None]:
        """A node that stops answering mid-run is a :class:`ChainUnavailable` naming the step, not a raw
        ``ConnectionError``; the caller's instruction stays pending and is recovered on restart."""
        from requests.exceptions import RequestException

        try:
            yield
        except (RequestException, OSError) as exc:
            raise ChainUnavailable(f"{self.url}: the node stopped answering during {what}: "
                                   f"{type(exc).__name__}") from None

    def _refused(self, exc: Exception, sender: str) -> LedgerError:
        """The node's refusal of a transaction as a one-line error (an unfunded key named as such)."""
        message = str(exc.args[0] if exc.args else exc)
        if "insufficient funds" in message.lower():
            return LedgerError(f"{sender} cannot pay for gas on {self.url} (chain {self.chain_id}): fund it")
        return LedgerError(f"{self.url} refused the transaction from {sender}: {message}")

    def _fee(self) -> tuple[int, int]:
        if self._fees is None or self._sent % 100 == 0:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
            tip = 10**9 if base else 0
            self._fees = (2 * base + tip, tip)
        return self._fees

    def new_account(self) -> str:
        from eth_account import Account

        return self.add_wallet(Account.create().key.hex())

    def signs_for(self, address: str) -> bool:
        """Whether this chain holds the key of ``address``."""
        return address in self._keys

    def add_wallet(self, key: str, field: str = "wallet", gas_wei: int = 10**18) -> str:
        """Sign with ``key`` too and fund its address for gas if it holds less than ``gas_wei``; returns it."""
        address = self.add_key(key, field)
        with self._node("a balance read"):
            held = int(self.w3.eth.get_balance(address))
        if held < gas_wei:
            self._transact(address, b"", self.funder, value=gas_wei - held)
        return address

    def _nonce(self, sender: str) -> int:
        if sender not in self._nonces:
            self._nonces[sender] = int(self.w3.eth.get_transaction_count(sender, "pending"))
        return self._nonces[sender]

    def _transact(self, to: str | None, data: bytes, sender: str, value: int = 0) -> tuple[Receipt, dict]:
        from web3.exceptions import ContractLogicError

        sender = to_checksum_address(sender)
        if sender not in self._keys:
            raise LedgerError(f"no signing key for {sender} on {self.url}")
        tx = {"from": sender, "data": data, "value": value}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        from web3.exceptions import Web3RPCError

        with self._node("gas estimation"):
            try:
                gas = int(self.w3.eth.estimate_gas(tx))
            except ContractLogicError as exc:
                raise TransactionReverted(_rpc_reason(exc)) from None
            except Web3RPCError as exc:
                raise self._refused(exc, sender) from None
            max_fee, tip = self._fee()
            tx.update(gas=gas + gas // 5, nonce=self._nonce(sender), chainId=self.chain_id, maxFeePerGas=max_fee,
                      maxPriorityFeePerGas=tip)
        tx.pop("from")
        with self._node("sending a transaction"):
            for attempt in range(NONCE_RETRIES):
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(
                        self._keys[sender].sign_transaction(tx).raw_transaction)
                    break
                except Web3RPCError as exc:  # another process signed with this key since: the node's count
                    if not any(text in str(exc).lower() for text in NONCE_TAKEN) or attempt == NONCE_RETRIES - 1:
                        raise self._refused(exc, sender) from None
                    self._nonces.pop(sender, None)
                    tx["nonce"] = self._nonce(sender)
        self._nonces[sender] += 1
        self._sent += 1
        return self._mined(tx_hash, data, create=to is None)

    def _mined(self, tx_hash, data: bytes, *, create: bool = False) -> tuple[Receipt, dict]:
        with self._node(f"waiting for transaction 0x{bytes(tx_hash).hex()}"):
            receipt = self._wait(tx_hash)
        if receipt["status"] != 1:
            raise TransactionReverted(f"reverted on chain in transaction 0x{bytes(tx_hash).hex()}")
        logs = tuple(RawLog(to_checksum_address(log["address"]), tuple(bytes(t) for t in log["topics"]),
                            bytes(log["data"]), int(log["blockNumber"])) for log in receipt["logs"])
        return Receipt("0x" + bytes(tx_hash).hex(), int(receipt["blockNumber"]), int(receipt["gasUsed"]),
                       logs, intrinsic_gas(data, create=create)), receipt

    def send_raw(self, raw: bytes) -> Receipt:
        from web3.exceptions import Web3RPCError

        with self._node("sending a signed transaction"):
            try:
                tx_hash = self.w3.eth.send_raw_transaction(raw)
            except Web3RPCError as exc:
                raise self._refused(exc, "its signer") from None
        return self._mined(tx_hash, b"")[0]

    def _wait(self, tx_hash, timeout_s: float = 60.0):
        from web3.exceptions import TransactionNotFound

        deadline = time.monotonic() + timeout_s
        pause = 0.001
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise ChainUnavailable(f"{self.url}: transaction 0x{bytes(tx_hash).hex()} not mined "
                                           f"within {timeout_s:.0f} s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    def deploy(self, initcode: bytes, sender: str) -> tuple[str, Receipt]:
        receipt, raw = self._transact(None, initcode, sender)
        return to_checksum_address(raw["contractAddress"]), receipt

    def send(self, to: str, data: bytes, sender: str) -> Receipt:
        return self._transact(to, data, sender)[0]

    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        from web3.exceptions import ContractLogicError

        tx = {"to": to_checksum_address(to), "data": data}
        if sender is not None:
            tx["from"] = to_checksum_address(sender)
        with self._node("a call"):
            try:
                return bytes(self.w3.eth.call(tx))
            except ContractLogicError as exc:
                raise TransactionReverted(_rpc_reason(exc)) from None

    def timestamp(self) -> int:
        with self._node("reading the clock"):
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> None:
        try:
            self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
            self.w3.provider.make_request("evm_mine", [])
        except Exception as exc:
            raise LedgerError(f"{self.url} cannot move its clock (not a development node): {exc}") from exc

    def block_number(self) -> int:
        with self._node("reading the block number"):
            return int(self.w3.eth.block_number)

    def head(self) -> Hashable:
        # views read the latest block; its hash (not its number) also tells a reorganised block apart
        with self._node("reading the latest block"):
            return bytes(self.w3.eth.get_block("latest")["hash"])

    def logs(self, address: str, from_block: int = 0, to_block: int | None = None) -> list[RawLog]:
        """Logs in ranges of at most LOG_RANGE blocks: nodes and RPC providers cap the range (or the results)
        one ``eth_getLogs`` may span."""
        end = self.block_number() if to_block is None else to_block
        raw = []
        for start in range(from_block, end + 1, LOG_RANGE):
            with self._node("reading logs"):
                raw += self.w3.eth.get_logs({"address": to_checksum_address(address), "fromBlock": start,
                                             "toBlock": min(start + LOG_RANGE - 1, end)})
        return [RawLog(to_checksum_address(log["address"]), tuple(bytes(t) for t in log["topics"]),
                       bytes(log["data"]), int(log["blockNumber"])) for log in raw]


def _account(key: str, field: str):
    from eth_account import Account

    try:
        return Account.from_key(key)
    except Exception:  # binascii.Error, ValueError: the message may quote the key, so none is shown
        raise InputError("not a private key: 32 bytes in hex, 0x-prefixed, between 1 and the curve order "
                         "(the value is not shown)", field=field) from None


def shown_url(url: str) -> str:
    """A node URL fit to print: a password in it and the values of query parameters (API keys) masked."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:***@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _rpc_reason(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) > 10:
        return revert_reason(bytes.fromhex(data[2:]))
    message = str(exc.args[0]) if exc.args else str(exc)
    return message.removeprefix("execution reverted: ").removeprefix("execution reverted")
