"""Access tokens (each signing algorithm the settings offer, expiry, tampering) and client secrets (argon2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenclear.errors import ConfigurationError, InputError
from tokenclear.service.auth import Principal, Signer, Unauthorised, add_client, authenticate
from tokenclear.store.store import open_store


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA"])
def test_each_algorithm_signs_and_checks_its_tokens(tmp_path, algorithm):
    signer = Signer(algorithm, tmp_path / "key", timedelta(minutes=15))
    token, seconds = signer.issue(Principal("member-M01", "member", "M01"))
    assert seconds == 900
    assert signer.check(token) == Principal("member-M01", "member", "M01")
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    again = Signer(algorithm, tmp_path / "key", timedelta(minutes=15))  # a restart reads the same key
    assert again.check(token).client == "member-M01"
    other = Signer(algorithm, tmp_path / "other", timedelta(minutes=15))
    with pytest.raises(Unauthorised):
        other.check(token)
    head, body, signature = token.split(".")
    with pytest.raises(Unauthorised):
        signer.check(f"{head}.{body}.{signature[::-1]}")
    expired, _ = signer.issue(Principal("ccp", "ccp"), now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorised, match="expired"):
        signer.check(expired)


def test_a_key_made_for_one_algorithm_is_refused_by_another(tmp_path):
    Signer("ES256", tmp_path / "key", timedelta(minutes=1))
    with pytest.raises(ConfigurationError, match="EdDSA"):
        Signer("EdDSA", tmp_path / "key", timedelta(minutes=1))
    with pytest.raises(ConfigurationError, match="HS256"):
        Signer("HS256", tmp_path / "key", timedelta(minutes=1))
    with pytest.raises(ConfigurationError, match="RS256"):
        Signer("RS256", tmp_path / "new", timedelta(minutes=1))


def test_client_secrets_are_checked_against_their_hash(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'book.db'}")
    secret = add_client(store, "desk", "ccp")
    assert authenticate(store, "desk", secret) == Principal("desk", "ccp", None)
    with pytest.raises(Unauthorised):
        authenticate(store, "desk", secret + "x")
    with pytest.raises(Unauthorised):
        authenticate(store, "nobody", secret)
    with pytest.raises(InputError, match="exists"):
        add_client(store, "desk", "ccp")
    with pytest.raises(InputError, match="role"):
        add_client(store, "x", "admin")
    with pytest.raises(InputError, match="member"):
        add_client(store, "m", "member")  # a member's client names its member
