"""The service's state: the settings, the store, the chain, the one :class:`~tokenclear.clearing.workflow.Workflow`
the API and the scheduler share, its clock, the lease and the token signer.

A new book (no deployment recorded in the database) is the demo's generated book of members opened on a new
deployment at the clock's start (:class:`ServiceBook`); a book with a deployment is attached on its JSON-RPC
node and every instruction left in flight is completed through the workflow's recovery. The embedded EVM lives
and dies with the process, so a book made on it cannot be served again: that case is refused with the remedy.

The workflow and the ledger are not thread-safe (the embedded EVM is one Python object): every use of them,
by the API's worker threads or by the scheduler, holds :attr:`Service.lock`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import structlog
from eth_utils import keccak
from sqlalchemy import select

from tokenclear.clearing import system
from tokenclear.clearing.demo import Demo
from tokenclear.clearing.interfaces import HistoryFeed
from tokenclear.clearing.requirements import stored_book
from tokenclear.clearing.workflow import Workflow
from tokenclear.errors import ConfigurationError, InputError
from tokenclear.instruments.catalogue import load_catalogue
from tokenclear.ledger.chain import Chain, InProcessChain, RpcChain
from tokenclear.ledger.connect import open_chain
from tokenclear.service import auth
from tokenclear.service.clock import ReplayClock, WallClock
from tokenclear.service.feed import PostedFeed
from tokenclear.service.lease import Leases
from tokenclear.settings import Settings
from tokenclear.store.models import Cycle, Member
from tokenclear.store.queries import utc
from tokenclear.store.store import Store, open_store

log = structlog.get_logger("tokenclear.service")

#: The clients a new book is served with: the clearing house, the regulator, one price feed; and one per member.
STANDING_CLIENTS = (("ccp", "ccp"), ("regulator", "regulator"), ("feed", "feed"))
DEFAULT_MEMBERS = 50


def member_client(member: str) -> str:
    return f"member-{member}"


class WalletKeys:
    """The members' wallet keys, held by the service as their custodian: each derived from one seed kept in the
    work folder (mode 0600), so a restarted service can sign for every member again over JSON-RPC."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(32))
        self._seed = bytes.fromhex(path.read_text().strip())

    def key(self, member: str) -> str:
        return "0x" + keccak(self._seed + member.encode()).hex()


class ServiceBook(Demo):
    """The demo's generated book (members, accounts, positions, opening collateral, the default fund), opened at
    the service clock's start instead of a scenario's first day; members' wallets derived from the custodian's
    seed."""

    def __init__(self, *, settings: Settings, chain: Chain, store: Store, members: int, start: datetime,
                 clock, wallets: WalletKeys, progress=lambda _: None) -> None:
        super().__init__(settings=settings, chain=chain, store=store, scenario="svb", members=members,
                         progress=progress)
        self.days = np.array([np.datetime64(start.date(), "D")])
        self.opening, self.clock, self.wallet_keys = start, clock, wallets
        self.description = f"served book of {members} members opened {start.isoformat()}"

    def new_wallet(self, member: str) -> str:
        return custodial_wallet(self.chain, self.wallet_keys, member)


def custodial_wallet(chain: Chain, keys: WalletKeys, member: str) -> str:
    """A new participant's wallet: on a node, the custodian's key for it (funded for gas), so a restart can sign
    for it; on the embedded EVM (which a restart does not outlive), a fresh account."""
    if isinstance(chain, RpcChain):
        return chain.add_wallet(keys.key(member), f"wallet of {member}")
    return chain.new_account()


@dataclass
class Service:
    settings: Settings
    store: Store
    chain: Chain
    workflow: Workflow
    clock: ReplayClock | WallClock
    database: str
    credentials: Path | None  # the file holding the new book's client secrets (None: an attached book)
    signer: auth.Signer
    wallet_keys: WalletKeys
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    lock: threading.RLock = field(default_factory=threading.RLock)
    recovered: int = 0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.leases = Leases(self.store, self.instance)

    @property
    def ledger(self):
        return self.workflow.ledger

    def new_wallet(self, member: str) -> str:
        return custodial_wallet(self.chain, self.wallet_keys, member)

    def wallet(self, member: str) -> str:
        with self.store.session() as session:
            row = session.get(Member, member)
            if row is None:
                raise ConfigurationError(f"no member '{member}'")
            return row.wallet


def open_service(settings: Settings, *, database: str | None = None, rpc_url: str | None = None,
                 clock: ReplayClock | WallClock, members: int | None = None, progress=lambda _: None) -> Service:
    """The service over ``database``: attached and recovered when it records a deployment, else a new book of
    ``members`` members (default 50; refused for a book that has its members)."""
    chain = open_chain(settings, rpc_url)
    url = database or settings.database_url or _new_database(settings.work_dir)
    store = open_store(url)
    folder = settings.work_dir
    signer = auth.Signer(settings.token_algorithm, folder / f"token-key-{settings.token_algorithm}.pem",
                         timedelta(seconds=settings.token_ttl_s))
    wallets = WalletKeys(folder / "wallet-seed")
    try:
        system.recorded_deployment(store)
        attached = True
    except ConfigurationError:
        attached = False
    if attached:
        if members is not None:
            raise InputError(f"the book at {url} has its members already: leave out --members", field="--members")
        if isinstance(chain, InProcessChain):
            raise ConfigurationError(f"the book at {url} was opened on an embedded EVM, whose state ended with the "
                                     "process that made it: serve a new book (leave out --database), or serve books "
                                     "on a node that outlives the service (--rpc-url)")
        workflow, recovered, warnings = _attach(settings, store, chain, clock, wallets)
        service = Service(settings, store, chain, workflow, clock, url, None, signer, wallets, recovered=recovered,
                          warnings=warnings)
    else:
        progress("opening a new book")
        clock.pause()  # the book opens at the clock's start, however long its set-up takes
        book = ServiceBook(settings=settings, chain=chain, store=store, members=members or DEFAULT_MEMBERS,
                           start=clock.now(), clock=clock, wallets=wallets, progress=progress)
        book.setup()
        workflow = book.workflow
        workflow.feed = PostedFeed(store, HistoryFeed(book.collateral_market[0]))
        service = Service(settings, store, chain, workflow, clock, url, None, signer, wallets,
                          warnings=list(book.deployment_warnings))
        service.credentials = _provision(store, folder, url)
    clock.run()
    return service


def _attach(settings: Settings, store: Store, chain: Chain, clock, wallets: WalletKeys):
    """The recorded deployment on ``chain``, its members' keys, the workflow, and the instructions recovered."""
    warnings = []
    with store.session() as session:
        members = list(session.scalars(select(Member)))
        latest = session.scalar(select(Cycle.at).order_by(Cycle.at.desc()))
    for member in members:
        if isinstance(chain, RpcChain) and not chain.signs_for(member.wallet):  # the CCP's own: the operator key
            address = chain.add_wallet(wallets.key(member.id), f"wallet of {member.id}")
            if address != member.wallet:
                warnings.append(f"member {member.id}'s wallet {member.wallet} is not the custodian's key: the "
                                "service cannot pledge for it (the member signs its own pledges)")
    if latest is not None:
        clock.hold(utc(latest))
    ledger = system.attach_ledger(store, chain)
    catalogue = load_catalogue(settings.instruments_file)
    inputs = system.clearing_inputs(settings, stored_book(store, catalogue), catalogue)
    workflow = system.build_workflow(settings, store, ledger, clock, inputs,
                                     feed=PostedFeed(store, HistoryFeed(inputs.collateral_market[0])))
    recovered = len(workflow.recover())
    log.info("book attached", recovered=recovered)
    return workflow, recovered, warnings


def _provision(store: Store, folder: Path, url: str) -> Path:
    """The new book's API clients, their secrets written once to a file only this user can read."""
    with store.session() as session:
        members = [m.id for m in session.scalars(select(Member).order_by(Member.id))]
    clients = {}
    for client, role in STANDING_CLIENTS:
        clients[client] = {"role": role, "secret": auth.add_client(store, client, role)}
    for member in members:
        client = member_client(member)
        clients[client] = {"role": "member", "member": member, "secret": auth.add_client(store, client, "member",
                                                                                         member)}
    stem = Path(url.removeprefix("sqlite:///")).stem if url.startswith("sqlite:///") else "book"
    path = folder / f"{stem}.credentials.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"database": url, "clients": clients}, out, indent=1)
    return path


def _new_database(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / ('serve-' + datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f') + '.db')}"
