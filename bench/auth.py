"""Figures for authentication; prints them, asserts nothing.

- Token verification per request (µs): the local EdDSA signature check alone, the full
  `AuthService.verify_access` (signature + one Redis MGET for revocation) when LOCKFLOW_REDIS_URL
  is set, and the peer in the same run: RS256 (RSA-2048) verification of the same claims.
- Login time at the chosen argon2id parameters (OWASP minimum m=19 MiB, t=2, p=1): hash, verify,
  the unknown-user dummy verify, and the peer RFC 9106's second recommendation (m=64 MiB, t=3, p=4).
Run: `.venv/bin/python bench/auth.py [--n 5000] [--logins 30]`.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from lockflow.access.tokens import TokenSpec, verify
from lockflow.auth.keys import KeyRing, generate_private_pem, load_private
from lockflow.auth.passwords import Passwords
from lockflow.auth.router import build_auth_service
from lockflow.auth.settings import AuthSettings
from lockflow.auth.tokens import issue
from lockflow.common.db import Database
from lockflow.common.logging import configure_logging


def per_call_us(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Median and p95 of one call in microseconds."""
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * len(samples))]


def per_call_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Median and p95 of one call in milliseconds."""
    med, p95 = per_call_us(fn, n)
    return med / 1000, p95 / 1000


def token_figures(n: int) -> None:
    spec = TokenSpec(issuer="lockflow", audience="lockflow-api", access_seconds=300, refresh_seconds=3600)
    ring = KeyRing(signing=load_private(generate_private_pem()))
    token, claims = issue(
        ring=ring,
        spec=spec,
        token_type="access",
        user_id="u",
        username="ana",
        roles=["analyst"],
        session="s",
        version=0,
    )
    med, p95 = per_call_us(
        lambda: verify(token, keys=ring.verifying.get, spec=spec, expected_type="access"), n
    )
    print(f"verify EdDSA (signature + claims, local)   median {med:8.1f} µs   p95 {p95:8.1f} µs")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs_token = jwt.encode(claims, rsa_key, algorithm="RS256")
    public = rsa_key.public_key()

    def rs256() -> object:
        return jwt.decode(rs_token, public, algorithms=["RS256"], audience="lockflow-api", issuer="lockflow")

    med, p95 = per_call_us(rs256, n)
    print(f"peer: verify RS256 (RSA-2048, same claims) median {med:8.1f} µs   p95 {p95:8.1f} µs")


def service_figures(n: int, logins: int) -> None:
    settings = AuthSettings(signing_key=SecretStr(generate_private_pem().decode()), topic_prefix="benchauth")
    with tempfile.TemporaryDirectory() as home:
        db = Database(settings.database_url or f"sqlite:///{Path(home) / 'auth.db'}")
        import redis

        client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        service = build_auth_service(settings, db=db, redis_client=client)
        name = f"bench{time.time_ns()}"
        service.create_user(
            username=name, password="correct horse battery staple", roles=["analyst"], actor="bench"
        )
        pair = service.login(username=name, password="correct horse battery staple", client="bench")
        where = "Redis MGET" if client else "database (no LOCKFLOW_REDIS_URL)"
        med, p95 = per_call_us(lambda: service.verify_access(pair.access_token), n)
        print(f"verify_access (signature + {where})   median {med:8.1f} µs   p95 {p95:8.1f} µs")
        med, p95 = per_call_ms(
            lambda: service.login(username=name, password="correct horse battery staple", client="bench"),
            logins,
        )
        print(f"full login (argon2id + session + audit row)   median {med:7.1f} ms   p95 {p95:7.1f} ms")
        if client:
            for key in client.scan_iter("benchauth:*"):
                client.delete(key)
        db.dispose()


def argon_figures(logins: int) -> None:
    chosen = Passwords.from_settings(AuthSettings())
    encoded = chosen.hash("correct horse battery staple")
    s = AuthSettings()
    label = f"m={s.argon2_memory_kib // 1024} MiB t={s.argon2_time_cost} p={s.argon2_parallelism}"
    for what, fn in (
        ("hash", lambda: chosen.hash("correct horse battery staple")),
        ("verify (known user)", lambda: chosen.verify(encoded, "correct horse battery staple")),
        ("verify (unknown user, dummy)", lambda: chosen.verify(None, "correct horse battery staple")),
    ):
        med, p95 = per_call_ms(fn, logins)
        print(f"argon2id {label} {what:30s} median {med:7.1f} ms   p95 {p95:7.1f} ms")
    peer = Passwords(memory_kib=64 * 1024, time_cost=3, parallelism=4)
    peer_hash = peer.hash("correct horse battery staple")
    med, p95 = per_call_ms(
        lambda: peer.verify(peer_hash, "correct horse battery staple"), max(5, logins // 3)
    )
    print(f"peer: argon2id m=64 MiB t=3 p=4 (RFC 9106)  verify   median {med:7.1f} ms   p95 {p95:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="token verifications per figure")
    parser.add_argument("--logins", type=int, default=30, help="password hashes/logins per figure")
    args = parser.parse_args()
    configure_logging(service="bench", level="WARNING")
    token_figures(args.n)
    argon_figures(args.logins)
    service_figures(args.n, args.logins)


if __name__ == "__main__":
    main()
