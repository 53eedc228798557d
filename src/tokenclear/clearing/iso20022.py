"""ISO 20022 collateral messages: a margin call out as ``colr.003`` (MarginCallRequest), a member's
answer in from ``colr.004`` (MarginCallResponse).

Element names follow colr.003.001.05 / colr.004.001.05 for the fields used here (transaction id,
obligation with party A = the clearing house, party B = the member and the collateral account,
exposure type, valuation date, the amount due to party A); the XSDs are not shipped, so messages are
not validated against them. Responses are parsed strictly: a missing element or a bad amount is an
:class:`~tokenclear.errors.InputError` naming the element. DTDs and entities are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree

from tokenclear.errors import InputError
from tokenclear.money import CENT

REQUEST_NS = "urn:iso:std:iso:20022:tech:xsd:colr.003.001.05"
RESPONSE_NS = "urn:iso:std:iso:20022:tech:xsd:colr.004.001.05"
MAX_MESSAGE_BYTES = 1_000_000


@dataclass(frozen=True)
class CallMessage:
    transaction_id: str  # the call's idempotency key
    clearing_house: str
    member: str
    account: str
    valuation: datetime
    deadline: datetime
    amount: Decimal  # due to party A (the clearing house), > 0
    currency: str


@dataclass(frozen=True)
class CallAnswer:
    transaction_id: str
    call_id: str  # the request's TxId it answers
    agreed: Decimal | None
    disputed: Decimal | None
    reason: str


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def margin_call_request(call: CallMessage) -> bytes:
    """The colr.003 document of one margin call."""
    if call.amount <= 0:
        raise ValueError("a margin call asks for a positive amount")
    ElementTree.register_namespace("", REQUEST_NS)
    document = ElementTree.Element(f"{{{REQUEST_NS}}}Document")
    request = _sub(document, "MrgnCallReq")
    _sub(request, "TxId", call.transaction_id)
    obligation = _sub(request, "Oblgtn")
    _sub(_sub(_sub(obligation, "PtyA"), "Id"), "Nm", call.clearing_house)
    _sub(_sub(_sub(obligation, "PtyB"), "Id"), "Nm", call.member)
    _sub(_sub(obligation, "CollAcctId"), "Id", call.account)
    _sub(obligation, "ExpsrTp", "FUTR")
    _sub(_sub(obligation, "ValtnDt"), "DtTm", call.valuation.isoformat())
    result = _sub(request, "MrgnCallRslt")
    _sub(_sub(result, "MrgnCallAmt"), "DlvrMrgnAmt", f"{call.amount:.2f}", Ccy=call.currency)
    _sub(request, "AddtlInf", f"deliver by {call.deadline.isoformat()}")
    for element in document.iter():  # unqualified children, the namespace on the Document
        if not element.tag.startswith("{"):
            element.tag = f"{{{REQUEST_NS}}}{element.tag}"
    return ElementTree.tostring(document, encoding="utf-8", xml_declaration=True)


def _text(root: ElementTree.Element, path: str, *, source: str, required: bool = True) -> str | None:
    """Text of ``path`` (``A/B/C`` under the Document, in the response namespace)."""
    element = root.find("/".join(f"c:{part}" for part in path.split("/")), {"c": RESPONSE_NS})
    if element is None or not (element.text or "").strip():
        if required:
            raise InputError(f"missing element {path}", path=source)
        return None
    return element.text.strip()


def _amount(text: str | None, *, element: str, source: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"'{text}' is not an amount", path=source, field=element) from None
    if not value.is_finite() or value < 0 or value != value.quantize(CENT):
        raise InputError(f"'{text}' is not a non-negative amount with at most 2 decimals", path=source, field=element)
    return value


def margin_call_response(data: bytes, *, source: str = "colr.004") -> CallAnswer:
    """Read a member's colr.004: the call it answers, the agreed amount, or the disputed one and why."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InputError(f"message larger than {MAX_MESSAGE_BYTES} bytes", path=source)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError("DTDs and entities are not accepted", path=source)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise InputError(f"not well-formed XML: {error}", path=source) from None
    if root.tag != f"{{{RESPONSE_NS}}}Document":
        raise InputError(f"expected a {RESPONSE_NS} Document, found {root.tag}", path=source)
    base = "MrgnCallRspn/"
    agreed = _amount(_text(root, base + "RspnDtls/AgrdAmt", source=source, required=False), element="AgrdAmt",
                     source=source)
    disputed = _amount(_text(root, base + "RspnDtls/DsptdAmt", source=source, required=False), element="DsptdAmt",
                       source=source)
    if agreed is None and disputed is None:
        raise InputError("missing element MrgnCallRspn/RspnDtls/AgrdAmt or DsptdAmt", path=source)
    return CallAnswer(transaction_id=_text(root, base + "TxId", source=source),
                      call_id=_text(root, base + "CallDtls/MrgnCallReqId", source=source),
                      agreed=agreed, disputed=disputed,
                      reason=_text(root, base + "RspnDtls/DsptRsn", source=source, required=False) or "")
