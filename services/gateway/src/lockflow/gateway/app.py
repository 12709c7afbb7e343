"""The gateway: REST API, live run events (SSE) and decision intake. Views only translate and call."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import redis
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, DisconnectionError

from lockflow.access.deps import Access, install_access
from lockflow.common.db import is_database_outage
from lockflow.common.errors import (
    Conflict,
    InvalidInput,
    LockflowError,
    NotFound,
    TimedOut,
    TooLarge,
    Unavailable,
)
from lockflow.common.logging import configure_logging, get_logger
from lockflow.common.telemetry import setup_tracing
from lockflow.gateway import alerts, charts, decisions, events, health, monitoring, runs, sources, streams
from lockflow.gateway.auth_proxy import AuthProxy
from lockflow.gateway.bootstrap import Runtime, build_gateway, build_gateway_access
from lockflow.gateway.failures import UnexpectedErrors
from lockflow.gateway.hardening import (
    NoServerPaths,
    SecurityHeaders,
    install_allow_header,
    single_query_values,
)
from lockflow.gateway.limits import BodyLimit, make_limiter
from lockflow.gateway.monitoring import HttpMetrics
from lockflow.gateway.openapi import install_openapi
from lockflow.gateway.responses import EVERY_ROUTE
from lockflow.gateway.settings import GatewaySettings
from lockflow.gateway.ui import install_ui

log = get_logger(__name__)
DATABASE_AWAY = "the database is not answering; try again in a few seconds"
UPLOAD_PATHS = ("/runs/upload", "/sources/upload")


def create_app(
    settings: GatewaySettings | None = None,
    *,
    system: Runtime | None = None,
    access: Access | None = None,
    mount: Callable[[FastAPI], object] | None = None,
) -> FastAPI:
    """Build the gateway's FastAPI app over its adapters (started with the app) and its access checks.

    Alone (`lockflow serve`, distributed) it builds its own adapters and verifies tokens with the auth
    service's JWKS; the `lockflow` composition root passes the whole embedded system and the auth
    service's own Access instead, and `mount`s the auth routes on the same app (inside the gateway's
    body limits and security headers, as if they were its own).
    """
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service="gateway", level=settings.log_level)
        setup_tracing(service="gateway", otlp_endpoint=settings.otlp_endpoint)
        built = system or build_gateway(settings)
        await built.start()
        app.state.system = built
        if getattr(app.state, "access", None) is None:
            install_access(app, build_gateway_access(settings, db=built.db, redis_client=redis_client))
        try:
            yield
        finally:
            await built.close()
            if redis_client is not None:
                redis_client.close()

    app = FastAPI(
        title="lockflow",
        version="0.1.0",
        lifespan=lifespan,
        responses=EVERY_ROUTE,
        dependencies=[Depends(single_query_values)],
        description="A data pipeline that people steer: runs, gates and decisions.",
    )
    app.state.settings = settings
    _install_error_handlers(app)
    app.add_middleware(UnexpectedErrors)
    redis_client = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    if access is not None:
        install_access(app, access)
    if mount is not None:
        mount(app)
    app.state.upload_limiter = make_limiter(
        redis_client, name="uploads", limit=settings.uploads_per_minute, prefix=settings.topic_prefix
    )
    app.state.decision_limiter = make_limiter(
        redis_client, name="decisions", limit=settings.decisions_per_minute, prefix=settings.topic_prefix
    )
    if settings.auth_url:
        app.add_middleware(
            AuthProxy,  # type: ignore[arg-type]
            auth_url=settings.auth_url,
            max_body_bytes=settings.max_body_bytes,
        )
    app.add_middleware(
        BodyLimit,  # type: ignore[arg-type]
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    app.add_middleware(NoServerPaths, folders=server_folders(settings))  # type: ignore[arg-type]
    app.add_middleware(SecurityHeaders)  # type: ignore[arg-type]
    app.add_middleware(HttpMetrics)  # type: ignore[arg-type]
    install_openapi(app)
    install_allow_header(app)
    for resource in (health, monitoring, runs, charts, events, decisions, sources, streams, alerts):
        app.include_router(resource.router)
    install_ui(app)
    return app


def server_folders(settings: GatewaySettings) -> list[Path]:
    """The server's own folders, whose locations no answer shows."""
    return [settings.upload_dir(), *settings.allowed_dirs, settings.resolved_artifact_dir(), settings.home]


def _install_error_handlers(app: FastAPI) -> None:
    def reply(status: int, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    app.add_exception_handler(NotFound, lambda _r, e: reply(404, e))
    app.add_exception_handler(Conflict, lambda _r, e: reply(409, e))
    app.add_exception_handler(InvalidInput, lambda _r, e: reply(422, e))
    app.add_exception_handler(TooLarge, lambda _r, e: reply(413, e))
    app.add_exception_handler(Unavailable, lambda _r, e: reply(503, e))
    app.add_exception_handler(TimedOut, lambda _r, e: reply(504, e))
    app.add_exception_handler(LockflowError, lambda _r, e: reply(400, e))

    async def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=422, content={"detail": problems})

    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]

    async def database_away(_request: Request, exc: Exception) -> JSONResponse:
        # The database restarting is no fault of the request: 503 with when to try again, not 500.
        if not is_database_outage(exc):
            raise exc
        log.warning("database_unavailable", error=repr(exc))
        return JSONResponse(status_code=503, content={"detail": DATABASE_AWAY}, headers={"Retry-After": "5"})

    app.add_exception_handler(DBAPIError, database_away)
    app.add_exception_handler(DisconnectionError, database_away)
