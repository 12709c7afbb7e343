"""JWT access and refresh tokens, verified locally against the auth service's public keys (or its JWKS).

The auth service issues them (`lockflow.auth.tokens`); every service that serves people verifies them here.

Only EdDSA is accepted, whatever the token's header says, so `alg=none` and HS256-with-the-public-key
tokens fail before any key is used. Every registered claim is required.
"""

import base64
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lockflow.common.errors import LockflowError

TokenType = Literal["access", "refresh"]
ALGORITHM = "EdDSA"
REQUIRED = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "typ", "sid"]


class InvalidToken(LockflowError):
    """The token is missing, malformed, badly signed, expired, revoked or of the wrong kind."""


class UnknownKey(InvalidToken):
    """The token names a key id this verifier does not know (maybe a rotation it has not seen yet)."""


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its bearer."""

    subject: str
    username: str
    roles: frozenset[str]
    token_type: str
    jti: str
    session: str
    version: int
    expires_at: int


@dataclass(frozen=True)
class TokenSpec:
    """Who signs tokens for whom and for how long."""

    issuer: str
    audience: str
    access_seconds: int
    refresh_seconds: int
    leeway: int = 30


def verify(
    token: str,
    *,
    keys: Callable[[str], Ed25519PublicKey | None],
    spec: TokenSpec,
    expected_type: TokenType,
) -> Claims:
    """The claims of a valid token of the expected type; InvalidToken otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("the token is not a well-formed JWT") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"tokens must be signed with {ALGORITHM}")
    kid = header.get("kid")
    key = keys(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey("the token was signed by an unknown key")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=spec.audience,
            issuer=spec.issuer,
            leeway=spec.leeway,
            options={"require": REQUIRED},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("the token is not valid yet") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the token is not valid: {exc}") from exc
    if payload.get("typ") != expected_type:
        raise InvalidToken(f"a {payload.get('typ')} token cannot be used as an {expected_type} token")
    return _claims(payload)


def _claims(payload: Mapping[str, Any]) -> Claims:
    roles = payload.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("the token's roles are malformed")
    return Claims(
        subject=str(payload["sub"]),
        username=str(payload.get("name", "")),
        roles=frozenset(roles),
        token_type=str(payload["typ"]),
        jti=str(payload["jti"]),
        session=str(payload["sid"]),
        version=int(payload.get("ver", 0)),
        expires_at=int(payload["exp"]),
    )


def key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey | None:
    """The Ed25519 public key of an OKP JWK; None for any other kind."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        return None
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


class RemoteJwks:
    """Public keys fetched from a JWKS URL, refetched (at most every `min_interval` s) on an unknown kid."""

    def __init__(self, url: str, *, client: httpx.Client | None = None, min_interval: float = 30.0) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=5.0)
        self.min_interval = min_interval
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, kid: str) -> Ed25519PublicKey | None:
        """The key with this id, refreshing the set once if it is new to us."""
        key = self._keys.get(kid)
        if key is None:
            with self._lock:
                if time.monotonic() - self._fetched_at >= self.min_interval:
                    self._refresh()
                key = self._keys.get(kid)
        return key

    def _refresh(self) -> None:
        response = self.client.get(self.url)
        response.raise_for_status()
        keys = {}
        for jwk in response.json().get("keys", []):
            key = key_from_jwk(jwk)
            if key is not None and isinstance(jwk.get("kid"), str):
                keys[jwk["kid"]] = key
        self._keys = keys
        self._fetched_at = time.monotonic()
