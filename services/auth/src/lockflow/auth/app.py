"""The auth service's own app (distributed mode): login, refresh, users, shares, audit, JWKS.

Other services never import this package: they verify tokens with lockflow.access against the key
set this app serves at /.well-known/jwks.json. In embedded mode the `lockflow` composition root
mounts the same routes (install_auth) on the one app instead.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import redis
from fastapi import FastAPI

from lockflow.auth.admin import ensure_first_admin
from lockflow.auth.router import install_auth
from lockflow.auth.settings import AuthSettings
from lockflow.common.logging import configure_logging
from lockflow.common.telemetry import setup_tracing


def create_auth_app(settings: AuthSettings | None = None) -> FastAPI:
    """The auth HTTP API on its own, with a liveness route; the first admin is created at startup."""
    settings = settings or AuthSettings()
    redis_client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service="auth", level=settings.log_level)
        setup_tracing(service="auth", otlp_endpoint=settings.otlp_endpoint)
        await anyio.to_thread.run_sync(lambda: ensure_first_admin(service, settings))
        try:
            yield
        finally:
            service.db.dispose()
            if redis_client is not None:
                redis_client.close()

    app = FastAPI(title="lockflow auth", version="0.1.0", lifespan=lifespan)
    service = install_auth(app, settings, redis_client=redis_client)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok", "service": "auth"}

    return app


def main() -> None:
    """Run the auth service as its own process: `python -m lockflow.auth.app` (LOCKFLOW_AUTH_HOST/PORT)."""
    import uvicorn

    from lockflow.common.settings_check import settings_or_exit

    settings = settings_or_exit(AuthSettings)
    configure_logging(service="auth", level=settings.log_level)
    app = create_auth_app(settings)
    # The socket peer is the client unless LOCKFLOW_TRUSTED_PROXIES says otherwise (lockflow.access).
    config = uvicorn.Config(
        app, host=settings.auth_host, port=settings.auth_port, proxy_headers=False, log_config=None
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
