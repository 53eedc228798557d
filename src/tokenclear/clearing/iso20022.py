"""ISO 20022 collateral messages through models generated from the official schemas (``pyiso20022``, built
with xsdata from the ISO 20022 XSDs): a margin call out as ``colr.003.001.05`` (MarginCallRequestV05), a
member's agreement in as ``colr.004.001.05`` (MarginCallResponseV05, ``AgrdAmtDueToA``) and a dispute in as
``colr.009.001.05`` (MarginCallDisputeNotificationV05). (ISO 20022's colr.005 is a cancellation request,
not a dispute.)

Every message built or read is checked against the schema's facets as the generated model carries them
(required elements, lengths, patterns, digits, one element per choice) and parsed strictly (an unknown
element or attribute, or a value its type refuses, is an error naming it). DTDs and entities are refused.
The request names the clearing house as party A, the member as party B, the collateral account with its
type (house or client) and the vault's address in ``Oblgtn/BlckChainAdrOrWllt``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from xml.etree import ElementTree

from tokenclear.errors import InputError
from tokenclear.money import CENT

REQUEST_NS = "urn:iso:std:iso:20022:tech:xsd:colr.003.001.05"
RESPONSE_NS = "urn:iso:std:iso:20022:tech:xsd:colr.004.001.05"
DISPUTE_NS = "urn:iso:std:iso:20022:tech:xsd:colr.009.001.05"
MAX_MESSAGE_BYTES = 1_000_000
ISSUER = "tokenclear"
ACCOUNT_TYPE = {"HOUSE": "HOUS", "CUSTOMER": "CLIE"}  # segregation -> CollateralAccountType1Code


def message_id(key: str) -> str:
    """The ISO 20022 transaction id of a call (Max35Text): ``TC`` and 33 hex digits of SHA-256 of its key."""
    return "TC" + hashlib.sha256(key.encode()).hexdigest()[:33]


@dataclass(frozen=True)
class CallMessage:
    message_id: str  # TxId, at most 35 characters
    clearing_house: str
    member: str
    account: str
    segregation: str  # HOUSE or CUSTOMER
    wallet: str  # the vault's address, where the collateral is held
    valuation: datetime
    deadline: datetime
    amount: Decimal  # due to party A (the clearing house), > 0
    currency: str


@dataclass(frozen=True)
class CallAnswer:
    message: str  # colr.004 or colr.009
    transaction_id: str
    call_id: str  # the request's TxId it answers (MrgnCallReqId)
    account: str | None  # Oblgtn/CollAcctId/Id when given
    agreed: Decimal | None
    disputed: Decimal | None
    reason: str


def _models(namespace: str) -> Any:
    if namespace == REQUEST_NS:
        from pyiso20022.colr.colr_003_001_05 import colr_003_001_05 as module
    elif namespace == RESPONSE_NS:
        from pyiso20022.colr.colr_004_001_05 import colr_004_001_05 as module
    elif namespace == DISPUTE_NS:
        from pyiso20022.colr.colr_009_001_05 import colr_009_001_05 as module
    else:
        raise KeyError(namespace)
    return module


def margin_call_request(call: CallMessage) -> bytes:
    """The colr.003.001.05 document of one margin call, checked against the schema before it leaves."""
    if call.amount <= 0:
        raise ValueError("a margin call asks for a positive amount")
    m = _models(REQUEST_NS)
    amount = m.ActiveCurrencyAndAmount(value=call.amount.quantize(CENT), ccy=call.currency)
    account_type = ACCOUNT_TYPE.get(call.segregation.upper())
    obligation = m.Obligation9(
        pty_a=m.PartyIdentification178Choice(prtry_id=m.GenericIdentification36(id=call.clearing_house,
                                                                                issr=ISSUER)),
        pty_b=m.PartyIdentification178Choice(prtry_id=m.GenericIdentification36(id=call.member,
                                                                                issr=call.clearing_house)),
        coll_acct_id=m.CollateralAccount3(
            id=call.account, tp=None if account_type is None else m.CollateralAccountIdentificationType3Choice(
                tp=m.CollateralAccountType1Code(account_type))),
        blck_chain_adr_or_wllt=m.BlockChainAddressWallet5(id=call.wallet, nm="tokenclear collateral vault"),
        xpsr_tp=m.ExposureType11Code.FUTR,
        valtn_dt=m.DateAndDateTime2Choice(dt_tm=_xml_time(call.valuation)))
    result = m.MarginCallResult3(mrgn_call_rslt=m.MarginCallResult2Choice(mrgn_call_amt=m.Result1(
        due_to_pty_a=amount, addtl_inf=f"deliver by {call.deadline.isoformat()}")))
    document = m.Document(mrgn_call_req=m.MarginCallRequestV05(tx_id=call.message_id, oblgtn=obligation,
                                                               mrgn_call_rslt=result))
    errors = validate(document)
    if errors:
        raise ValueError(f"colr.003 would break the schema: {'; '.join(errors)}")
    return _serialize(document, REQUEST_NS)


def read_answer(data: bytes, *, source: str = "answer") -> CallAnswer:
    """A member's colr.004.001.05 (an agreed amount) or colr.009.001.05 (a disputed amount and the resolution
    asked for), parsed strictly and checked against the schema."""
    namespace = _namespace(data, source)
    if namespace not in (RESPONSE_NS, DISPUTE_NS):
        raise InputError(f"expected a colr.004.001.05 or colr.009.001.05 Document, found {{{namespace}}}", path=source)
    document = parse(data, namespace, source=source)
    if namespace == RESPONSE_NS:
        response = document.mrgn_call_rspn
        agreed = response.agrd_amt_due_to_a
        if agreed is None or agreed.agrd_amt_dtls is None:
            raise InputError("missing element MrgnCallRspn/AgrdAmtDueToA/AgrdAmtDtls", path=source)
        details = agreed.agrd_amt_dtls.vartn_mrgn_amt
        amount = _cents(details.agrd_amt.value, "AgrdAmt", source)
        return CallAnswer("colr.004", response.tx_id, details.mrgn_call_req_id, _account(response.oblgtn), amount,
                          None, details.addtl_inf or "")
    notice = document.mrgn_call_dspt_ntfctn
    dispute = notice.dspt_ntfctn.dspt_ntfctn_dtls
    if dispute is None:
        raise InputError("missing element MrgnCallDsptNtfctn/DsptNtfctn/DsptNtfctnDtls", path=source)
    details = dispute.vartn_mrgn_dspt.dspt_dtls
    resolutions = [one.cd.value if one.cd is not None else one.prtry_id.id
                   for one in dispute.vartn_mrgn_dspt.rsltn_tp_dtls]
    return CallAnswer("colr.009", notice.tx_id, details.mrgn_call_req_id, _account(notice.oblgtn), None,
                      _cents(details.dsptd_amt.value, "DsptdAmt", source),
                      "resolution " + ", ".join(resolutions) if resolutions else "")


def answer_call(request: bytes, *, transaction_id: str, agreed: Decimal | None = None,
                disputed: Decimal | None = None, resolution: str = "RECO", on: datetime | None = None) -> bytes:
    """A member's answer to a colr.003 request (the member side, used by the demo's members and the tests):
    a colr.004.001.05 agreeing ``agreed``, or a colr.009.001.05 disputing ``disputed`` and asking for
    ``resolution`` (DisputeResolutionType2Code: RECO reconciliation, RVAL revaluation, ...). The obligation
    is the request's, element for element."""
    if (agreed is None) == (disputed is None):
        raise ValueError("an answer agrees an amount or disputes one")
    call = parse(request, REQUEST_NS, source="colr.003").mrgn_call_req
    namespace = RESPONSE_NS if agreed is not None else DISPUTE_NS
    m = _models(namespace)
    obligation = _convert(call.oblgtn, m)
    currency = call.mrgn_call_rslt.mrgn_call_rslt.mrgn_call_amt.due_to_pty_a.ccy
    if agreed is not None:
        details = m.Amount1(agrd_amt=m.ActiveCurrencyAndAmount(value=agreed, ccy=currency),
                            mrgn_call_req_id=call.tx_id)
        document = m.Document(mrgn_call_rspn=m.MarginCallResponseV05(
            tx_id=transaction_id, oblgtn=obligation,
            agrd_amt_due_to_a=m.AgreedAmount1Choice(agrd_amt_dtls=m.AgreedAmount1(vartn_mrgn_amt=details))))
    else:
        from xsdata.models.datatype import XmlDate

        day = (on or datetime.now().astimezone()).date()
        dispute = m.VariationMarginDispute1(
            dspt_dtls=m.Dispute1(mrgn_call_req_id=call.tx_id, dsptd_amt=m.ActiveCurrencyAndAmount(
                value=disputed, ccy=currency), dspt_dt=XmlDate.from_date(day)),
            rsltn_tp_dtls=[m.DisputeResolutionType2Choice(cd=m.DisputeResolutionType2Code(resolution))])
        document = m.Document(mrgn_call_dspt_ntfctn=m.MarginCallDisputeNotificationV05(
            tx_id=transaction_id, oblgtn=obligation,
            dspt_ntfctn=m.DisputeNotification2Choice(dspt_ntfctn_dtls=m.DisputeNotification2(
                vartn_mrgn_dspt=dispute))))
    errors = validate(document)
    if errors:
        raise ValueError(f"the answer would break the schema: {'; '.join(errors)}")
    return _serialize(document, namespace)


def _convert(node: Any, module: Any) -> Any:
    """A generated model into the same-named model of another message's module (shared components)."""
    if isinstance(node, Enum):
        return getattr(module, type(node).__name__)(node.value)
    if isinstance(node, list):
        return [_convert(item, module) for item in node]
    if not dataclasses.is_dataclass(node):
        return node
    target = getattr(module, type(node).__name__)
    return target(**{one.name: _convert(getattr(node, one.name), module) for one in dataclasses.fields(node)})


def parse(data: bytes, namespace: str, *, source: str = "message") -> Any:
    """The Document of ``namespace`` in ``data``: strict parsing, then the schema's facets."""
    from xsdata.exceptions import ConverterWarning, ParserError
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.parsers.config import ParserConfig
    from xsdata.formats.dataclass.parsers.handlers import XmlEventHandler

    _refuse_unsafe(data, source)
    config = ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True,
                          fail_on_converter_warnings=True)
    try:
        document = XmlParser(config=config, handler=XmlEventHandler).from_bytes(data, _models(namespace).Document)
    except (ParserError, ConverterWarning, ValueError, TypeError) as error:
        raise InputError(f"not a valid {namespace.rsplit(':', 1)[-1]} message: {error}", path=source) from None
    errors = validate(document)
    if errors:
        raise InputError(f"breaks the {namespace.rsplit(':', 1)[-1]} schema: {'; '.join(errors)}", path=source)
    return document


def validate(node: Any, path: str = "Document") -> list[str]:
    """Where ``node`` (a generated model) breaks its schema's facets: required elements, lengths,
    patterns, bounds and digits, and exactly one element in each choice."""
    errors: list[str] = []
    present = 0
    for one in dataclasses.fields(node):
        meta = one.metadata
        name = meta.get("name", one.name)
        if meta.get("type") == "Attribute":
            where = f"{path}@{name}"
        else:  # an element, or the text of a simple-content type (an amount's value)
            where = path if "name" not in meta and one.name == "value" else f"{path}/{name}"
        value = getattr(node, one.name)
        if value is None or value == []:
            if meta.get("required") or meta.get("min_occurs", 0) > 0:
                errors.append(f"{where} is required")
            continue
        present += 1
        for item in value if isinstance(value, list) else [value]:
            if dataclasses.is_dataclass(item):
                errors += validate(item, where)
            else:
                errors += _facets(item, meta, where)
    if type(node).__name__.endswith("Choice") and present != 1:
        errors.append(f"{path} is a choice: exactly one element, found {present}")
    return errors


def _facets(value: Any, meta: dict, where: str) -> list[str]:
    out = []
    if isinstance(value, Enum):
        return out
    if isinstance(value, str):
        if "max_length" in meta and len(value) > meta["max_length"]:
            out.append(f"{where} '{value}' is longer than {meta['max_length']} characters")
        if "min_length" in meta and len(value) < meta["min_length"]:
            out.append(f"{where} is shorter than {meta['min_length']} characters")
        if "pattern" in meta and re.fullmatch(meta["pattern"], value) is None:
            out.append(f"{where} '{value}' does not match {meta['pattern']}")
    if isinstance(value, Decimal):
        if "min_inclusive" in meta and value < meta["min_inclusive"]:
            out.append(f"{where} {value} is below {meta['min_inclusive']}")
        exponent = value.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if "fraction_digits" in meta and places > meta["fraction_digits"]:
            out.append(f"{where} {value} has more than {meta['fraction_digits']} decimals")
        if "total_digits" in meta and len(value.as_tuple().digits) > meta["total_digits"]:
            out.append(f"{where} {value} has more than {meta['total_digits']} digits")
    return out


def _serialize(document: Any, namespace: str) -> bytes:
    from xsdata.formats.dataclass.serializers import XmlSerializer
    from xsdata.formats.dataclass.serializers.config import SerializerConfig

    text = XmlSerializer(config=SerializerConfig(indent="  ")).render(document, ns_map={None: namespace})
    return text.encode("utf-8")


def _xml_time(moment: datetime) -> Any:
    from xsdata.models.datatype import XmlDateTime

    return XmlDateTime.from_datetime(moment.replace(microsecond=0))


def _refuse_unsafe(data: bytes, source: str) -> ElementTree.Element:
    """The root of ``data`` parsed by defusedxml: a DTD, an entity or an external reference is refused in any
    encoding (the parser sees the decoded document, not a byte pattern), as is a message over the size cap."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    if len(data) > MAX_MESSAGE_BYTES:
        raise InputError(f"message larger than {MAX_MESSAGE_BYTES} bytes", path=source)
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise InputError(f"DTDs and entities are not accepted ({type(error).__name__})", path=source) from None
    except (ElementTree.ParseError, LookupError, UnicodeError, ValueError) as error:  # LookupError: an encoding
        raise InputError(f"not well-formed XML: {error}", path=source) from None  # the declaration names


def _namespace(data: bytes, source: str) -> str:
    root = _refuse_unsafe(data, source)
    if not root.tag.startswith("{") or not root.tag.endswith("}Document"):
        raise InputError(f"expected an ISO 20022 Document, found {root.tag}", path=source)
    return root.tag[1:root.tag.index("}")]


def _account(obligation: Any) -> str | None:
    return None if obligation.coll_acct_id is None else obligation.coll_acct_id.id


def _cents(value: Decimal, element: str, source: str) -> Decimal:
    """An amount of at most 18 digits (ActiveCurrencyAndAmount: totalDigits 18) of which 2 decimals."""
    if not value.is_finite() or value.adjusted() >= 16:
        raise InputError(f"'{value}' is not an amount of at most 18 digits", path=source, field=element)
    if value != value.quantize(CENT):
        raise InputError(f"'{value}' has more than 2 decimals", path=source, field=element)
    return value
