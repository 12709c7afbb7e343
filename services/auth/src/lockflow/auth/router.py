"""The auth HTTP API's assembly (`install_auth`: sessions, users, audit, shares) and the service's wiring."""

from typing import Any

import redis
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from lockflow.access.build import token_state
from lockflow.access.deps import Access, install_access
from lockflow.auth import auditlog, sessions, shares, users
from lockflow.auth.keys import keyring_from_settings
from lockflow.auth.passwords import Passwords
from lockflow.auth.service import AuthService
from lockflow.auth.settings import AuthSettings
from lockflow.auth.throttle import LoginThrottle, MemoryFailures, RedisFailures
from lockflow.common.asgi import read_at_most, refuse_too_large, replay
from lockflow.common.db import Database

LIMITED_PATHS = ("/auth/login", "/auth/refresh", "/auth/password")
ROUTERS = (sessions.router, users.router, auditlog.router, shares.router)


class BodyLimit:
    """Refuses request bodies over `max_bytes` on the given paths with 413, before parsing them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, paths: tuple[str, ...] = LIMITED_PATHS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        body = await read_at_most(receive, self.max_bytes)
        if body is None:
            await self._refuse(send)
            return
        await self.app(scope, replay(body, receive), send)

    async def _refuse(self, send: Send) -> None:
        await refuse_too_large(
            send, self.max_bytes, detail=f"the request body is over the {self.max_bytes}-byte limit"
        )


def build_auth_service(
    settings: AuthSettings, *, db: Database, redis_client: "redis.Redis | None" = None
) -> AuthService:
    """The auth service over Redis when there is one (shared by replicas), else in-process state."""
    failures: Any = (
        RedisFailures(redis_client, prefix=f"{settings.topic_prefix}:auth:fail:")
        if redis_client is not None
        else MemoryFailures()
    )
    return AuthService(
        settings=settings,
        db=db,
        ring=keyring_from_settings(settings),
        passwords=Passwords.from_settings(settings),
        throttle=LoginThrottle(
            failures,
            per_account=settings.failures_per_account_per_hour,
            per_address=settings.failures_per_address_per_hour,
        ),
        state=token_state(settings, db=db, redis_client=redis_client),
    )


def access_for(service: AuthService) -> Access:
    """The Access of an app the auth service is in: its own key ring and token state, no JWKS fetch."""
    settings = service.settings
    return Access(
        verifier=service.verifier,
        db=service.db,
        separation_of_duties=settings.separation_of_duties,
        proxies=settings.proxy_networks(),
    )


def install_auth(
    app: FastAPI,
    settings: AuthSettings,
    *,
    db: Database | None = None,
    redis_client: "redis.Redis | None" = None,
    service: AuthService | None = None,
) -> AuthService:
    """Mount the auth routes and the login body limit on an app; the service lives on app.state.auth.

    Unless the app checks callers already (app.state.access), it checks them with this service's keys.
    """
    if service is None:
        if redis_client is None and settings.redis_url:
            redis_client = redis.Redis.from_url(settings.redis_url)
        service = build_auth_service(
            settings, db=db or Database(settings.resolved_database_url()), redis_client=redis_client
        )
    app.state.auth = service
    if getattr(app.state, "access", None) is None:
        install_access(app, access_for(service))
    for routes in ROUTERS:
        app.include_router(routes)
    app.add_middleware(BodyLimit, max_bytes=settings.login_body_max_bytes)  # type: ignore[arg-type]
    return service
