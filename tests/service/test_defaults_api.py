"""A default declared through the API and managed on chain (its own served book: it changes the book)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


def key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_the_clearing_house_declares_a_default_and_manages_it_on_chain(served):
    with served.client("member-M01") as m01:
        assert m01.post("/api/defaults", json={"member": "M04", "scenario": "svb"}, headers=key()).status_code == 403
    with served.client("ccp") as ccp:
        unknown = ccp.post("/api/defaults", json={"member": "M04", "scenario": "nope"}, headers=key())
        assert unknown.status_code == 422 and unknown.json()["field"] == "scenario"
        header = key()
        done = ccp.post("/api/defaults", json={"member": "M04", "scenario": "svb"}, headers=header)
        assert done.status_code == 200, done.text
        assert ccp.post("/api/defaults", json={"member": "M04", "scenario": "svb"}, headers=header).json() == \
            done.json()  # a replay carries out nothing again
        cases = ccp.get("/api/defaults").json()
        assert [(c["member"], c["status"]) for c in cases] == [("M04", "closed")]
        assert all(a["in_default"] for a in ccp.get("/api/accounts").json() if a["id"] == "M04-HOUSE")
        assert not ccp.get("/api/positions", params={"account": "M04-HOUSE"}).json()  # closed out
        assert ccp.post("/api/chain/reconcile", headers=key()).json()["clean"]
    with served.client("member-M04") as m04:
        refused = m04.post("/api/instructions/release", json={"account": "M04-HOUSE", "symbol": "TBILL", "units": 1},
                           headers=key())
        assert refused.status_code in (409, 422)
