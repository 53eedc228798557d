"""Who may call the service: OAuth2 client credentials (RFC 6749 §4.4) exchanged for a short-lived signed access
token (a JWT, RFC 7519). Client secrets are stored as argon2id hashes; the signing algorithm is configuration
(``TOKENCLEAR_TOKEN_ALGORITHM``: HS256, ES256 or EdDSA), its key kept in a file readable by the service alone,
so the scheme can be swapped without touching the API (crypto agility).

Roles: ``ccp`` (the clearing house's operations and risk desk: everything), ``member`` (its own accounts only),
``feed`` (posts price quotes only), ``regulator`` (reads everything, writes nothing)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tokenclear.errors import ConfigurationError, InputError
from tokenclear.store.models import ApiClient, Member
from tokenclear.store.store import Store

ROLES = ("ccp", "member", "feed", "regulator")
ALGORITHMS = ("HS256", "ES256", "EdDSA")
ISSUER = "tokenclear"
SCOPE_KEY = "tokenclear.principal"  # where a request's principal is kept in its ASGI scope (read by the audit)
SEEN_TOKENS = 10_000  # verified tokens remembered until they expire
_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106) default parameters


class Unauthorised(Exception):
    """No valid token (401)."""


@dataclass(frozen=True)
class Principal:
    client: str
    role: str
    member: str | None = None

    @property
    def reads_all(self) -> bool:
        return self.role in ("ccp", "regulator")


class Signer:
    """Signs and checks access tokens with one algorithm and its key (made on first use, file mode 0600)."""

    def __init__(self, algorithm: str, key_file: Path, ttl: timedelta) -> None:
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(f"token algorithm '{algorithm}': choose one of {', '.join(ALGORITHMS)} "
                                     "(TOKENCLEAR_TOKEN_ALGORITHM)")
        self.algorithm, self.ttl = algorithm, ttl
        self._sign, self._verify = self._keys(algorithm, key_file)
        self._seen: dict[str, tuple[Principal, datetime]] = {}

    @staticmethod
    def _keys(algorithm: str, path: Path):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            if algorithm == "HS256":
                body = secrets.token_bytes(32).hex().encode()
            else:
                key = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else \
                    ed25519.Ed25519PrivateKey.generate()
                body = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(body)
        body = path.read_bytes()
        if algorithm == "HS256":
            if body.startswith(b"-----"):
                raise ConfigurationError(f"{path}: holds a PEM key, HS256 needs a secret: remove it or set the "
                                         "algorithm it was made for")
            return body, body
        try:
            key = serialization.load_pem_private_key(body, password=None)
        except ValueError as error:
            raise ConfigurationError(f"{path}: not a PEM private key for {algorithm}: {error}") from None
        wanted = ec.EllipticCurvePrivateKey if algorithm == "ES256" else ed25519.Ed25519PrivateKey
        if not isinstance(key, wanted):
            raise ConfigurationError(f"{path}: its key is not one {algorithm} signs with: remove it to make a new one")
        return key, key.public_key()

    def issue(self, principal: Principal, now: datetime | None = None) -> tuple[str, int]:
        """A token for ``principal`` and its lifetime in seconds."""
        now = now or datetime.now(UTC)
        claims = {"iss": ISSUER, "sub": principal.client, "role": principal.role, "member": principal.member,
                  "iat": now, "exp": now + self.ttl, "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._sign, algorithm=self.algorithm), int(self.ttl.total_seconds())

    def check(self, token: str) -> Principal:
        """The token's principal if its signature, issuer and expiry hold (a token seen before is not verified
        again until it expires: a client sends the same one with every request)."""
        seen = self._seen.get(token)
        if seen is not None and seen[1] > datetime.now(UTC):
            return seen[0]
        try:
            claims = jwt.decode(token, self._verify, algorithms=[self.algorithm], issuer=ISSUER,
                                options={"require": ["exp", "sub", "role"]})
        except jwt.PyJWTError as error:
            raise Unauthorised(f"invalid access token: {error}") from None
        principal = Principal(claims["sub"], claims["role"], claims.get("member"))
        if len(self._seen) >= SEEN_TOKENS:
            self._seen.clear()
        self._seen[token] = (principal, datetime.fromtimestamp(claims["exp"], UTC))
        return principal


def add_client(store: Store, client_id: str, role: str, member: str | None = None, *,
               secret: str | None = None) -> str:
    """Register a client (its secret stored hashed); returns the secret, shown this once."""
    if role not in ROLES:
        raise InputError(f"role '{role}': choose one of {', '.join(ROLES)}", field="role")
    if (role == "member") != (member is not None):
        raise InputError("a member's client names its member, and only a member's does", field="member")
    secret = secret or secrets.token_urlsafe(32)
    with store.session() as session:
        if member is not None and session.get(Member, member) is None:
            raise InputError(f"no member '{member}' in the book", field="member")
        if session.get(ApiClient, client_id) is not None:
            raise InputError(f"client '{client_id}' exists already", field="client_id")
        session.add(ApiClient(id=client_id, secret_hash=_hasher.hash(secret), role=role, member_id=member,
                              created_at=datetime.now(UTC), disabled=False))
    return secret


def authenticate(store: Store, client_id: str, secret: str) -> Principal:
    """The client's principal if its secret matches its stored hash (argon2 verification)."""
    with store.session() as session:
        client = session.get(ApiClient, client_id)
        if client is None or client.disabled:
            raise Unauthorised("unknown client or wrong secret")
        try:
            _hasher.verify(client.secret_hash, secret)
        except (VerificationError, InvalidHashError):
            raise Unauthorised("unknown client or wrong secret") from None
        return Principal(client.id, client.role, client.member_id)
