"""Source registry endpoints: create, list, get, update, delete, test, upload, and start a run on a source."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lockflow.auth.deps import current_actor
from lockflow.bootstrap import System
from lockflow.common.cache import cache_key
from lockflow.common.errors import LockflowError, TooLarge
from lockflow.common.models import Goal, SourceSpec
from lockflow.ingest import registry
from lockflow.ingest.configs import ConfigInvalid
from lockflow.ingest.preflight import preflight_columns
from lockflow.ingest.ratelimit import RateLimited, RateLimiter
from lockflow.ingest.settings import SourceSettings
from lockflow.orchestrator import service

Actor = Annotated[str, Depends(current_actor)]


class SourceCreate(BaseModel):
    """A new source: a unique name, its type, and the type's config."""

    name: str = Field(min_length=1, max_length=200)
    type: str = Field(description="file, api, database or s3")
    config: dict[str, Any]


class SourceUpdate(BaseModel):
    """A partial change: secrets left out (or sent back as ********) keep their stored value."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)


class SourceRun(BaseModel):
    """Start a run on a registered source."""

    goal: Goal = Field(default_factory=Goal)
    name: str | None = Field(default=None, max_length=200)


def _system(request: Request) -> System:
    system: System = request.app.state.system
    return system


SystemDep = Annotated[System, Depends(_system)]


def upload_rate(request: Request, actor: Actor) -> None:
    """Count an upload against the caller's per-minute limit; 429 with Retry-After past it."""
    limiter: RateLimiter = request.app.state.upload_limiter
    try:
        limiter.hit(actor)
    except RateLimited as exc:
        raise HTTPException(
            status_code=429, detail=str(exc), headers={"Retry-After": str(max(1, round(exc.retry_after)))}
        ) from exc


def _invalid(exc: ConfigInvalid) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc), "errors": exc.errors})


def sources_router(settings: SourceSettings) -> APIRouter:
    """The /sources routes bound to the gateway's settings."""
    router = APIRouter(prefix="/sources", tags=["sources"])

    @router.post("", status_code=201)
    async def create(body: SourceCreate, system: SystemDep, actor: Actor) -> Any:
        """Register a source; 422 lists each config field that is wrong."""
        try:
            return await anyio.to_thread.run_sync(
                lambda: registry.create_source(
                    system.db,
                    name=body.name,
                    kind=body.type,
                    config=body.config,
                    actor=actor,
                    settings=settings,
                )
            )
        except ConfigInvalid as exc:
            return _invalid(exc)

    @router.get("")
    async def list_all(system: SystemDep, _actor: Actor) -> list[dict[str, Any]]:
        """Every source, secrets masked."""
        return await anyio.to_thread.run_sync(lambda: registry.list_sources(system.db, settings=settings))

    @router.get("/{ref}")
    async def get_one(ref: str, system: SystemDep, _actor: Actor) -> dict[str, Any]:
        """One source by id or name, secrets masked, with its approved contract."""
        return await anyio.to_thread.run_sync(
            lambda: registry.get_source(system.db, ref=ref, settings=settings)
        )

    @router.patch("/{ref}")
    async def update(ref: str, body: SourceUpdate, system: SystemDep, actor: Actor) -> Any:
        """Change a source's name or config; the new config is checked like a new one."""
        try:
            return await anyio.to_thread.run_sync(
                lambda: registry.update_source(
                    system.db, ref=ref, changes=body.config, name=body.name, actor=actor, settings=settings
                )
            )
        except ConfigInvalid as exc:
            return _invalid(exc)

    @router.delete("/{ref}", status_code=204)
    async def delete(ref: str, system: SystemDep, actor: Actor) -> Response:
        """Remove a source and its contract."""
        await anyio.to_thread.run_sync(lambda: registry.delete_source(system.db, ref=ref, actor=actor))
        return Response(status_code=204)

    @router.post("/{ref}/test")
    async def test(ref: str, system: SystemDep, _actor: Actor) -> dict[str, Any]:
        """Check that the source is reachable, authorised and readable, and how long that took."""
        health = await anyio.to_thread.run_sync(
            lambda: registry.test_source(system.db, ref=ref, settings=settings)
        )
        return health.model_dump(mode="json")

    @router.post("/{ref}/runs", status_code=201)
    async def start_run(ref: str, body: SourceRun, system: SystemDep, actor: Actor) -> dict[str, str]:
        """Start a run on the source; gate 1 shows its health, sample, schema and drift."""

        def create() -> str:
            spec = registry.spec_for(system.db, ref=ref, settings=settings)
            return service.request_run(
                system.db, name=body.name or ref, source=spec, goal=body.goal, requested_by=actor
            )

        run_id = await anyio.to_thread.run_sync(create)
        await system.relay_outbox()
        return {"id": run_id, "status": "running"}

    @router.post("/upload", status_code=201, dependencies=[Depends(upload_rate)])
    async def upload(
        system: SystemDep,
        actor: Actor,
        file: Annotated[
            UploadFile, File(description="CSV/TSV, JSON, JSON lines, Parquet, Excel, .gz or .zip")
        ],
        name: Annotated[str | None, Form(max_length=200)] = None,
    ) -> Any:
        """Upload a file (streamed to disk, limited) as a file source; a known file's schema is reused."""
        stored, digest = await store_upload(file, settings)
        try:
            columns, cached = await anyio.to_thread.run_sync(lambda: _columns(system, stored, digest))
            view = await anyio.to_thread.run_sync(
                lambda: registry.create_source(
                    system.db,
                    name=name or f"{file.filename or 'upload'}-{digest[:8]}",
                    kind="file",
                    config={"path": str(stored)},
                    actor=actor,
                    settings=settings,
                )
            )
        except LockflowError:
            stored.unlink(missing_ok=True)
            raise
        return {**view, "content_hash": digest, "columns": columns, "schema_cached": cached}

    return router


def _columns(system: System, path: Path, digest: str) -> tuple[list[dict[str, Any]], bool]:
    """The file's inferred head schema, from the cache when the same bytes were seen before."""
    key = cache_key("upload-schema", digest)
    hit = system.cache.get(key)
    if hit is not None:
        return json.loads(hit), True
    columns = [c.model_dump(mode="json") for c in preflight_columns(spec=SourceSpec(path=str(path)))]
    system.cache.set(key, json.dumps(columns))
    return columns, False


async def store_upload(file: UploadFile, settings: SourceSettings) -> tuple[Path, str]:
    """Stream an upload to the upload folder in 1 MiB chunks, hashing it; refuse it past the size limit."""
    limit = getattr(settings, "max_upload_bytes", settings.max_file_bytes)
    suffix = "".join(Path(file.filename or "upload").suffixes[-2:]).lower()[:12]
    folder = settings.upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=suffix)
    digest = hashlib.sha256()
    size = 0
    with open(fd, "wb") as out:
        while chunk := await file.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                out.close()
                Path(tmp_name).unlink(missing_ok=True)
                raise TooLarge(f"upload exceeds {limit} bytes")
            digest.update(chunk)
            out.write(chunk)
    return Path(tmp_name), digest.hexdigest()
