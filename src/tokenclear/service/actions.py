"""What the API's writes do, each through the workflow and the ledger the scheduler uses (under the service's
lock), each validated whole before anything is sent, and each sent under an instruction key made from the
caller's Idempotency-Key (``api:<client>:<key>``), so a retried request is a no-op on chain as well.

The members' wallets are held by the service as custodian: a member's pledge or substitution is signed with its
wallet's key (:class:`~tokenclear.service.core.WalletKeys`); releases, prices and parameters with the clearing
house's role keys. A member onboarded with a wallet of its own (on a node) signs its own transactions: the service
prepares them (:func:`unsigned_pledge`) and relays what the member signed (:func:`relay`), then follows the
vault's events like any other."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from eth_utils import is_address, to_checksum_address
from sqlalchemy import delete, select

from tokenclear.clearing.coverage import MICRO, units_for
from tokenclear.clearing.demo import Demo
from tokenclear.clearing.instructions import WorkflowError
from tokenclear.clearing.iso20022 import read_answer
from tokenclear.collateral.valuation import post_haircut_micro
from tokenclear.errors import InputError
from tokenclear.market.oracle import CLOCK_SKEW_S
from tokenclear.service.auth import Principal
from tokenclear.service.core import Service
from tokenclear.service.views import Forbidden, NotFound, account_of, call, usd
from tokenclear.store import queries
from tokenclear.store.models import Account, Member, Position, Requirement, ServiceEvent

CURE_TOKEN = "TBILL"
MAX_POSITIONS = 100_000  # rows in one upload


def instruction_key(principal: Principal, key: str) -> str:
    return f"api:{principal.client}:{key}"


def _writer(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"the {principal.role} role may not do this (it needs {' or '.join(roles)})")


def _symbol(service: Service, symbol: str, field: str = "symbol") -> str:
    known = [token.symbol for token in service.workflow.tokens]
    if symbol not in known:
        raise InputError(f"unknown collateral token '{symbol}' (the vault takes {', '.join(known)})", field=field)
    return symbol


def _units(value, field: str = "units") -> int:
    try:
        units = int(str(value))
    except ValueError:
        raise InputError(f"'{value}' is not a whole number of token base units", field=field) from None
    if units <= 0:
        raise InputError(f"{units}: must be positive", field=field)
    return units


def _wallet_holds(service: Service, member: str, symbol: str, units: int, field: str = "units") -> str:
    """The member's wallet, the service signing for it (its custodian), holding at least ``units``."""
    wallet = service.wallet(member)
    _custodian_of(service, member, wallet)
    held = service.ledger.balance(symbol, wallet)
    if held < units:
        raise InputError(f"member {member}'s wallet holds {held} {symbol} units, fewer than the {units} asked",
                         field=field)
    return wallet


def _custodian_of(service: Service, member: str, wallet: str) -> None:
    if not service.chain.signs_for(wallet):
        raise WorkflowError(f"member {member} signs its own transactions (wallet {wallet}): ask for the unsigned "
                            "pledge (POST /api/chain/unsigned/pledge), sign it, and POST it to /api/chain/transactions")


def _post(service: Service, symbol: str, units: int) -> Decimal:
    """Post-haircut value (USD) of ``units`` of ``symbol`` as the vault values it now (0 if not eligible)."""
    a = service.ledger.asset_parameters(symbol)
    if not a.eligible:
        return Decimal(0)
    return Decimal(post_haircut_micro(units, price_e8=a.price_e8, haircut_bps=a.haircut_bps,
                                      decimals=a.decimals)) / MICRO


# ---- members with their own wallets ----------------------------------------------------------------------
MEMBER_ID = re.compile(r"[A-Z0-9]{2,16}")
ACCOUNT_SUFFIX = {"HOUSE": "HOUSE", "CUSTOMER": "CUST"}


def onboard_member(service: Service, principal: Principal, member_id: str, wallet: str,
                   segregations: list[str]) -> dict:
    """A new member: its wallet on the allow-list and its accounts (``<id>-HOUSE``, ``<id>-CUST``) opened on the
    vault and in the book. A wallet the service holds no key for is the member's own: it signs its own
    transactions (:func:`unsigned_pledge`, :func:`relay`). Idempotent: the same member again changes nothing."""
    from tokenclear.clearing import onboarding

    _writer(principal, "ccp")
    if not MEMBER_ID.fullmatch(member_id or ""):
        raise InputError(f"member id '{member_id}': 2 to 16 capital letters and digits", field="id")
    if not is_address(wallet or ""):
        raise InputError(f"'{wallet}' is not an address (0x and 40 hex digits)", field="wallet")
    wallet = to_checksum_address(wallet)
    unknown = [s for s in segregations if s not in ACCOUNT_SUFFIX]
    if unknown or not segregations:
        raise InputError(f"segregations: one or both of {', '.join(ACCOUNT_SUFFIX)}", field="segregations")
    rows = [onboarding.AccountRow(f"{member_id}-{ACCOUNT_SUFFIX[s]}", member_id, s, wallet)
            for s in dict.fromkeys(segregations)]
    with service.lock:
        opened = onboarding.onboard(service.store, service.ledger, rows, salt=onboarding.account_salt(service.store))
    return {"member": member_id, "wallet": wallet, "accounts": [row.account for row in rows], "opened": opened,
            "signs_own_transactions": not service.chain.signs_for(wallet)}


def unsigned_pledge(service: Service, principal: Principal, key: str, account_id: str, symbol: str, units) -> dict:
    """The transactions the account's member signs itself to pledge ``units`` of ``symbol`` (an approval of the
    vault first if it is short), the pledge keyed on the caller's Idempotency-Key like any instruction."""
    _writer(principal, "ccp", "member")
    symbol, units = _symbol(service, symbol), _units(units)
    with service.store.session() as session:
        account = account_of(session, principal, account_id)
        member, onchain = account.member_id, account.onchain_id
    wallet = service.wallet(member)
    with service.lock:
        held = service.ledger.balance(symbol, wallet)
        transactions = service.ledger.pledge_transactions(instruction_key(principal, key),
                                                          bytes.fromhex(onchain[2:]), symbol, units, wallet)
    if held < units:
        raise InputError(f"member {member}'s wallet holds {held} {symbol} units, fewer than the {units} asked",
                         field="units")
    return {"account": account_id, "from": wallet, "chain_id": service.chain.chain_id, "transactions": transactions,
            "next": "sign each transaction in order with the wallet's key (nonce, gas and fees are the signer's) "
                    "and POST it to /api/chain/transactions, or send it to the node: the book follows the vault"}


def relay(service: Service, principal: Principal, raw: str) -> dict:
    """Send a transaction a member signed with its own wallet to the node, then bring the book up to the vault
    and every open call of the member's accounts up to date. Only a member's wallet (the caller's own, for a
    member) and only this deployment's contracts."""
    import rlp
    from eth_account import Account as Signer
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    _writer(principal, "ccp", "member")
    try:
        signed = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
        sender = Signer.recover_transaction(signed)
        # a typed (EIP-2718) transaction starts with its type byte; a legacy one is the RLP list itself
        to = TypedTransaction.from_bytes(HexBytes(signed)).as_dict().get("to") if signed[0] < 0x80 else \
            rlp.decode(signed)[3]
    except (ValueError, TypeError, IndexError, AttributeError, rlp.DecodingError) as error:
        raise InputError(f"not a signed transaction: {error}", field="raw") from None
    to = to_checksum_address(to) if to else None
    with service.store.session() as session:
        member = session.scalar(select(Member).where(Member.wallet == sender))
        if member is None or (not principal.reads_all and member.id != principal.member):
            raise InputError(f"the transaction is signed by {sender}, not by a wallet of yours", field="raw")
        accounts = [a.id for a in session.scalars(select(Account).where(Account.member_id == member.id))]
    if to not in service.ledger.contract_addresses():
        raise InputError(f"the transaction goes to {to}, not to a contract of this clearing system", field="raw")
    with service.lock:
        receipt = service.chain.send_raw(signed)
        states = {account: service.workflow.on_collateral(account) for account in accounts}  # each syncs first
    return {"tx": receipt.tx_hash, "block": receipt.block, "from": sender, "to": to,
            "call_states": {account: state for account, state in states.items() if state is not None}}


# ---- collateral ----------------------------------------------------------------------------------------
def pledge(service: Service, principal: Principal, key: str, account_id: str, symbol: str, units) -> dict:
    """The member's wallet pledges ``units`` of ``symbol`` into the account; its open call moves by the cover."""
    _writer(principal, "ccp", "member")
    symbol, units = _symbol(service, symbol), _units(units)
    with service.store.session() as session:
        account = account_of(session, principal, account_id)
        member, onchain = account.member_id, account.onchain_id
    with service.lock:
        wallet = _wallet_holds(service, member, symbol, units)
        receipt = service.ledger.pledge(instruction_key(principal, key), bytes.fromhex(onchain[2:]), symbol, units,
                                        wallet)
        state = service.workflow.on_collateral(account_id)
    return {"account": account_id, "symbol": symbol, "units": str(units), "tx": receipt.tx_hash,
            "block": receipt.block, "call_state": state}


def release(service: Service, principal: Principal, key: str, account_id: str, symbol: str, units) -> dict:
    """A release request: granted only if the account stays covered, no call is open and it is not in default."""
    _writer(principal, "ccp", "member")
    symbol, units = _symbol(service, symbol), _units(units)
    with service.store.session() as session:
        account_of(session, principal, account_id)
    with service.lock:
        result = service.workflow.request_release(instruction_key(principal, key), account_id, symbol, units)
    return {"account": account_id, "symbol": symbol, "units": str(units), "instruction": result}


def substitute(service: Service, principal: Principal, key: str, account_id: str, out_symbol: str, out_units,
               in_symbol: str, in_units) -> dict:
    """Swap collateral atomically on chain (the vault takes ``in`` and returns ``out`` in one transaction), if
    the account stays covered at the vault's values and it is not in default."""
    _writer(principal, "ccp", "member")
    out_symbol, in_symbol = _symbol(service, out_symbol, "out_symbol"), _symbol(service, in_symbol, "in_symbol")
    out_units, in_units = _units(out_units, "out_units"), _units(in_units, "in_units")
    if out_symbol == in_symbol:
        raise InputError("a substitution swaps one token for another", field="in_symbol")
    with service.store.session() as session:
        account = account_of(session, principal, account_id)
        if queries.in_default(session, account_id):
            raise WorkflowError(f"{account_id} is in default")
        held = queries.holdings(session).get((account_id, out_symbol), 0)
        if held < out_units:
            raise InputError(f"{account_id} holds {held} {out_symbol} units, fewer than the {out_units} asked",
                             field="out_units")
        required = queries.latest_requirement(session, account_id)
        with service.lock:
            counted = service.workflow.counted(session, [account], {account_id: required})[account_id]
            after = counted - _post(service, out_symbol, out_units) + _post(service, in_symbol, in_units)
        member, onchain = account.member_id, account.onchain_id
    if after < required:
        raise WorkflowError(f"substitution refused: {account_id} would hold {usd(after)} USD against a requirement "
                            f"of {usd(required)} USD")
    with service.lock:
        wallet = _wallet_holds(service, member, in_symbol, in_units, "in_units")
        receipt = service.ledger.substitute(instruction_key(principal, key), bytes.fromhex(onchain[2:]), out_symbol,
                                            out_units, in_symbol, in_units, wallet)
        service.workflow.sync()
    return {"account": account_id, "out": {"symbol": out_symbol, "units": str(out_units)},
            "in": {"symbol": in_symbol, "units": str(in_units)}, "tx": receipt.tx_hash, "block": receipt.block}


# ---- calls ---------------------------------------------------------------------------------------------
def answer_call(service: Service, principal: Principal, key: str, call_key: str, *, symbol: str = CURE_TOKEN,
                units=None) -> dict:
    """Cure a call by pledging ``units`` of ``symbol`` (default: exactly what covers the call's requirement at
    the vault's values now) from the member's wallet into the called account."""
    _writer(principal, "ccp", "member")
    found = call(service, principal, call_key)
    if found["state"] not in ("issued", "acknowledged", "partially_cured", "escalated"):
        raise WorkflowError(f"call '{call_key}' is {found['state']}: nothing to answer")
    symbol = _symbol(service, symbol)
    if units is None:
        with service.store.session() as session:
            account = session.get(Account, found["account"])
            row = queries.call_by_key(session, call_key)
            required = session.get(Requirement, (row.cycle_id, account.id)).requirement
            with service.lock:
                gap = required - service.workflow.counted(session, [account], {account.id: required})[account.id]
        if gap <= 0:
            with service.lock:
                state = service.workflow.on_collateral(found["account"])
            return {"call": call_key, "state": state, "pledged": None}
        with service.lock:
            a = service.ledger.asset_parameters(symbol)
            units = units_for(int(gap * MICRO) + 1, price_e8=a.price_e8, haircut_bps=a.haircut_bps, decimals=a.decimals)
    result = pledge(service, principal, key, found["account"], symbol, units)
    return {"call": call_key, "state": result["call_state"], "pledged": result}


def answer_message(service: Service, principal: Principal, call_key: str, data: bytes) -> dict:
    """A colr.004 (agreeing an amount) or colr.009 (disputing it) on the call ``call_key``."""
    _writer(principal, "ccp", "member")
    found = call(service, principal, call_key)
    answer = read_answer(data, source="upload")
    if answer.call_id != found["message_id"]:
        raise InputError(f"the message answers call '{answer.call_id}', not this call ({found['message_id']})",
                         field="MrgnCallRspn/Oblgtn")
    with service.lock:
        state = service.workflow.receive_answer(data, source=f"upload by {principal.client}")
    return {"call": call_key, "state": state}


# ---- positions -----------------------------------------------------------------------------------------
def parse_positions(data: bytes | list, source: str) -> list[tuple[int, str, str, int]]:
    """(line, account, instrument, quantity) from a CSV upload (header ``account,instrument,quantity``) or a
    JSON list of objects (line = its index + 1)."""
    rows = []
    if isinstance(data, list):
        for index, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise InputError("each position is an object", path=source, line=index)
            rows.append((index, item.get("account"), item.get("instrument"), item.get("quantity")))
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", path=source) from None
        reader = csv.DictReader(io.StringIO(text))
        missing = {"account", "instrument", "quantity"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"the header lacks {', '.join(sorted(missing))}", path=source, line=1)
        for row in reader:
            rows.append((reader.line_num, row["account"], row["instrument"], row["quantity"]))
    if len(rows) > MAX_POSITIONS:
        raise InputError(f"{len(rows)} rows: at most {MAX_POSITIONS} in one upload", path=source)
    out, seen = [], set()
    for line, account, instrument, quantity in rows:
        for name, value in (("account", account), ("instrument", instrument)):
            if not isinstance(value, str) or not value.strip():
                raise InputError("blank or missing", path=source, line=line, field=name)
        try:
            number = Decimal(str(quantity).strip())
        except (InvalidOperation, ValueError):
            raise InputError(f"'{quantity}' is not a number", path=source, line=line, field="quantity") from None
        if number != number.to_integral_value() or not number.is_finite():
            raise InputError(f"'{quantity}' is not a whole number of contracts", path=source, line=line,
                             field="quantity")
        if (account, instrument) in seen:
            raise InputError(f"{account} {instrument} appears twice", path=source, line=line, field="instrument")
        seen.add((account, instrument))
        out.append((line, account.strip(), instrument.strip(), int(number)))
    return out


def upload_positions(service: Service, principal: Principal, data: bytes | list, source: str) -> dict:
    """Replace the positions of every account the upload names (a member: only its own accounts; the clearing
    house: any), in one transaction; they count from the next cycle."""
    _writer(principal, "ccp", "member")
    rows = parse_positions(data, source)
    risk = service.workflow.risk
    for line, _, instrument, _ in rows:
        if instrument not in risk.catalogue.instruments:
            raise InputError(f"unknown instrument '{instrument}'", path=source, line=line, field="instrument")
        underlying = risk.catalogue.instruments[instrument].underlying
        if underlying not in risk.market.series:
            raise InputError(f"instrument '{instrument}' moves with '{underlying}', whose prices the service has "
                             "not loaded (it loads those of the book it opened with: restart it to load more)",
                             path=source, line=line, field="instrument")
    with service.store.session() as session:
        for line, account, _, _ in rows:
            try:
                found = account_of(session, principal, account)
            except NotFound:
                raise InputError(f"no account '{account}'", path=source, line=line, field="account") from None
            if found.segregation == "FUND":
                raise InputError(f"'{account}' is a default-fund account: it holds no positions", path=source,
                                 line=line, field="account")
        named = sorted({account for _, account, _, _ in rows})
        session.execute(delete(Position).where(Position.account_id.in_(named)))
        for _, account, instrument, quantity in rows:
            if quantity:
                session.add(Position(account_id=account, instrument=instrument, quantity=quantity))
    return {"accounts": named, "positions": sum(1 for row in rows if row[3]), "effective": "from the next cycle"}


# ---- prices and parameters -----------------------------------------------------------------------------
def post_prices(service: Service, principal: Principal, quotes: list[dict]) -> dict:
    """Quotes into the oracle guard's feed (USD per unit; ``at`` default: the service clock's now)."""
    _writer(principal, "feed", "ccp")
    series = {token.series for token in service.workflow.tokens if token.series}
    now = service.clock.now()
    parsed = []
    for index, quote in enumerate(quotes):
        where = f"quotes[{index}]"
        if quote.get("series") not in series:
            raise InputError(f"series '{quote.get('series')}': the guard prices {', '.join(sorted(series))}",
                             field=f"{where}.series")
        try:
            price = Decimal(str(quote.get("price")))
        except InvalidOperation:
            raise InputError(f"'{quote.get('price')}' is not a decimal price", field=f"{where}.price") from None
        if not price.is_finite() or price <= 0:
            raise InputError(f"{price}: a price is positive", field=f"{where}.price")
        at = quote.get("at") or now
        if isinstance(at, str):
            from tokenclear.service.clock import parse_moment

            at = parse_moment(at, f"{where}.at")
        if at > now + timedelta(seconds=CLOCK_SKEW_S):
            raise InputError(f"{at.isoformat()} is after the service clock's {now.isoformat()}", field=f"{where}.at")
        parsed.append((quote["series"], str(quote.get("source") or principal.client), price, at))
    for series_name, source, price, at in parsed:
        service.workflow.feed.post(series_name, source, price, at, principal.client)
    return {"posted": len(parsed), "at": now.isoformat()}


def set_token_parameters(service: Service, principal: Principal, key: str, symbol: str, *,
                         haircut_floor_bps: int | None, suspended: bool, reason: str) -> dict:
    """The risk desk's standing decision on a token: a haircut floor over the calibration and/or a suspension
    (ineligible), recorded with its reason and pushed on chain now; every later cycle applies it too."""
    _writer(principal, "ccp")
    symbol = _symbol(service, symbol)
    if haircut_floor_bps is not None and not 0 <= haircut_floor_bps <= 9_999:
        raise InputError(f"{haircut_floor_bps}: a haircut lies in 0..9999 bps", field="haircut_floor_bps")
    if not reason.strip():
        raise InputError("say why (the review keeps it)", field="reason")
    detail = {"symbol": symbol, "haircut_floor_bps": haircut_floor_bps, "suspended": suspended,
              "reason": reason.strip(), "by": principal.client}
    with service.lock:
        with service.store.session() as session:
            session.add(ServiceEvent(key=f"parameter:{instruction_key(principal, key)}", kind="parameter",
                                     at=service.clock.now(), detail=detail))
        apply_parameter(service, detail)
        token = next(t for t in service.workflow.tokens if t.symbol == symbol)
        now = service.ledger.asset_parameters(symbol)
        params = {"symbol": symbol, "haircut_bps": max(now.haircut_bps, haircut_floor_bps or 0),
                  "price_e8": 0 if token.series is None else now.price_e8, "eligible": now.eligible and not suspended}
        if not suspended and not now.eligible:  # lifting a suspension: the next cycle decides eligibility afresh
            params["eligible"] = now.price_e8 > 0
        result = service.workflow.execute(f"{instruction_key(principal, key)}:asset", "set_asset", params)
    return {"parameter": detail, "on_chain": params, "instruction": result}


def apply_parameter(service: Service, detail: dict) -> None:
    parameters = service.workflow.parameters
    if detail["haircut_floor_bps"] is None:
        parameters.haircut_floor_bps.pop(detail["symbol"], None)
    else:
        parameters.haircut_floor_bps[detail["symbol"]] = int(detail["haircut_floor_bps"])
    (parameters.suspended.add if detail["suspended"] else parameters.suspended.discard)(detail["symbol"])


def restore_parameters(service: Service) -> int:
    """The risk desk's decisions, replayed in order at start."""
    with service.store.session() as session:
        rows = list(session.scalars(select(ServiceEvent).where(ServiceEvent.kind == "parameter")
                                    .order_by(ServiceEvent.id)))
    for row in rows:
        apply_parameter(service, row.detail)
    return len(rows)


# ---- defaults --------------------------------------------------------------------------------------------
def declare_default(service: Service, principal: Principal, member: str, scenario: str) -> dict:
    """The clearing house declares ``member`` in default and manages it on chain under ``scenario`` (the stress
    library's): the plan (ports, seizures, the auction, the waterfall) is fixed and stored when the case opens,
    each step is keyed, and a repeat carries on from the stored plan (:mod:`tokenclear.default.manage`). A
    liquidity provider is onboarded on the custodian's keys the first time."""
    from tokenclear.default import drill, manage
    from tokenclear.stress.scenarios import load_library

    _writer(principal, "ccp")
    library = load_library(service.settings.data_dir / "stress")
    if scenario not in library:
        raise InputError(f"unknown scenario '{scenario}'; choose one of {', '.join(library)}", field="scenario")
    with service.store.session() as session:
        if session.get(Member, member) is None or member in (drill.LIQUIDITY_MEMBER, "CCP"):
            raise InputError(f"no clearing member '{member}'", field="member")
        provider = session.get(Member, drill.LIQUIDITY_MEMBER)
    with service.lock:
        wallet = provider.wallet if provider is not None else drill.onboard_liquidity_provider(
            service.store, service.ledger, service.workflow, service.new_wallet(drill.LIQUIDITY_MEMBER),
            salt=Demo.SALT)
        parties = manage.Parties(liquidity_provider=wallet, liquidity_account=drill.LIQUIDITY_ACCOUNT)
        manage.open_case(service.settings, service.workflow, member, scenario, parties, at=service.clock.now())
        case = manage.run(service.workflow, member)
    return drill.summary(case)


# ---- cycles and the chain ------------------------------------------------------------------------------
def run_cycle(service: Service, principal: Principal, kind: str) -> dict:
    """A cycle now, on the operator's order: ``scheduled`` (end of day: VM, requirements, calls) or ``intraday``
    (revaluation against the last end-of-day requirements)."""
    _writer(principal, "ccp")
    if kind not in ("scheduled", "intraday"):
        raise InputError(f"kind '{kind}': scheduled or intraday", field="kind")
    with service.lock:
        at = service.clock.now()
        as_of = None
        if kind == "intraday":
            with service.store.session() as session:
                last = queries.last_closed_cycle(session)
                if last is None:
                    raise WorkflowError("no cycle has run yet")
                as_of = last.detail["date"]
        summary = service.workflow.run_cycle(at, kind=kind, as_of=None if as_of is None else np.datetime64(as_of))
    return {"key": summary.key, "at": summary.at.isoformat(), "as_of": summary.as_of,
            "requirement_usd": usd(summary.requirement_usd), "collateral_usd": usd(summary.collateral_usd),
            "calls_issued": summary.calls_issued, "called_usd": usd(summary.called_usd),
            "vm_paid_by_members_usd": usd(summary.vm_paid_by_members_usd),
            "vm_paid_to_members_usd": usd(summary.vm_paid_to_members_usd), "warnings": summary.warnings}


def reconcile(service: Service, principal: Principal) -> dict:
    _writer(principal, "ccp")
    with service.lock:
        breaks = service.workflow.reconcile()
    return {"clean": not breaks, "breaks": [{"account": b.account, "asset": b.asset, "book_units": str(b.book_units),
                                             "chain_units": str(b.chain_units), "cause": b.cause} for b in breaks]}
