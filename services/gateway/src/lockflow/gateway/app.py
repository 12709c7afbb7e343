"""The gateway: REST API, live run events (SSE) and decision intake. Views only translate and call."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import redis
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError, DisconnectionError

from lockflow.access.address import client_address
from lockflow.access.deps import Access, Authorized, Principal, install_access
from lockflow.access.policy import Scope, Verdict, gate_verdict
from lockflow.audit import chain as audit
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
from lockflow.common.models import DecisionRecord, Goal, SourceSpec
from lockflow.common.paths import resolve_inside
from lockflow.common.pipeline import Gate, QualityChoices
from lockflow.common.service_requests import check_file, preview_fixes
from lockflow.common.telemetry import setup_tracing
from lockflow.gateway.access import auth_of, check_run, run_reader
from lockflow.gateway.bootstrap import Runtime, build_gateway, build_gateway_access
from lockflow.gateway.events import events_router
from lockflow.gateway.failures import UnexpectedErrors
from lockflow.gateway.hardening import NoServerPaths, SecurityHeaders, html_policy, install_allow_header
from lockflow.gateway.limits import BodyLimit, make_limiter
from lockflow.gateway.openapi import install_openapi
from lockflow.gateway.pages import LISTED, PagingDep, with_total
from lockflow.gateway.runs import runs_router
from lockflow.gateway.schemas import DecisionAccepted, DecisionSubmit, ErrorBody, RunCreate, RunCreated
from lockflow.gateway.settings import GatewaySettings
from lockflow.gateway.sources import rate_limited, sources_router, upload_rate
from lockflow.gateway.ui import install_ui
from lockflow.gateway.uploads import check_upload_path, forget_upload, record_upload, store_upload
from lockflow.plans import export as plan_export
from lockflow.qualityrules.rules import RULES_MAX_CHARS, quality_rules_of
from lockflow.runstore import intake, views

log = get_logger(__name__)
TERMINAL = ("completed", "failed", "aborted")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    401: {"model": ErrorBody, "description": "missing, invalid or revoked access token"},
    403: {"model": ErrorBody, "description": "the caller's roles may not do this"},
    404: {"model": ErrorBody, "description": "no such object, or not the caller's to see"},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
    429: {"model": ErrorBody, "description": "rate limit reached; see Retry-After"},
}
# Routes whose work another service does (request/reply): it may be unreachable or not answer in time.
ASKS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "the service doing this work could not be asked; try again"},
    504: {"model": ErrorBody, "description": "the service doing this work did not answer in time"},
}

# Any route may answer these: a body that is not parseable (400), over the body limit (413), or the
# database away for a moment (503).
EVERY_ROUTE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the request body could not be parsed"},
    413: {"model": ErrorBody, "description": "the request body is over the limit"},
    503: {"model": ErrorBody, "description": "the database is not answering; try again after Retry-After"},
}
DATABASE_AWAY = "the database is not answering; try again in a few seconds"
UPLOAD_PATHS = ("/runs/upload", "/sources/upload")


async def get_system(request: Request) -> Runtime:
    """The process's adapters, built at startup (async: no thread hop for a lookup)."""
    system: Runtime = request.app.state.system
    return system


SystemDep = Annotated[Runtime, Depends(get_system)]


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
    app.add_middleware(
        BodyLimit,  # type: ignore[arg-type]
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    app.add_middleware(NoServerPaths, folders=server_folders(settings))  # type: ignore[arg-type]
    app.add_middleware(SecurityHeaders)  # type: ignore[arg-type]
    install_openapi(app)
    install_allow_header(app)
    _routes(app, settings)
    app.include_router(sources_router(settings))
    app.include_router(runs_router())
    app.include_router(events_router())
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


def _routes(app: FastAPI, settings: GatewaySettings) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz(system: SystemDep) -> dict[str, str]:
        """Liveness and database reachability."""
        await anyio.to_thread.run_sync(lambda: views.list_runs(system.db, limit=1))
        return {"status": "ok", "mode": settings.mode}

    @app.post(
        "/runs", status_code=201, response_model=RunCreated, responses={**ERRORS, **ASKS}, tags=["runs"]
    )
    async def create_run(body: RunCreate, system: SystemDep, principal: Authorized) -> RunCreated:
        """Start a run on a file under the server's allowed folders."""
        path = resolve_inside(body.path, settings.source_dirs())
        uri = await anyio.to_thread.run_sync(
            lambda: check_upload_path(system.db, principal, path=path, upload_dir=settings.upload_dir())
        )
        rules = quality_rules_of(body.rules)
        # An upload is read from the artifact store by its uri; its name is what people see.
        spec = SourceSpec(path=path.name if uri else str(path), format=body.format, uri=uri)
        return await _start_run(
            system,
            spec=spec,
            goal=body.goal,
            name=body.name or path.name,
            actor=principal.username,
            rules=rules,
        )

    @app.post(
        "/runs/upload",
        status_code=201,
        response_model=RunCreated,
        responses={**ERRORS, **ASKS},
        tags=["runs"],
        dependencies=[Depends(upload_rate)],
    )
    async def upload_run(
        system: SystemDep,
        principal: Authorized,
        file: Annotated[UploadFile, File(description="CSV, JSON lines or Parquet")],
        target: Annotated[str | None, Form()] = None,
        direction: Annotated[Literal["increase", "decrease", "max", "min"], Form()] = "increase",
        name: Annotated[str | None, Form(max_length=200)] = None,
        rules: Annotated[
            str | None, Form(max_length=RULES_MAX_CHARS, description="Data quality rules (YAML text)")
        ] = None,
    ) -> RunCreated:
        """Upload a file (streamed into the artifact store, size-limited) and start a run on it."""
        quality_rules = quality_rules_of(rules)  # a bad rules file is refused before the upload is kept
        suffix = Path(file.filename or "upload").suffix.lower()[:10]
        stored = await store_upload(file, system.artifacts, limit=settings.max_upload_bytes, suffix=suffix)
        await anyio.to_thread.run_sync(
            lambda: record_upload(
                system.db, upload=stored, owner=principal.username, original_name=file.filename
            )
        )
        goal = Goal(target=target, direction=direction)
        try:
            return await _start_run(
                system,
                spec=stored.spec(),
                goal=goal,
                name=name or file.filename or stored.name,
                actor=principal.username,
                rules=quality_rules,
            )
        except LockflowError:
            await anyio.to_thread.run_sync(lambda: forget_upload(system.db, system.artifacts, upload=stored))
            raise

    @app.get("/runs", responses={**ERRORS, **LISTED}, tags=["runs"])
    async def list_runs(
        request: Request, response: Response, system: SystemDep, principal: Authorized, page: PagingDep
    ) -> list[dict[str, Any]]:
        """Newest runs first: those the caller started or that are shared with them (admins: all).

        Filtered by the caller in the query, then paged (`offset`, `limit`); the total is in X-Total-Count.
        """

        def read() -> views.Page:
            reader = run_reader(auth_of(request), principal)
            return views.runs_page(system.db, reader=reader, limit=page.limit, offset=page.offset)

        found = await anyio.to_thread.run_sync(read)
        return with_total(response, found.rows, found.total)

    @app.get("/runs/{run_id}", responses=ERRORS, tags=["runs"])
    async def get_run(
        run_id: str, request: Request, system: SystemDep, principal: Authorized
    ) -> dict[str, Any]:
        """A run with its stage results, attempts and decisions."""

        def read() -> dict[str, Any]:
            # Read first, then check against the run's own starter: a run the caller may not see is
            # the same 404 as a missing one, and the owner needs no second lookup.
            run = views.get_run(system.db, run_id=run_id)
            check_run(auth_of(request), principal, run_id=run_id, owner=run["requested_by"])
            return run

        return await anyio.to_thread.run_sync(read)

    @app.get("/runs/{run_id}/timeline", responses=ERRORS, tags=["runs"])
    async def get_timeline(
        run_id: str,
        request: Request,
        system: SystemDep,
        principal: Authorized,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """The run's events after a cursor."""
        await _visible_run(request, principal, run_id)
        return await anyio.to_thread.run_sync(lambda: views.timeline(system.db, run_id=run_id, after=after))

    @app.get("/runs/{run_id}/report", responses=ERRORS, tags=["runs"])
    async def get_report(
        run_id: str,
        request: Request,
        system: SystemDep,
        principal: Authorized,
        format: Literal["markdown", "json", "html"] = "json",
    ) -> Response:
        """The final report in the asked format."""
        await _visible_run(request, principal, run_id)
        uris = await anyio.to_thread.run_sync(lambda: views.report_uris(system.db, run_id=run_id))
        body = (await anyio.to_thread.run_sync(system.artifacts.read_bytes, uris[format])).decode()
        if format == "json":
            return JSONResponse(json.loads(body))
        if format == "html":
            return HTMLResponse(body, headers={"Content-Security-Policy": html_policy(body)})
        return PlainTextResponse(body, media_type="text/markdown")

    @app.get("/runs/{run_id}/plan", responses=ERRORS, tags=["runs"])
    async def get_plan(
        run_id: str,
        request: Request,
        system: SystemDep,
        principal: Authorized,
        format: Literal["markdown", "json", "csv"] = "json",
    ) -> Response:
        """The final action plan (gate 5's selection) as Markdown, JSON or CSV (formula cells escaped)."""
        await _visible_run(request, principal, run_id)
        plan = await anyio.to_thread.run_sync(lambda: views.plan_of(system.db, run_id=run_id))
        if format == "csv":
            return PlainTextResponse(plan_export.plan_csv(plan), media_type="text/csv")
        if format == "markdown":
            return PlainTextResponse(plan_export.plan_markdown(plan), media_type="text/markdown")
        return Response(plan_export.plan_json(plan), media_type="application/json")

    @app.get("/decisions", responses={**ERRORS, **LISTED}, tags=["decisions"])
    async def list_decisions(
        request: Request,
        response: Response,
        system: SystemDep,
        principal: Authorized,
        page: PagingDep,
        status: Literal["open", "decided", "all"] = "open",
        run_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> list[dict[str, Any]]:
        """Decision requests (open ones by default) of the runs the caller may see, oldest first.

        Filtered by the caller in the query, then paged (`offset`, `limit`); the total is in X-Total-Count.
        """

        def read() -> views.Page:
            return views.decision_requests_page(
                system.db,
                reader=run_reader(auth_of(request), principal),
                status=None if status == "all" else status,
                run_id=run_id or None,
                limit=page.limit,
                offset=page.offset,
            )

        found = await anyio.to_thread.run_sync(read)
        return with_total(response, found.rows, found.total)

    @app.get("/decisions/{request_id}", responses=ERRORS, tags=["decisions"])
    async def get_decision(
        request_id: str, request: Request, system: SystemDep, principal: Authorized
    ) -> dict[str, Any]:
        """One decision request with the results it is about."""
        found = await _visible_request(request, system, principal, request_id)
        return found

    @app.post("/decisions/{request_id}/preview", responses={**ERRORS, **ASKS}, tags=["decisions"])
    async def preview_decision(
        request_id: str, body: QualityChoices, request: Request, system: SystemDep, principal: Authorized
    ) -> dict[str, Any]:
        """Dry run of gate 2 'apply': what the chosen resolutions would change. Nothing is applied.

        The quality service computes it (a request over the bus); the run's findings and dataset go with it.
        """
        found = await _visible_request(request, system, principal, request_id)
        state, context = await anyio.to_thread.run_sync(
            lambda: views.quality_gate_inputs(system.db, request_id=request_id)
        )
        return await preview_fixes(
            system.requester,
            run_id=found["run_id"],
            request_id=request_id,
            dataset=state.dataset_current,
            findings=state.findings,
            context=context,
            params=body.model_dump(),
        )

    @app.post(
        "/decisions/{request_id}", response_model=DecisionAccepted, responses=ERRORS, tags=["decisions"]
    )
    async def submit_decision(
        request_id: str, body: DecisionSubmit, request: Request, system: SystemDep, principal: Authorized
    ) -> DecisionAccepted:
        """Decide an open gate: accepted once (409 after), 422 for a wrong option or parameters.

        The caller must see the run and hold a role that may decide this gate (analyst: gates 1-4,
        approver: any); with separation of duties the run's starter may not decide gate 5.
        """
        found = await _visible_request(request, system, principal, request_id)
        await anyio.to_thread.run_sync(lambda: _may_decide(request, principal, found))
        rate_limited(request.app.state.decision_limiter, principal.username)
        record = await anyio.to_thread.run_sync(
            lambda: intake.record_decision(
                system.db,
                request_id=request_id,
                option=body.option,
                params=body.params,
                rationale=body.rationale,
                decided_by=principal.username,
                submitted_gate=body.gate,
            )
        )
        await anyio.to_thread.run_sync(lambda: _audit_decision(request, principal, found["run_id"], record))
        await system.relay_outbox()
        return DecisionAccepted(
            request_id=request_id,
            gate=record.gate,
            option=record.option,
            params=record.params,
            decided_by=record.decided_by,
            decided_at=record.decided_at.isoformat(),
            rationale=record.rationale,
        )


async def _visible_run(request: Request, principal: Principal, run_id: str) -> None:
    await anyio.to_thread.run_sync(lambda: check_run(auth_of(request), principal, run_id=run_id))


async def _visible_request(
    request: Request, system: Runtime, principal: Principal, request_id: str
) -> dict[str, Any]:
    """The decision request if the caller may see its run; 404 (the same as a missing one) otherwise."""

    def read() -> dict[str, Any]:
        found = views.get_decision_request(system.db, request_id=request_id)
        try:
            check_run(auth_of(request), principal, run_id=found["run_id"], scope=Scope.VISIBLE)
        except NotFound as exc:
            raise NotFound(f"no decision request {request_id}") from exc
        return found

    return await anyio.to_thread.run_sync(read)


def _may_decide(request: Request, principal: Principal, found: dict[str, Any]) -> None:
    """The role x gate matrix and separation of duties (403 with the reason)."""
    auth = auth_of(request)
    run_id = found["run_id"]
    verdict, reason = gate_verdict(
        roles=principal.roles,
        gate=Gate(found["gate"]),
        user=principal.username,
        run_owner=auth.owner_of(object_type="run", object_id=run_id),
        shared_with=auth.shared_with(object_type="run", object_id=run_id),
        separation_of_duties=auth.separation_of_duties,
    )
    if verdict is Verdict.NOT_FOUND:
        raise NotFound(f"no decision request {found['id']}")
    if verdict is Verdict.FORBIDDEN:
        raise HTTPException(status_code=403, detail=reason)


def _audit_decision(request: Request, principal: Principal, run_id: str, record: DecisionRecord) -> None:
    """Who decided which gate of which run, when (UTC), what and why: one row in the audit chain."""
    auth = auth_of(request)
    with auth.db.transaction() as session:
        audit.record_decision(
            session,
            actor=principal.username,
            run_id=run_id,
            gate=record.gate,
            choice=record.option,
            rationale=record.rationale,
            client=client_address(request),
        )


async def _start_run(
    system: Runtime,
    *,
    spec: SourceSpec,
    goal: Goal,
    name: str,
    actor: str,
    rules: dict[str, Any] | None = None,
) -> RunCreated:
    """Have the ingest service check the file and settle the goal's target first, then start the run."""
    checked = await check_file(system.requester, spec=spec, goal=goal)
    settled, choice = checked.goal, checked.picked
    run_id = await anyio.to_thread.run_sync(
        lambda: intake.request_run(
            system.db, name=name, source=spec, goal=settled, requested_by=actor, quality_rules=rules
        )
    )
    await system.relay_outbox()
    return RunCreated(
        id=run_id, goal=settled, target_picked=f"{choice.target}: {choice.reason}" if choice else None
    )
