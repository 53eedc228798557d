"""colr.003 out, colr.004 in: round trip of the fields, strict errors on a bad answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from xml.etree import ElementTree

import pytest

from tokenclear.clearing.iso20022 import (
    REQUEST_NS,
    RESPONSE_NS,
    CallMessage,
    margin_call_request,
    margin_call_response,
)
from tokenclear.errors import InputError

AT = datetime(2023, 3, 11, 21, 0, tzinfo=UTC)


def test_colr003_carries_the_call():
    call = CallMessage("call:scheduled:2023-03-11:M07-HOUSE", "tokenclear CCP", "M07", "M07-HOUSE", AT,
                       AT + timedelta(hours=1), Decimal("1272.00"), "USD")
    document = ElementTree.fromstring(margin_call_request(call))
    ns = {"c": REQUEST_NS}
    assert document.tag == f"{{{REQUEST_NS}}}Document"
    assert document.findtext("c:MrgnCallReq/c:TxId", namespaces=ns) == call.transaction_id
    amount = document.find("c:MrgnCallReq/c:MrgnCallRslt/c:MrgnCallAmt/c:DlvrMrgnAmt", ns)
    assert amount.text == "1272.00" and amount.get("Ccy") == "USD"
    assert document.findtext("c:MrgnCallReq/c:Oblgtn/c:CollAcctId/c:Id", namespaces=ns) == "M07-HOUSE"
    with pytest.raises(ValueError):
        margin_call_request(CallMessage("x", "a", "b", "c", AT, AT, Decimal(0), "USD"))


def answer(body: str) -> bytes:
    return (f'<?xml version="1.0"?><Document xmlns="{RESPONSE_NS}"><MrgnCallRspn><TxId>ans-1</TxId>'
            f"<CallDtls><MrgnCallReqId>call-1</MrgnCallReqId></CallDtls><RspnDtls>{body}</RspnDtls>"
            "</MrgnCallRspn></Document>").encode()


def test_colr004_agreed_and_disputed():
    agreed = margin_call_response(answer("<AgrdAmt>1272.00</AgrdAmt>"))
    assert agreed.call_id == "call-1" and agreed.agreed == Decimal("1272.00") and agreed.disputed is None
    disputed = margin_call_response(answer("<DsptdAmt>272.00</DsptdAmt><DsptRsn>haircut on TUSD</DsptRsn>"))
    assert disputed.disputed == Decimal("272.00") and disputed.reason == "haircut on TUSD"


@pytest.mark.parametrize("data, message", [
    (answer("<AgrdAmt>12.345</AgrdAmt>"), "at most 2 decimals"),
    (answer("<AgrdAmt>lots</AgrdAmt>"), "is not an amount"),
    (answer(""), "AgrdAmt or DsptdAmt"),
    (answer("<AgrdAmt>1</AgrdAmt>").replace(b"<TxId>ans-1</TxId>", b""), "missing element MrgnCallRspn/TxId"),
    (b"<Document><oops>", "not well-formed"),
    (b'<!DOCTYPE x [<!ENTITY e "x">]><Document/>', "DTDs and entities"),
    (answer("<AgrdAmt>1</AgrdAmt>").replace(RESPONSE_NS.encode(), b"urn:other"), "expected a"),
])
def test_a_bad_answer_names_what_is_wrong(data, message):
    with pytest.raises(InputError, match=message):
        margin_call_response(data, source="inbox/answer.xml")
