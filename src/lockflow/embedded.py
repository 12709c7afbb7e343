"""The one app of embedded mode (`lockflow up`, the API tests): the gateway with the auth service in it.

The gateway never imports the auth service; this composition root may import both. It builds the auth
service, gives the gateway the auth service's own Access (its key ring and token state: no JWKS fetch
from itself) and mounts the auth routes on the gateway's app. In distributed mode each runs alone:
`lockflow serve` (the gateway, verifying with LOCKFLOW_JWKS_URL) and `lockflow serve-auth`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import redis
from fastapi import FastAPI

from lockflow.access.settings import AccessSettings
from lockflow.auth.admin import ensure_first_admin
from lockflow.auth.router import access_for, build_auth_service, install_auth
from lockflow.auth.settings import AuthSettings
from lockflow.bootstrap import build_system
from lockflow.common.db import Database
from lockflow.common.settings import CommonSettings
from lockflow.gateway import app as gateway
from lockflow.gateway.bootstrap import Runtime
from lockflow.gateway.settings import GatewaySettings

# What the auth service takes from the gateway's settings; the rest (keys, limits) from the environment.
SHARED = ("environment", "mode", "home", "database_url", "redis_url", "topic_prefix", "secret_key")
ACCESS = tuple(name for name in AccessSettings.model_fields if name not in CommonSettings.model_fields)


def auth_settings_for(settings: GatewaySettings) -> AuthSettings:
    """The auth settings of an embedded app: the gateway's shared and access fields, the rest from env."""
    return AuthSettings(**{name: getattr(settings, name) for name in (*SHARED, *ACCESS)})


def create_app(
    settings: GatewaySettings | None = None,
    *,
    system: Runtime | None = None,
    auth_settings: AuthSettings | None = None,
) -> FastAPI:
    """The gateway and the auth routes on one app; with start_workers the whole pipeline runs in it."""
    settings = settings or GatewaySettings()
    auth_settings = auth_settings or auth_settings_for(settings)
    redis_client = redis.Redis.from_url(auth_settings.redis_url) if auth_settings.redis_url else None
    service = build_auth_service(
        auth_settings, db=Database(auth_settings.resolved_database_url()), redis_client=redis_client
    )
    if system is None:
        built = build_system(settings, client_id="gateway")
        built.run_pipeline = settings.start_workers  # else only the API (and the services' answers) here
        system = built

    def mount(app: FastAPI) -> None:
        install_auth(app, auth_settings, service=service)

    app = gateway.create_app(settings, system=system, access=access_for(service), mount=mount)
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with served(app) as state:
            await anyio.to_thread.run_sync(lambda: ensure_first_admin(service, auth_settings))
            try:
                yield state
            finally:
                service.db.dispose()
                if redis_client is not None:
                    redis_client.close()

    app.router.lifespan_context = lifespan
    return app
