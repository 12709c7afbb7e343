"""Source registry endpoints: create, list, get, update, delete, test, upload, and start a run on a source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from lockflow.access.address import client_address
from lockflow.access.deps import Authorized, Principal
from lockflow.access.policy import Role, Scope
from lockflow.audit import chain as audit
from lockflow.common.cache import cache_key
from lockflow.common.errors import LockflowError
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.service_requests import describe_file, source_health
from lockflow.gateway.access import auth_of, check_source
from lockflow.gateway.bootstrap import Runtime as System
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.limits import Limiter
from lockflow.gateway.pages import LISTED, PagingDep, with_total
from lockflow.gateway.uploads import check_config_path, forget_upload, record_upload, store_upload
from lockflow.qualityrules.rules import quality_rules_of
from lockflow.resilience import RateLimited
from lockflow.runstore import intake
from lockflow.sources import registry
from lockflow.sources.configs import CONFIG_TYPES, ConfigInvalid
from lockflow.sources.settings import SourceSettings


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with its local `#/$defs/...` references replaced by what they name."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def _config_per_type(schema: dict[str, Any]) -> None:
    """Publish `config` per `type`: one branch per source type holding exactly that type's fields.

    The body stays a plain object (the registry parses the config and answers 422 listing each wrong
    field); this only documents what it accepts, so a client (or a fuzzer) can build a valid one.
    """
    branches = []
    for kind, model in CONFIG_TYPES.items():
        config = model.model_json_schema()
        branches.append(
            {
                "properties": {"type": {"const": kind}, "config": _inline(config, config.get("$defs", {}))},
                "required": ["type", "config"],
            }
        )
    schema["oneOf"] = branches


# A source's name is used in URL paths: the registry's rule (`check_name`), published; its own 422 stays.
SOURCE_NAME: JsonDict = {"pattern": registry.NAME_PATTERN.pattern, "maxLength": registry.NAME_MAX}


class SourceCreate(BaseModel):
    """A new source: a unique name, its type, and the type's config."""

    model_config = ConfigDict(json_schema_extra=_config_per_type)

    name: str = Field(min_length=1, max_length=200, json_schema_extra=SOURCE_NAME)
    type: str = Field(
        description="file, api, database, s3 or stream", json_schema_extra={"enum": list(CONFIG_TYPES)}
    )
    config: dict[str, Any]


class SourceUpdate(BaseModel):
    """A partial change: secrets left out (or sent back as ********) keep their stored value."""

    name: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra=SOURCE_NAME)
    config: dict[str, Any] = Field(default_factory=dict)


class SourceRun(BaseModel):
    """Start a run on a registered source."""

    goal: Goal = Field(default_factory=Goal)
    name: str | None = Field(default=None, max_length=200)
    rules: str | dict[str, Any] | None = Field(
        default=None, description="Data quality rules as YAML text or a JSON object ({'rules': [...]})"
    )


def rate_limited(limiter: Limiter, user: str) -> None:
    """Count one event against the user's per-minute limit; 429 with Retry-After past it."""
    try:
        limiter.hit(user)
    except RateLimited as exc:
        raise HTTPException(
            status_code=429, detail=str(exc), headers={"Retry-After": str(max(1, round(exc.retry_after)))}
        ) from exc


def upload_rate(request: Request, principal: Authorized) -> None:
    """Count an upload against the caller's per-minute limit (shared by replicas through Redis)."""
    rate_limited(request.app.state.upload_limiter, principal.username)


def _audit_source(request: Request, principal: Principal, *, change: str, view: dict[str, Any]) -> None:
    """A source created, updated or deleted, in the audit chain (config values are not copied there)."""
    with auth_of(request).db.transaction() as session:
        audit.record_source_change(
            session,
            actor=principal.username,
            change=change,
            source=view["name"],
            detail={"id": view["id"], "type": view.get("type")},
            client=client_address(request),
        )


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or revoked access token"},
    403: {"description": "the caller's roles may not do this (or only the source's owner may)"},
    404: {"description": "no such source, or not the caller's to see"},
    409: {"description": "conflicts with the current state (e.g. the name is taken)"},
    413: {"description": "upload too large"},
    422: {"description": "invalid input"},
    429: {"description": "upload rate limit reached; see Retry-After"},
}
# Routes the ingest service answers (request/reply over the bus).
ASKS: dict[int | str, dict[str, Any]] = {
    503: {"description": "the ingest service could not be asked; try again"},
    504: {"description": "the ingest service did not answer in time"},
}


def _invalid(exc: ConfigInvalid) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc), "errors": exc.errors})


router = APIRouter(prefix="/sources", tags=["sources"], responses=ERRORS)


def _allowed(
    request: Request, system: System, settings: SourceSettings, principal: Principal, ref: str, scope: Scope
) -> None:
    """404/403 unless the caller may see (or own) the source."""
    view = registry.get_source(system.db, ref=ref, settings=settings)
    check_source(auth_of(request), principal, source=view, scope=scope)


@router.post("", status_code=201)
async def create(
    body: SourceCreate, request: Request, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> Any:
    """Register a source; 422 lists each config field that is wrong."""
    await anyio.to_thread.run_sync(lambda: _own_paths(system, principal, body.config, settings))
    try:
        view = await anyio.to_thread.run_sync(
            lambda: registry.create_source(
                system.db,
                name=body.name,
                kind=body.type,
                config=body.config,
                actor=principal.username,
                settings=settings,
            )
        )
    except ConfigInvalid as exc:
        return _invalid(exc)
    await anyio.to_thread.run_sync(lambda: _audit_source(request, principal, change="created", view=view))
    return view


@router.get("", responses=LISTED)
async def list_all(
    request: Request,
    response: Response,
    system: SystemDep,
    settings: SettingsDep,
    principal: Authorized,
    page: PagingDep,
) -> list[dict[str, Any]]:
    """The sources the caller created or that are shared with them (admins: all), secrets masked.

    Filtered by the caller in the query, then paged (`offset`, `limit`); the total is in X-Total-Count.
    """

    def read() -> tuple[list[dict[str, Any]], int]:
        admin = Role.ADMIN in principal.roles
        auth = auth_of(request)
        return registry.sources_page(
            system.db,
            settings=settings,
            owner=None if admin else principal.username,
            shared=() if admin else auth.shared_ids(object_type="source", username=principal.username),
            limit=page.limit,
            offset=page.offset,
        )

    rows, total = await anyio.to_thread.run_sync(read)
    return with_total(response, rows, total)


@router.get("/{ref}")
async def get_one(
    ref: str, request: Request, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> dict[str, Any]:
    """One source by id or name, secrets masked, with its approved contract."""

    def read() -> dict[str, Any]:
        view = registry.get_source(system.db, ref=ref, settings=settings)
        check_source(auth_of(request), principal, source=view, scope=Scope.VISIBLE)
        return view

    return await anyio.to_thread.run_sync(read)


@router.patch("/{ref}")
async def update(
    ref: str,
    body: SourceUpdate,
    request: Request,
    system: SystemDep,
    settings: SettingsDep,
    principal: Authorized,
) -> Any:
    """Change a source's name or config (its owner only); the new config is checked like a new one."""
    await anyio.to_thread.run_sync(lambda: _allowed(request, system, settings, principal, ref, Scope.OWNER))
    await anyio.to_thread.run_sync(lambda: _own_paths(system, principal, body.config, settings))
    try:
        view = await anyio.to_thread.run_sync(
            lambda: registry.update_source(
                system.db,
                ref=ref,
                changes=body.config,
                name=body.name,
                actor=principal.username,
                settings=settings,
            )
        )
    except ConfigInvalid as exc:
        return _invalid(exc)
    await anyio.to_thread.run_sync(lambda: _audit_source(request, principal, change="updated", view=view))
    return view


@router.delete("/{ref}", status_code=204)
async def delete(
    ref: str, request: Request, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> Response:
    """Remove a source and its contract (its owner only)."""

    def remove() -> None:
        view = registry.get_source(system.db, ref=ref, settings=settings)
        check_source(auth_of(request), principal, source=view, scope=Scope.OWNER)
        registry.delete_source(system.db, ref=ref, actor=principal.username)
        _audit_source(request, principal, change="deleted", view=view)

    await anyio.to_thread.run_sync(remove)
    return Response(status_code=204)


@router.post("/{ref}/test", responses=ASKS)
async def test(
    ref: str, request: Request, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> dict[str, Any]:
    """Check that the source is reachable, authorised and readable, and how long that took.

    The ingest service runs the check (a request over the bus) and stores its result.
    """
    await anyio.to_thread.run_sync(lambda: _allowed(request, system, settings, principal, ref, Scope.VISIBLE))
    health = await source_health(system.requester, ref=ref)
    return health.model_dump(mode="json")


@router.post("/{ref}/runs", status_code=201)
async def start_run(
    ref: str,
    body: SourceRun,
    request: Request,
    system: SystemDep,
    settings: SettingsDep,
    principal: Authorized,
) -> dict[str, str]:
    """Start a run on the source; gate 1 shows its health, sample, schema and drift."""

    def create() -> str:
        _allowed(request, system, settings, principal, ref, Scope.VISIBLE)
        rules = quality_rules_of(body.rules)
        spec = registry.spec_for(system.db, ref=ref, settings=settings)
        return intake.request_run(
            system.db,
            name=body.name or ref,
            source=spec,
            goal=body.goal,
            requested_by=principal.username,
            quality_rules=rules,
        )

    run_id = await anyio.to_thread.run_sync(create)
    await system.relay_outbox()
    return {"id": run_id, "status": "running"}


@router.post("/upload", status_code=201, dependencies=[Depends(upload_rate)], responses=ASKS)
async def upload(
    request: Request,
    system: SystemDep,
    settings: SettingsDep,
    principal: Authorized,
    file: Annotated[UploadFile, File(description="CSV/TSV, JSON, JSON lines, Parquet, Excel, .gz or .zip")],
    name: Annotated[str | None, Form(max_length=200, json_schema_extra=SOURCE_NAME)] = None,
) -> Any:
    """Upload a file (streamed into the artifact store, limited) as a file source; a known file's schema
    is reused."""
    limit = getattr(settings, "max_upload_bytes", settings.max_file_bytes)
    suffix = "".join(Path(file.filename or "upload").suffixes[-2:]).lower()[:12]
    stored = await store_upload(file, system.artifacts, limit=limit, suffix=suffix)
    digest = stored.digest
    try:
        await anyio.to_thread.run_sync(
            lambda: record_upload(
                system.db, upload=stored, owner=principal.username, original_name=file.filename
            )
        )
        columns, cached = await _columns(system, stored.spec(), digest)
        view = await anyio.to_thread.run_sync(
            lambda: registry.create_source(
                system.db,
                name=name or registry.safe_name(Path(file.filename or "upload").name, f"-{digest[:8]}"),
                kind="file",
                # The path names the upload (as `POST /runs` does); the reader uses the uri.
                config={"path": str(settings.upload_dir() / stored.name), "uri": stored.uri},
                actor=principal.username,
                settings=settings,
            )
        )
    except LockflowError:
        await anyio.to_thread.run_sync(lambda: forget_upload(system.db, system.artifacts, upload=stored))
        raise
    await anyio.to_thread.run_sync(lambda: _audit_source(request, principal, change="created", view=view))
    return {**view, "content_hash": digest, "columns": columns, "schema_cached": cached}


def _own_paths(
    system: System, principal: Principal, config: dict[str, Any], settings: SourceSettings
) -> None:
    """A file source may point into the upload folder only at the caller's own uploads."""
    check_config_path(system.db, principal, config=config, upload_dir=settings.upload_dir())


async def _columns(system: System, spec: SourceSpec, digest: str) -> tuple[list[dict[str, Any]], bool]:
    """The file's inferred head schema (by the ingest service), from the cache when the same bytes were
    seen before."""
    key = cache_key("upload-schema", digest)
    hit = await anyio.to_thread.run_sync(lambda: system.cache.get(key))
    if hit is not None:
        return json.loads(hit), True
    inferred = await describe_file(system.requester, spec=spec)
    columns = [c.model_dump(mode="json") for c in inferred]
    await anyio.to_thread.run_sync(lambda: system.cache.set(key, json.dumps(columns)))
    return columns, False
