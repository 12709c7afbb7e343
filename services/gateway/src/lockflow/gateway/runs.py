"""Run routes: start one (a file path or an upload), list, read, its timeline, report and plan, retry."""

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from lockflow.access.deps import Authorized, Principal
from lockflow.access.policy import Scope
from lockflow.audit import chain as audit
from lockflow.common.errors import LockflowError, NotFound
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.paths import resolve_inside
from lockflow.common.service_requests import check_file
from lockflow.gateway.access import auth_of, check_run, run_reader
from lockflow.gateway.bootstrap import Runtime
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.hardening import html_policy
from lockflow.gateway.pages import LISTED, MAX_ID, PagingDep, with_total
from lockflow.gateway.responses import ASKS, ERRORS
from lockflow.gateway.schemas import RunCreate, RunCreated
from lockflow.gateway.sources import upload_rate
from lockflow.gateway.uploads import check_upload_path, forget_upload, record_upload, store_upload
from lockflow.plans import export as plan_export
from lockflow.qualityrules.rules import RULES_MAX_CHARS, quality_rules_of
from lockflow.runstore import intake, views

router = APIRouter(prefix="/runs", tags=["runs"])
RETRY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {
        "model": ERRORS[409]["model"],
        "description": "the run did not fail at a step (or is being retried)",
    },
}


class RetryAccepted(BaseModel):
    """The retried run: running again at the step that failed."""

    id: str
    status: str
    step: str


@router.post("", status_code=201, response_model=RunCreated, responses={**ERRORS, **ASKS})
async def create_run(
    body: RunCreate, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> RunCreated:
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


@router.post(
    "/upload",
    status_code=201,
    response_model=RunCreated,
    responses={**ERRORS, **ASKS},
    dependencies=[Depends(upload_rate)],
)
async def upload_run(
    system: SystemDep,
    settings: SettingsDep,
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
        lambda: record_upload(system.db, upload=stored, owner=principal.username, original_name=file.filename)
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


@router.get("", responses={**ERRORS, **LISTED})
async def list_runs(
    request: Request,
    response: Response,
    system: SystemDep,
    principal: Authorized,
    page: PagingDep,
    status: Annotated[
        views.RunFilter | None,
        Query(description="Only runs in this state; `completed` means without open quality findings"),
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Only runs whose name or starter contains this, or id starts so"),
    ] = None,
) -> list[dict[str, Any]]:
    """Newest runs first: those the caller started or that are shared with them (admins: all).

    Filtered by the caller (and `status`, `q`) in the query, then paged (`offset`, `limit`); the total
    is in X-Total-Count.
    """

    def read() -> views.Page:
        reader = run_reader(auth_of(request), principal)
        return views.runs_page(
            system.db,
            reader=reader,
            limit=page.limit,
            offset=page.offset,
            status=status,
            search=q.strip() if q and q.strip() else None,
        )

    found = await anyio.to_thread.run_sync(read)
    return with_total(response, found.rows, found.total)


@router.get("/{run_id}", responses=ERRORS)
async def get_run(run_id: str, request: Request, system: SystemDep, principal: Authorized) -> dict[str, Any]:
    """A run with its stage results, attempts and decisions."""

    def read() -> dict[str, Any]:
        # Read first, then check against the run's own starter: a run the caller may not see is
        # the same 404 as a missing one, and the owner needs no second lookup.
        run = views.get_run(system.db, run_id=run_id)
        check_run(auth_of(request), principal, run_id=run_id, owner=run["requested_by"])
        return run

    return await anyio.to_thread.run_sync(read)


@router.get("/{run_id}/timeline", responses=ERRORS)
async def get_timeline(
    run_id: str,
    request: Request,
    system: SystemDep,
    principal: Authorized,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    """The run's events after a cursor."""
    await _visible_run(request, principal, run_id)
    return await anyio.to_thread.run_sync(lambda: views.timeline(system.db, run_id=run_id, after=after))


@router.get("/{run_id}/report", responses=ERRORS)
async def get_report(
    run_id: str,
    request: Request,
    system: SystemDep,
    principal: Authorized,
    format: Literal["markdown", "json", "html", "pdf"] = "json",
) -> Response:
    """The final report in the asked format (pdf: the HTML report printed, charts included)."""
    await _visible_run(request, principal, run_id)
    uris = await anyio.to_thread.run_sync(lambda: views.report_uris(system.db, run_id=run_id))
    if format not in uris:
        raise NotFound(f"run {run_id}'s report has no {format} (it was compiled before that export)")
    data = await anyio.to_thread.run_sync(system.artifacts.read_bytes, uris[format])
    if format == "pdf":
        return Response(data, media_type="application/pdf")
    body = data.decode()
    if format == "json":
        return JSONResponse(json.loads(body))
    if format == "html":
        return HTMLResponse(body, headers={"Content-Security-Policy": html_policy(body)})
    return PlainTextResponse(body, media_type="text/markdown")


@router.get("/{run_id}/plan", responses=ERRORS)
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


@router.post("/{run_id}/retry", status_code=202, response_model=RetryAccepted, responses=RETRY_ERRORS)
async def retry(run_id: str, request: Request, system: SystemDep, principal: Authorized) -> RetryAccepted:
    """Run a failed run's failed step again with the same inputs; the decisions made so far are kept.

    Who may decide on the run may retry it (analyst, approver; own or shared). 409 unless the run
    failed at a step; 404 for a run the caller cannot see.
    """

    def run_again() -> RetryAccepted:
        check_run(auth_of(request), principal, run_id=run_id, scope=Scope.VISIBLE)
        intake.retry_run(system.db, run_id=run_id, requested_by=principal.username)
        run = views.get_run(system.db, run_id=run_id)
        _audit_retry(request, principal, run_id, step=run["current_step"])
        return RetryAccepted(id=run_id, status=run["status"], step=run["current_step"])

    accepted = await anyio.to_thread.run_sync(run_again)
    await system.relay_outbox()
    return accepted


async def _visible_run(request: Request, principal: Principal, run_id: str) -> None:
    await anyio.to_thread.run_sync(lambda: check_run(auth_of(request), principal, run_id=run_id))


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


def _audit_retry(request: Request, principal: Principal, run_id: str, *, step: str) -> None:
    """Who asked to run which step of which run again: one row in the audit chain."""
    with auth_of(request).db.transaction() as session:
        audit.append(
            session,
            action="run_retried",
            actor=principal.username,
            run_id=run_id,
            detail={"step": step},
            client=request.client.host if request.client else None,
        )
