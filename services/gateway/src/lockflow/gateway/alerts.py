"""Alerts people see: the list (filtered by the caller, paged, with the total), acknowledging one, and
a live stream (Server-Sent Events) of new ones. The orchestrator raises and delivers them."""

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Header, Path, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from lockflow.access.deps import Authorized
from lockflow.gateway.access import StreamPrincipal, auth_of, run_reader
from lockflow.gateway.bootstrap import Runtime as System
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.events import RECHECK_SECONDS, TokenWatch
from lockflow.gateway.pages import LISTED, MAX_ID, PagingDep, with_total
from lockflow.gateway.schemas import ErrorBody
from lockflow.runstore import alerts
from lockflow.runstore.views import Reader

POLL_SECONDS = 1.0
KINDS = Literal["stage_failed", "gate_overdue", "quality_low", "quality_drop"]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid or revoked access token"},
    403: {"model": ErrorBody, "description": "the caller's roles may not do this"},
    404: {"model": ErrorBody, "description": "no such alert, or not the caller's to see"},
    409: {"model": ErrorBody, "description": "the alert was already acknowledged"},
    422: {"model": ErrorBody, "description": "a parameter is not valid (the detail names it)"},
}
STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `id` the alert id, `event` `alert`, `data` the alert as JSON",
        "content": {"text/event-stream": {"schema": {"type": "object"}}},
    }
}


router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", responses={**ERRORS, **LISTED})
async def list_alerts(
    request: Request,
    response: Response,
    system: SystemDep,
    principal: Authorized,
    page: PagingDep,
    status: Literal["open", "acknowledged", "all"] = "all",
    kind: KINDS | None = None,
    run_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Alerts on the runs the caller may see, newest first; the total is in X-Total-Count."""
    reader = run_reader(auth_of(request), principal)
    found = await anyio.to_thread.run_sync(
        lambda: alerts.alerts_page(
            system.db,
            reader=reader,
            status=None if status == "all" else status,
            run_id=run_id or None,
            kind=kind,
            limit=page.limit,
            offset=page.offset,
        )
    )
    return with_total(response, found.rows, found.total)


@router.post("/{alert_id}/ack", responses=ERRORS)
async def acknowledge(
    alert_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    system: SystemDep,
    principal: Authorized,
) -> dict[str, Any]:
    """Mark an alert seen (who and when are recorded); 409 when it already was."""
    reader = run_reader(auth_of(request), principal)
    return await anyio.to_thread.run_sync(
        lambda: alerts.acknowledge(system.db, alert_id=alert_id, reader=reader, by=principal.username)
    )


@router.get("/stream", response_class=EventSourceResponse, responses={**STREAM, **ERRORS})
async def stream(
    request: Request,
    system: SystemDep,
    settings: SettingsDep,
    principal: StreamPrincipal,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID, description="Resume after this id")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Resume after this alert id")] = None,
) -> EventSourceResponse:
    """New alerts on the caller's runs as they are raised (from now, or after the given id)."""
    auth = auth_of(request)
    reader = run_reader(auth, principal)
    cursor = last_event_id if last_event_id is not None else after
    if cursor is None:
        cursor = await anyio.to_thread.run_sync(alerts.last_alert_id, system.db)
    watch = TokenWatch(
        auth, principal, recheck_seconds=RECHECK_SECONDS, max_seconds=settings.stream_max_seconds
    )
    return EventSourceResponse(_alert_stream(system, reader, cursor=cursor, watch=watch))


async def _alert_stream(
    system: System, reader: Reader | None, *, cursor: int, watch: TokenWatch
) -> AsyncIterator[dict[str, str]]:
    """Alerts after the cursor as they come, until the token lapses."""
    while True:
        reason = await watch.refusal()
        if reason is not None:
            yield {"event": "error", "data": json.dumps({"reason": reason})}
            return
        found = await anyio.to_thread.run_sync(
            functools.partial(alerts.alerts_after, system.db, reader=reader, after=cursor)
        )
        for alert in found:
            cursor = alert["id"]
            yield {"event": "alert", "id": str(alert["id"]), "data": json.dumps(alert)}
        await asyncio.sleep(POLL_SECONDS)
