"""The verifier every API process holds: an access token's signature (public keys, no call to the
auth service), then its revocation (the shared token state) on every request.

A verified token's claims are kept this long (and never past its expiry), so a client's requests
cost one signature check per VERIFIED_SECONDS, not one each; revocation is still checked every time.
A key dropped from the key set stops its tokens within this time.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lockflow.access.state import TokenState
from lockflow.access.tokens import Claims, InvalidToken, TokenSpec, verify

VERIFIED_SECONDS = 30.0
VERIFIED_MAX = 4096
Keys = Callable[[str], Ed25519PublicKey | None]


class AccessVerifier:
    """Checks access tokens against public keys (a key ring's, or a JWKS fetched from the auth service)."""

    def __init__(self, *, keys: Keys, spec: TokenSpec, state: TokenState) -> None:
        self.keys = keys
        self.spec = spec
        self.state = state
        self._verified: OrderedDict[str, tuple[float, Claims]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def leeway(self) -> int:
        """Seconds past `exp` a token is still accepted (clock skew between services)."""
        return self.spec.leeway

    def verify_access(self, token: str) -> Claims:
        """A valid, unrevoked access token's claims; InvalidToken with the reason otherwise."""
        claims = self._verified_claims(token)
        reason = self.state.refusal(user_id=claims.subject, session=claims.session, version=claims.version)
        if reason is not None:
            raise InvalidToken(reason)
        return claims

    def _verified_claims(self, token: str) -> Claims:
        """The token's claims from a recent verification of the same token, else verified now."""
        now = time.time()
        with self._lock:
            kept = self._verified.get(token)
        if kept is not None:
            kept_until, claims = kept
            if now < kept_until:
                return claims
        claims = verify(token, keys=self.keys, spec=self.spec, expected_type="access")
        # Never past its expiry (no leeway): after that the full check decides, with its message.
        kept_until = min(now + VERIFIED_SECONDS, float(claims.expires_at))
        with self._lock:
            self._verified[token] = (kept_until, claims)
            while len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)
        return claims
