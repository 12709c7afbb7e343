"""Hostile tokens are refused by the local verifier; key rotation keeps tokens in flight valid."""

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest

from lockflow.access.tokens import InvalidToken, RemoteJwks, TokenSpec, UnknownKey, verify
from lockflow.auth.keys import KeyRing, generate_private_pem, load_private, public_pem
from lockflow.auth.tokens import issue

SPEC = TokenSpec(
    issuer="lockflow", audience="lockflow-api", access_seconds=300, refresh_seconds=3600, leeway=5
)


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(signing=load_private(generate_private_pem()))


def _issue(
    ring: KeyRing, *, spec: TokenSpec = SPEC, token_type: str = "access", now: float | None = None
) -> str:
    token, _ = issue(
        ring=ring,
        spec=spec,
        token_type=token_type,  # type: ignore[arg-type]
        user_id="u1",
        username="ana",
        roles=["analyst"],
        session="s1",
        version=3,
        now=now,
    )
    return token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _check(ring: KeyRing, token: str, expected: str = "access") -> None:
    verify(token, keys=ring.verifying.get, spec=SPEC, expected_type=expected)  # type: ignore[arg-type]


def test_a_good_token_carries_every_registered_claim(ring: KeyRing) -> None:
    token = _issue(ring)
    header, payload, _ = _parts(token)
    assert header["alg"] == "EdDSA" and header["kid"] == ring.kid and header["typ"] == "at+jwt"
    assert {"iss", "aud", "exp", "nbf", "iat", "jti", "typ", "sub", "sid"} <= set(payload)
    assert payload["exp"] - payload["iat"] == SPEC.access_seconds
    claims = verify(token, keys=ring.verifying.get, spec=SPEC, expected_type="access")
    assert (claims.username, claims.roles, claims.version, claims.session) == ("ana", {"analyst"}, 3, "s1")


def test_alg_none_is_refused(ring: KeyRing) -> None:
    _, payload, _ = _parts(_issue(ring))
    forged = (
        f"{_b64(json.dumps({'alg': 'none', 'kid': ring.kid}).encode())}.{_b64(json.dumps(payload).encode())}."
    )
    with pytest.raises(InvalidToken, match="EdDSA"):
        _check(ring, forged)


def test_hs256_signed_with_the_public_key_is_refused(ring: KeyRing) -> None:
    _, payload, _ = _parts(_issue(ring))
    payload["roles"] = ["admin"]
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": ring.kid}).encode())
    body = _b64(json.dumps(payload).encode())
    secret = public_pem(ring.signing)
    signature = _b64(hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken, match="EdDSA"):
        _check(ring, f"{header}.{body}.{signature}")


def test_tampered_claims_fail_the_signature(ring: KeyRing) -> None:
    header, payload, signature = _issue(ring).split(".")
    claims = _parts(_issue(ring))[1]
    claims["roles"] = ["admin"]
    with pytest.raises(InvalidToken, match="not valid"):
        _check(ring, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}")
    assert payload  # the original payload was a real one


def test_expired_and_not_yet_valid_tokens_are_refused(ring: KeyRing) -> None:
    with pytest.raises(InvalidToken, match="expired"):
        _check(ring, _issue(ring, now=time.time() - SPEC.access_seconds - 60))
    with pytest.raises(InvalidToken, match="not valid yet"):
        _check(ring, _issue(ring, now=time.time() + 600))


@pytest.mark.parametrize(
    "other",
    [
        TokenSpec("someone-else", "lockflow-api", 300, 3600),
        TokenSpec("lockflow", "another-api", 300, 3600),
    ],
)
def test_wrong_issuer_or_audience_is_refused(ring: KeyRing, other: TokenSpec) -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        _check(ring, _issue(ring, spec=other))


def test_a_refresh_token_is_not_an_access_token(ring: KeyRing) -> None:
    refresh = _issue(ring, token_type="refresh")
    with pytest.raises(InvalidToken, match="refresh token cannot be used as an access"):
        _check(ring, refresh)
    _check(ring, refresh, expected="refresh")


def test_a_token_from_another_key_or_without_a_claim_is_refused(ring: KeyRing) -> None:
    stranger = KeyRing(signing=load_private(generate_private_pem()))
    with pytest.raises(UnknownKey):
        _check(ring, _issue(stranger))
    import jwt

    claims = _parts(_issue(ring))[1]
    del claims["jti"]
    token = jwt.encode(claims, ring.signing, algorithm="EdDSA", headers={"kid": ring.kid})
    with pytest.raises(InvalidToken, match="jti"):
        _check(ring, token)
    with pytest.raises(InvalidToken, match="well-formed"):
        _check(ring, "not.a.jwt")


def test_rotation_keeps_tokens_in_flight_and_the_jwks_lists_both(ring: KeyRing) -> None:
    before = _issue(ring)
    old_kid = ring.kid
    ring.rotate(load_private(generate_private_pem()))
    after = _issue(ring)
    assert ring.kid != old_kid
    _check(ring, before)
    _check(ring, after)
    kids = [k["kid"] for k in ring.jwks()["keys"]]
    assert kids == [ring.kid, old_kid]
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in ring.jwks()["keys"])


def test_remote_jwks_refetches_once_on_an_unknown_kid(ring: KeyRing) -> None:
    served = {"keys": ring.jwks()["keys"]}
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json=served)

    remote = RemoteJwks(
        "http://auth/.well-known/jwks.json",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        min_interval=0,
    )
    verify(_issue(ring), keys=remote, spec=SPEC, expected_type="access")
    assert len(calls) == 1
    verify(_issue(ring), keys=remote, spec=SPEC, expected_type="access")
    assert len(calls) == 1  # known kid: no fetch
    ring.rotate(load_private(generate_private_pem()))
    served["keys"] = ring.jwks()["keys"]
    verify(_issue(ring), keys=remote, spec=SPEC, expected_type="access")
    assert len(calls) == 2  # new kid after a rotation: fetched once more
