"""colr.003 out; colr.004 and colr.009 in: every message through the models generated from the ISO 20022
schemas, checked against their facets, parsed strictly."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenclear.clearing.iso20022 import (
    DISPUTE_NS,
    REQUEST_NS,
    RESPONSE_NS,
    CallMessage,
    answer_call,
    margin_call_request,
    message_id,
    parse,
    read_answer,
    validate,
)
from tokenclear.errors import InputError

AT = datetime(2023, 3, 11, 21, 0, tzinfo=UTC)
VAULT = "0x" + "ab" * 20
KEY = "call:scheduled:2023-03-11T21:00:00+00:00:M07-HOUSE"  # 51 characters: too long for a TxId


def request(amount: str = "1272.00") -> bytes:
    return margin_call_request(CallMessage(message_id(KEY), "tokenclear CCP", "M07", "M07-HOUSE", "HOUSE", VAULT,
                                           AT, AT + timedelta(hours=1), Decimal(amount), "USD"))


def test_colr003_is_schema_valid_and_carries_the_call():
    data = request()
    document = parse(data, REQUEST_NS)  # strict: an unknown element or a broken facet raises
    assert validate(document) == []
    call = document.mrgn_call_req
    assert call.tx_id == message_id(KEY) and len(call.tx_id) == 35
    assert (call.oblgtn.pty_a.prtry_id.id, call.oblgtn.pty_b.prtry_id.id) == ("tokenclear CCP", "M07")
    assert call.oblgtn.coll_acct_id.id == "M07-HOUSE" and call.oblgtn.coll_acct_id.tp.tp.value == "HOUS"
    assert call.oblgtn.blck_chain_adr_or_wllt.id == VAULT and call.oblgtn.xpsr_tp.value == "FUTR"
    amount = call.mrgn_call_rslt.mrgn_call_rslt.mrgn_call_amt.due_to_pty_a
    assert (amount.value, amount.ccy) == (Decimal("1272.00"), "USD")
    assert b"<DueToPtyA Ccy=\"USD\">1272.00</DueToPtyA>" in data
    with pytest.raises(ValueError):
        request("0")


def test_the_previous_hand_written_colr003_is_refused():
    """What this module wrote before it used the schema models: a name under PtyA/Id, ExpsrTp, a 51-character
    TxId. The strict parser names the first element the schema does not have."""
    old = (f'<Document xmlns="{REQUEST_NS}"><MrgnCallReq><TxId>{KEY}</TxId><Oblgtn><PtyA><Id><Nm>CCP</Nm></Id>'
           "</PtyA></Oblgtn></MrgnCallReq></Document>").encode()
    with pytest.raises(InputError, match="Unknown property.*Id"):
        parse(old, REQUEST_NS, source="old.xml")


def test_the_facet_check_finds_each_kind_of_break():
    document = parse(request(), REQUEST_NS)
    call = document.mrgn_call_req
    call.tx_id = KEY
    call.mrgn_call_rslt.mrgn_call_rslt.mrgn_call_amt.due_to_pty_a.ccy = "usd"
    call.oblgtn.pty_b.nm_and_adr = call.oblgtn.pty_a.prtry_id  # a choice with two elements
    call.oblgtn.valtn_dt = None
    errors = validate(document)
    assert any("TxId" in e and "longer than 35" in e for e in errors)
    assert any("DueToPtyA@Ccy 'usd' does not match" in e for e in errors)
    assert any("PtyB is a choice: exactly one element, found 2" in e for e in errors)
    assert any(e == "Document/MrgnCallReq/Oblgtn/ValtnDt is required" for e in errors)


def test_an_agreement_and_a_dispute_round_trip():
    agreed = answer_call(request(), transaction_id="M07-ANS-1", agreed=Decimal("1272.00"))
    assert validate(parse(agreed, RESPONSE_NS)) == []
    answer = read_answer(agreed, source="inbox/a.xml")
    assert (answer.message, answer.call_id, answer.account, answer.agreed, answer.disputed) == (
        "colr.004", message_id(KEY), "M07-HOUSE", Decimal("1272.00"), None)
    disputed = answer_call(request(), transaction_id="M07-DSP-1", disputed=Decimal("272.00"), resolution="REVF",
                           on=AT)
    assert validate(parse(disputed, DISPUTE_NS)) == []
    answer = read_answer(disputed)
    assert (answer.message, answer.call_id, answer.disputed, answer.reason) == (
        "colr.009", message_id(KEY), Decimal("272.00"), "resolution REVF")


def agreement(amount: str) -> bytes:
    return answer_call(request(), transaction_id="A1", agreed=Decimal(amount))


@pytest.mark.parametrize("data, message", [
    (agreement("12.345"), "more than 2 decimals"),
    (agreement("1").replace(b"<AgrdAmt Ccy=\"USD\">1</AgrdAmt>", b"<AgrdAmt Ccy=\"USD\">lots</AgrdAmt>"),
     "not a valid colr.004"),
    (agreement("1").replace(b"<TxId>A1</TxId>", b""), "not a valid colr.004.001.05 message: .*required.*tx_id"),
    (agreement("1").replace(b"<AgrdAmtDueToA>", b"<AgrdAmtDueToB>").replace(b"</AgrdAmtDueToA>",
                                                                            b"</AgrdAmtDueToB>"),
     "missing element MrgnCallRspn/AgrdAmtDueToA"),
    (b"<Document><oops>", "not well-formed"),
    (b'<!DOCTYPE x [<!ENTITY e "x">]><Document/>', "DTDs and entities"),
    (agreement("1").replace(RESPONSE_NS.encode(), b"urn:other"), "expected a colr.004.001.05 or colr.009.001.05"),
    (request(), "expected a colr.004.001.05 or colr.009.001.05"),
    # the DTD in UTF-16: no byte pattern "<!DOCTYPE" in the data, refused by the parser itself
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "x">]><Document>&e;</Document>'
     .encode("utf-16"), "DTDs and entities"),
    (agreement("1").replace(b">1</AgrdAmt>", b">1E999999</AgrdAmt>"), "not an amount of at most 18 digits"),
    (agreement("1").replace(b'encoding="UTF-8"', b'encoding="TF-8"'), "not well-formed XML: unknown encoding"),
    (agreement("1").replace(b">1</AgrdAmt>", b">1E16</AgrdAmt>"), "not an amount of at most 18 digits"),
])
def test_a_bad_answer_names_what_is_wrong(data, message):
    with pytest.raises(InputError, match=message):
        read_answer(data, source="inbox/answer.xml")


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damaged_answer_is_read_or_refused_never_a_crash(data):
    """Fuzz: a valid colr.004 with a slice replaced by random bytes or text parses to a CallAnswer or is an
    InputError; nothing else escapes."""
    message = agreement("1272.00")
    start = data.draw(st.integers(0, len(message) - 1))
    end = data.draw(st.integers(start, min(len(message), start + 40)))
    junk = data.draw(st.one_of(st.binary(max_size=30), st.text(max_size=30).map(str.encode),
                               st.sampled_from([b"1E999999", b"-0", b"NaN", b"Infinity", b"&e;", b"<!DOCTYPE x>",
                                                b"\xff\xfe", b"]]>", b"<![CDATA[x]]>"])))
    damaged = message[:start] + junk + message[end:]
    try:
        answer = read_answer(damaged, source="fuzz.xml")
    except InputError:
        return
    assert answer.agreed is None or answer.agreed.is_finite()
