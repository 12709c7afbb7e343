"""Issuing JWT access and refresh tokens with the active key (verifying them: lockflow.access.tokens)."""

import time
import uuid
from typing import Any

import jwt

from lockflow.access.tokens import ALGORITHM, TokenSpec, TokenType
from lockflow.auth.keys import KeyRing


def issue(
    *,
    ring: KeyRing,
    spec: TokenSpec,
    token_type: TokenType,
    user_id: str,
    username: str,
    roles: list[str],
    session: str,
    version: int,
    now: float | None = None,
    jti: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """A signed token and its claims."""
    issued = int(now if now is not None else time.time())
    lifetime = spec.access_seconds if token_type == "access" else spec.refresh_seconds
    claims: dict[str, Any] = {
        "iss": spec.issuer,
        "aud": spec.audience,
        "sub": user_id,
        "name": username,
        "roles": sorted(roles),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": jti or str(uuid.uuid4()),
        "typ": token_type,
        "sid": session,
        "ver": version,
    }
    header = {"kid": ring.kid, "typ": "at+jwt" if token_type == "access" else "rt+jwt"}
    return jwt.encode(claims, ring.signing, algorithm=ALGORITHM, headers=header), claims
