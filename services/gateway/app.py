"""The gateway: REST API, live run events (SSE) and decision intake. Views only translate and call."""

import asyncio
import functools
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sse_starlette.sse import EventSourceResponse

from lockflow.auth.deps import current_actor
from lockflow.bootstrap import System, all_topics, build_system
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.errors import Conflict, InvalidInput, LockflowError, NotFound, TooLarge
from lockflow.common.logging import configure_logging, get_logger
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.pipeline import QualityChoices
from lockflow.common.telemetry import setup_tracing
from lockflow.gateway.schemas import DecisionAccepted, DecisionSubmit, ErrorBody, RunCreate, RunCreated
from lockflow.gateway.settings import GatewaySettings
from lockflow.gateway.sources import sources_router, upload_rate
from lockflow.ingest.preflight import preflight, resolve_inside
from lockflow.ingest.ratelimit import RateLimiter
from lockflow.orchestrator import service, views
from lockflow.quality.preview import preview_for_request
from lockflow.reporting import plan_export

log = get_logger(__name__)
TERMINAL = ("completed", "failed", "aborted")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
}

Actor = Annotated[str, Depends(current_actor)]


def get_system(request: Request) -> System:
    """The process's composition root, built at startup."""
    system: System = request.app.state.system
    return system


SystemDep = Annotated[System, Depends(get_system)]


def create_app(settings: GatewaySettings | None = None, *, system: System | None = None) -> FastAPI:
    """Build the FastAPI app; with start_workers the whole pipeline runs in this process."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service="gateway", level=settings.log_level)
        setup_tracing(service="gateway", otlp_endpoint=settings.otlp_endpoint)
        built = system or build_system(settings, client_id="gateway")
        if isinstance(built.bus, KafkaBus):
            await built.bus.ensure_topics(all_topics(built.bus.prefix))
        if settings.start_workers:
            await built.start_everything()
        else:
            await built.bus.start()
            built.start_relay_loop()
        app.state.system = built
        try:
            yield
        finally:
            await built.close()

    app = FastAPI(
        title="lockflow",
        version="0.1.0",
        lifespan=lifespan,
        description="A data pipeline that people steer: runs, gates and decisions.",
    )
    app.state.settings = settings
    _install_error_handlers(app)
    _routes(app, settings)
    app.state.upload_limiter = RateLimiter(limit=settings.uploads_per_minute, window=60.0)
    app.include_router(sources_router(settings))
    return app


def _install_error_handlers(app: FastAPI) -> None:
    def reply(status: int, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    app.add_exception_handler(NotFound, lambda _r, e: reply(404, e))
    app.add_exception_handler(Conflict, lambda _r, e: reply(409, e))
    app.add_exception_handler(InvalidInput, lambda _r, e: reply(422, e))
    app.add_exception_handler(TooLarge, lambda _r, e: reply(413, e))
    app.add_exception_handler(LockflowError, lambda _r, e: reply(400, e))

    async def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=422, content={"detail": problems})

    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]


def _routes(app: FastAPI, settings: GatewaySettings) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz(system: SystemDep) -> dict[str, str]:
        """Liveness and database reachability."""
        await anyio.to_thread.run_sync(lambda: views.list_runs(system.db, limit=1))
        return {"status": "ok", "mode": settings.mode}

    @app.post("/runs", status_code=201, response_model=RunCreated, responses=ERRORS, tags=["runs"])
    async def create_run(body: RunCreate, system: SystemDep, actor: Actor) -> RunCreated:
        """Start a run on a file under the server's allowed folders."""
        path = resolve_inside(body.path, settings.source_dirs())
        spec = SourceSpec(path=str(path), format=body.format)
        run_id = await _start_run(system, spec=spec, goal=body.goal, name=body.name or path.name, actor=actor)
        return RunCreated(id=run_id)

    @app.post(
        "/runs/upload",
        status_code=201,
        response_model=RunCreated,
        responses=ERRORS,
        tags=["runs"],
        dependencies=[Depends(upload_rate)],
    )
    async def upload_run(
        system: SystemDep,
        actor: Actor,
        file: Annotated[UploadFile, File(description="CSV, JSON lines or Parquet")],
        target: Annotated[str | None, Form()] = None,
        direction: Annotated[Literal["increase", "decrease"], Form()] = "increase",
        name: Annotated[str | None, Form(max_length=200)] = None,
    ) -> RunCreated:
        """Upload a file (streamed to disk, size-limited) and start a run on it."""
        stored = await _store_upload(file, settings)
        spec = SourceSpec(path=str(stored))
        goal = Goal(target=target, direction=direction)
        try:
            run_id = await _start_run(
                system, spec=spec, goal=goal, name=name or file.filename or stored.name, actor=actor
            )
        except LockflowError:
            stored.unlink(missing_ok=True)
            raise
        return RunCreated(id=run_id)

    @app.get("/runs", tags=["runs"])
    async def list_runs(
        system: SystemDep, _actor: Actor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        """Newest runs first."""
        return await anyio.to_thread.run_sync(lambda: views.list_runs(system.db, limit=limit))

    @app.get("/runs/{run_id}", responses=ERRORS, tags=["runs"])
    async def get_run(run_id: str, system: SystemDep, _actor: Actor) -> dict[str, Any]:
        """A run with its stage results, attempts and decisions."""
        return await anyio.to_thread.run_sync(lambda: views.get_run(system.db, run_id=run_id))

    @app.get("/runs/{run_id}/timeline", responses=ERRORS, tags=["runs"])
    async def get_timeline(
        run_id: str, system: SystemDep, _actor: Actor, after: Annotated[int, Query(ge=0)] = 0
    ) -> list[dict[str, Any]]:
        """The run's events after a cursor."""
        return await anyio.to_thread.run_sync(lambda: views.timeline(system.db, run_id=run_id, after=after))

    @app.get("/runs/{run_id}/events", responses=ERRORS, tags=["runs"])
    async def stream_events(run_id: str, system: SystemDep, _actor: Actor) -> EventSourceResponse:
        """Live run events (Server-Sent Events) until the run ends."""
        await anyio.to_thread.run_sync(lambda: views.timeline(system.db, run_id=run_id, after=10**12))
        return EventSourceResponse(_event_stream(system, run_id))

    @app.get("/runs/{run_id}/report", responses=ERRORS, tags=["runs"])
    async def get_report(
        run_id: str, system: SystemDep, _actor: Actor, format: Literal["markdown", "json", "html"] = "json"
    ) -> Response:
        """The final report in the asked format."""
        uris = await anyio.to_thread.run_sync(lambda: views.report_uris(system.db, run_id=run_id))
        body = system.artifacts.read_bytes(uris[format]).decode()
        if format == "json":
            return JSONResponse(json.loads(body))
        if format == "html":
            return HTMLResponse(body)
        return PlainTextResponse(body, media_type="text/markdown")

    @app.get("/runs/{run_id}/plan", responses=ERRORS, tags=["runs"])
    async def get_plan(
        run_id: str, system: SystemDep, _actor: Actor, format: Literal["markdown", "json", "csv"] = "json"
    ) -> Response:
        """The final action plan (gate 5's selection) as Markdown, JSON or CSV (formula cells escaped)."""
        plan = await anyio.to_thread.run_sync(lambda: views.plan_of(system.db, run_id=run_id))
        if format == "csv":
            return PlainTextResponse(plan_export.plan_csv(plan), media_type="text/csv")
        if format == "markdown":
            return PlainTextResponse(plan_export.plan_markdown(plan), media_type="text/markdown")
        return Response(plan_export.plan_json(plan), media_type="application/json")

    @app.get("/decisions", tags=["decisions"])
    async def list_decisions(
        system: SystemDep,
        _actor: Actor,
        status: Literal["open", "decided", "all"] = "open",
        run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Decision requests (open ones by default)."""
        return await anyio.to_thread.run_sync(
            lambda: views.list_decision_requests(
                system.db, status=None if status == "all" else status, run_id=run_id
            )
        )

    @app.get("/decisions/{request_id}", responses=ERRORS, tags=["decisions"])
    async def get_decision(request_id: str, system: SystemDep, _actor: Actor) -> dict[str, Any]:
        """One decision request with the results it is about."""
        return await anyio.to_thread.run_sync(
            lambda: views.get_decision_request(system.db, request_id=request_id)
        )

    @app.post("/decisions/{request_id}/preview", responses=ERRORS, tags=["decisions"])
    async def preview_decision(
        request_id: str, body: QualityChoices, system: SystemDep, _actor: Actor
    ) -> dict[str, Any]:
        """Dry run of gate 2 'apply': what the chosen resolutions would change. Nothing is applied."""
        return await anyio.to_thread.run_sync(
            lambda: preview_for_request(
                db=system.db, artifacts=system.artifacts, request_id=request_id, params=body.model_dump()
            )
        )

    @app.post(
        "/decisions/{request_id}", response_model=DecisionAccepted, responses=ERRORS, tags=["decisions"]
    )
    async def submit_decision(
        request_id: str, body: DecisionSubmit, system: SystemDep, actor: Actor
    ) -> DecisionAccepted:
        """Decide an open gate: accepted once (409 after), 422 for a wrong option or parameters."""
        record = await anyio.to_thread.run_sync(
            lambda: service.record_decision(
                system.db,
                request_id=request_id,
                option=body.option,
                params=body.params,
                rationale=body.rationale,
                decided_by=actor,
                submitted_gate=body.gate,
            )
        )
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


async def _start_run(system: System, *, spec: SourceSpec, goal: Goal, name: str, actor: str) -> str:
    await anyio.to_thread.run_sync(lambda: preflight(spec=spec, goal=goal))
    run_id = await anyio.to_thread.run_sync(
        lambda: service.request_run(system.db, name=name, source=spec, goal=goal, requested_by=actor)
    )
    await system.relay_outbox()
    return run_id


async def _store_upload(file: UploadFile, settings: GatewaySettings) -> Path:
    """Stream the upload to a temp file in chunks, refusing it past the size limit, then keep it."""
    suffix = Path(file.filename or "upload").suffix.lower()[:10]
    folder = settings.upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=suffix)
    size = 0
    with open(fd, "wb") as out:
        while chunk := await file.read(1024 * 1024):
            size += len(chunk)
            if size > settings.max_upload_bytes:
                out.close()
                Path(tmp_name).unlink(missing_ok=True)
                raise TooLarge(f"upload exceeds {settings.max_upload_bytes} bytes")
            out.write(chunk)
    return Path(tmp_name)


async def _event_stream(system: System, run_id: str) -> AsyncIterator[dict[str, str]]:
    cursor = 0
    while True:
        entries = await anyio.to_thread.run_sync(
            functools.partial(views.timeline, system.db, run_id=run_id, after=cursor)
        )
        for entry in entries:
            cursor = entry["seq"]
            yield {"event": entry["type"], "id": str(entry["seq"]), "data": json.dumps(entry)}
        if entries and entries[-1]["type"] in ("RunCompleted", "RunFailed", "RunAborted"):
            return
        await asyncio.sleep(0.3)
