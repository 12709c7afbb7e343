"""Stream routes: live streams (runs of kind "stream"), their windows (paged, and live over SSE), their
policy versions, and snapshots that turn windows into a batch run.

A stream is started like any run of a registered source (`POST /sources/{ref}/runs` on a `stream`
source); its gates are decided at `/decisions` like a batch run's. Who may see a stream is who may see
its run (owner, shared, admin).
"""

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field, model_validator
from sse_starlette.sse import EventSourceResponse

from lockflow.access.deps import Authorized, Principal
from lockflow.common.models import Goal
from lockflow.common.service_requests import check_file
from lockflow.gateway.access import StreamPrincipal, auth_of, check_run, run_reader
from lockflow.gateway.bootstrap import Runtime
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.events import ERRORS as SSE_ERRORS
from lockflow.gateway.events import TERMINAL, TokenWatch
from lockflow.gateway.pages import LISTED, MAX_ID, PagingDep, with_total
from lockflow.gateway.responses import ASKS, ERRORS
from lockflow.runstore import intake
from lockflow.runstore import streams as store
from lockflow.runstore.views import run_status

router = APIRouter(prefix="/streams", tags=["streams"])
POLL_SECONDS = 0.5
RECHECK_SECONDS = 5.0
SNAPSHOT_MAX_WINDOWS = 1000
WINDOW_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string", "enum": ["window", "ended", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
WINDOW_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `event: window` per closed window (`id` its row id, `data` the "
        "window), `event: ended` when the stream's run ends, `event: error` when the token lapses",
        "content": {"text/event-stream": {"schema": WINDOW_EVENT}},
    }
}


class SnapshotCreate(BaseModel):
    """Cut a dataset from a stream's windows and run it through the batch stages."""

    last: int | None = Field(default=None, ge=1, le=SNAPSHOT_MAX_WINDOWS, description="The last N windows")
    start: datetime | None = Field(default=None, description="Windows starting at or after this time")
    end: datetime | None = Field(default=None, description="Windows ending at or before this time")
    name: str | None = Field(default=None, max_length=200)
    every_minutes: int | None = Field(
        default=None,
        ge=5,
        le=10_080,
        description="Take this snapshot (the last N windows) again every so many minutes while it runs",
    )
    goal: Goal = Field(
        default_factory=Goal, description="Without a target, lockflow picks one (as for a file)"
    )

    @model_validator(mode="after")
    def _one_selection(self) -> "SnapshotCreate":
        if self.last is None and self.start is None and self.end is None:
            raise ValueError("give last (the last N windows), or a time range (start and/or end)")
        if self.last is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either last or a time range, not both")
        if self.every_minutes is not None and self.last is None:
            raise ValueError("a schedule (every_minutes) takes the last N windows (last), not a time range")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class SnapshotCreated(BaseModel):
    """The snapshot's batch run, and what it was cut from."""

    id: str
    stream_id: str
    windows: int
    rows: int
    status: str = "running"


def _visible(request: Request, principal: Principal, system: Runtime, stream_id: str) -> dict[str, Any]:
    stream = store.get_stream(system.db, stream_id=stream_id)
    check_run(auth_of(request), principal, run_id=stream_id, owner=stream["requested_by"])
    return stream


@router.get("", responses={**ERRORS, **LISTED})
async def list_streams(
    request: Request,
    response: Response,
    system: SystemDep,
    principal: Authorized,
    page: PagingDep,
    status: Annotated[
        str | None, Query(max_length=20, description="Only streams whose run is in this state")
    ] = None,
) -> list[dict[str, Any]]:
    """Newest streams first: those the caller started or that are shared with them (admins: all).

    Filtered in the query, then paged (`offset`, `limit`); the total is in X-Total-Count.
    """

    def read() -> tuple[list[dict[str, Any]], int]:
        reader = run_reader(auth_of(request), principal)
        return store.streams_page(
            system.db,
            owner=reader.username if reader else None,
            shared=reader.shared_runs if reader else (),
            status=status,
            limit=page.limit,
            offset=page.offset,
        )

    rows, total = await anyio.to_thread.run_sync(read)
    return with_total(response, rows, total)


@router.get("/{stream_id}", responses=ERRORS)
async def get_stream(
    stream_id: str, request: Request, system: SystemDep, principal: Authorized
) -> dict[str, Any]:
    """A stream: its topic, contract, policy version in force, totals, latest window and snapshots."""
    return await anyio.to_thread.run_sync(lambda: _visible(request, principal, system, stream_id))


@router.get("/{stream_id}/windows", responses={**ERRORS, **LISTED})
async def list_windows(
    stream_id: str,
    request: Request,
    response: Response,
    system: SystemDep,
    principal: Authorized,
    page: PagingDep,
    start: Annotated[datetime | None, Query(description="Windows starting at or after this time")] = None,
    end: Annotated[datetime | None, Query(description="Windows ending at or before this time")] = None,
) -> list[dict[str, Any]]:
    """The stream's closed windows, newest first: each a WindowResult, its `id`, why it reopened gate 2."""

    def read() -> tuple[list[dict[str, Any]], int]:
        _visible(request, principal, system, stream_id)
        return store.windows_page(
            system.db, stream_id=stream_id, limit=page.limit, offset=page.offset, start=start, end=end
        )

    rows, total = await anyio.to_thread.run_sync(read)
    return with_total(response, rows, total)


@router.get(
    "/{stream_id}/windows/stream",
    response_class=EventSourceResponse,
    responses={**WINDOW_STREAM, **SSE_ERRORS},
)
async def stream_windows(
    stream_id: str,
    request: Request,
    system: SystemDep,
    settings: SettingsDep,
    principal: StreamPrincipal,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Resume after this window id")] = None,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, le=MAX_ID, description="The id of the last window received; resumes after it"),
    ] = None,
) -> EventSourceResponse:
    """Closed windows live (Server-Sent Events), resumable, until the stream's run ends or the token lapses.

    Authenticated like `GET /runs/{run_id}/events` (an EventSource may send the token as `access_token`).
    """
    auth = auth_of(request)
    cursor = last_event_id if last_event_id is not None else (after or 0)
    await anyio.to_thread.run_sync(lambda: _visible(request, principal, system, stream_id))
    watch = TokenWatch(
        auth, principal, recheck_seconds=RECHECK_SECONDS, max_seconds=settings.stream_max_seconds
    )
    return EventSourceResponse(_window_events(system, stream_id, cursor=cursor, watch=watch))


async def _window_events(
    system: Runtime, stream_id: str, *, cursor: int, watch: TokenWatch
) -> AsyncIterator[dict[str, str]]:
    """The windows after the cursor, then each new one, until the stream's run ends."""
    while True:
        reason = await watch.refusal()
        if reason is not None:
            yield {"event": "error", "data": json.dumps({"reason": reason})}
            return
        status = await anyio.to_thread.run_sync(functools.partial(run_status, system.db, run_id=stream_id))
        windows = await anyio.to_thread.run_sync(
            functools.partial(store.windows_after, system.db, stream_id=stream_id, after_id=cursor)
        )
        for window in windows:
            cursor = window["id"]
            yield {"event": "window", "id": str(cursor), "data": json.dumps(window)}
        if status in TERMINAL:  # read before the windows: none stored after this can be missed
            yield {"event": "ended", "data": json.dumps({"status": status})}
            return
        await asyncio.sleep(POLL_SECONDS)


@router.get("/{stream_id}/policies", responses=ERRORS)
async def list_policies(
    stream_id: str, request: Request, system: SystemDep, principal: Authorized
) -> list[dict[str, Any]]:
    """Every approved version of the stream's standing policy, newest first (with its decision request)."""

    def read() -> list[dict[str, Any]]:
        _visible(request, principal, system, stream_id)
        return store.policies_of(system.db, stream_id=stream_id)

    return await anyio.to_thread.run_sync(read)


@router.post(
    "/{stream_id}/snapshots", status_code=201, response_model=SnapshotCreated, responses={**ERRORS, **ASKS}
)
async def create_snapshot(
    stream_id: str, body: SnapshotCreate, request: Request, system: SystemDep, principal: Authorized
) -> SnapshotCreated:
    """A dataset of the stream's windows (the last N, or a time range), run through the batch stages.

    With `every_minutes` (and `last`) the orchestrator takes the same snapshot again on that schedule
    while the stream runs, each its own run (`GET /streams/{id}` shows the schedule).

    The windows' Parquet micro-batches become one Parquet artifact; the batch run (its own run, linked
    to the stream) starts at ingest and stops at each gate like any run. 422 when no window in the
    selection has records.
    """

    def cut() -> tuple[dict[str, Any], store.Snapshot]:
        stream = _visible(request, principal, system, stream_id)
        snapshot = store.cut_snapshot(
            system.db,
            system.artifacts,
            stream_id=stream_id,
            stream_name=stream["name"],
            last=body.last,
            start=body.start,
            end=body.end,
        )
        return stream, snapshot

    stream, snapshot = await anyio.to_thread.run_sync(cut)
    checked = await check_file(system.requester, spec=snapshot.spec, goal=body.goal)
    name = body.name or f"{stream['name'][:150]} snapshot"

    def start() -> str:
        run_id = intake.request_run(
            system.db,
            name=name,
            source=snapshot.spec,
            goal=checked.goal,
            requested_by=principal.username,
            stream_id=stream_id,
        )
        if body.every_minutes is not None and body.last is not None:
            store.schedule_snapshots(
                system.db,
                stream_id=stream_id,
                last_windows=body.last,
                every_minutes=body.every_minutes,
                goal=checked.goal,
                created_by=principal.username,
            )
        return run_id

    run_id = await anyio.to_thread.run_sync(start)
    await system.relay_outbox()
    return SnapshotCreated(id=run_id, stream_id=stream_id, windows=snapshot.windows, rows=snapshot.rows)
