"""Building an Access from settings: the verifier's keys, the shared token state, the proxies."""

import redis

from lockflow.access.deps import Access
from lockflow.access.settings import AccessSettings
from lockflow.access.state import DbTokenState, RedisTokenState, TokenState
from lockflow.access.tokens import RemoteJwks, TokenSpec
from lockflow.access.verifier import AccessVerifier, Keys
from lockflow.common.db import Database


def token_spec(settings: AccessSettings, *, refresh_seconds: int = 0) -> TokenSpec:
    """Whose tokens are accepted and how much clock skew is forgiven."""
    return TokenSpec(
        issuer=settings.issuer,
        audience=settings.audience,
        access_seconds=settings.access_token_seconds,
        refresh_seconds=refresh_seconds,
        leeway=settings.clock_skew_seconds,
    )


def token_state(settings: AccessSettings, *, db: Database, redis_client: "redis.Redis | None") -> TokenState:
    """Revocation facts over Redis when there is one (shared by every replica), else the database."""
    if redis_client is not None:
        prefix = f"{settings.topic_prefix}:auth:"
        return RedisTokenState(redis_client, db, ttl=settings.token_state_ttl(), prefix=prefix)
    return DbTokenState(db)


def remote_keys(settings: AccessSettings) -> Keys:
    """The auth service's public keys from its JWKS URL (LOCKFLOW_JWKS_URL), fetched when first needed."""
    if not settings.jwks_url:
        raise ValueError(
            "LOCKFLOW_JWKS_URL must name the auth service's key set "
            "(e.g. http://auth:8001/.well-known/jwks.json) for the gateway to verify tokens on its own"
        )
    return RemoteJwks(settings.jwks_url)


def build_access(
    settings: AccessSettings,
    *,
    db: Database,
    redis_client: "redis.Redis | None" = None,
    keys: Keys | None = None,
    state: TokenState | None = None,
) -> Access:
    """An Access for an app: the given keys (a key ring in the same process) or the remote JWKS."""
    verifier = AccessVerifier(
        keys=keys or remote_keys(settings),
        spec=token_spec(settings),
        state=state or token_state(settings, db=db, redis_client=redis_client),
    )
    return Access(
        verifier=verifier,
        db=db,
        separation_of_duties=settings.separation_of_duties,
        proxies=settings.proxy_networks(),
    )
