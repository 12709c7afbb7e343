"""Live run events (Server-Sent Events): resumable from the last event id, ended when the token lapses.

Every event carries the run timeline's seq as its SSE `id`. A client that reconnects with that id (the
`Last-Event-ID` header a browser's EventSource sends by itself, or `?after=` for clients that cannot
set headers) gets the events after it: nothing replayed, nothing lost. The stream outlives neither its
access token (its expiry plus the verifier's clock leeway) nor a revocation (logout, role change,
disabled account, checked every few seconds): it then sends one `error` event naming the reason and
closes, and the reconnect with the same token is refused with 401.
"""

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette.sse import EventSourceResponse

from lockflow.access.deps import Access, Principal
from lockflow.gateway.access import StreamPrincipal, auth_of, check_run
from lockflow.gateway.bootstrap import Runtime as System
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.pages import MAX_ID
from lockflow.gateway.schemas import ErrorBody
from lockflow.runstore import views

POLL_SECONDS = 0.3
# How often an open stream asks whether its token was revoked (one Redis MGET or database read).
RECHECK_SECONDS = 5.0
RUN_ENDED = ("RunCompleted", "RunFailed", "RunAborted")
TERMINAL = ("completed", "failed", "aborted")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid, expired or revoked access token"},
    403: {"model": ErrorBody, "description": "the caller's roles may not do this"},
    404: {"model": ErrorBody, "description": "no such run, or not the caller's to see"},
    422: {"model": ErrorBody, "description": "Last-Event-ID or after is not a non-negative integer"},
}
# The 200 answer is an event stream, documented one event at a time: `id` the timeline seq, `event` the
# event's type (or `error`, whose data names why the stream ends), `data` the timeline entry as JSON.
EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `id` the timeline seq, `event` the event type, `data` the entry",
        "content": {"text/event-stream": {"schema": EVENT}},
    }
}


class TokenWatch:
    """Whether the stream's access token still holds: not past its expiry, not revoked since."""

    def __init__(
        self, auth: Access, principal: Principal, *, recheck_seconds: float, max_seconds: float
    ) -> None:
        self.auth = auth
        self.claims = principal.claims
        # The verifier accepts a token up to `leeway` seconds past exp; the stream lives exactly as long.
        self.deadline = self.claims.expires_at + auth.verifier.leeway
        # And never longer than the stream limit: an idle stream holds a connection and a poll loop.
        self.closes_at = time.time() + max_seconds
        self.recheck_seconds = recheck_seconds
        self.checked_at = time.monotonic()

    async def refusal(self) -> str | None:
        """Why the stream must end now; None while the token is good."""
        if time.time() >= self.deadline:
            return "the access token has expired; log in or refresh, then reconnect with Last-Event-ID"
        if time.time() >= self.closes_at:
            return "the stream reached its time limit; reconnect with Last-Event-ID"
        if time.monotonic() - self.checked_at < self.recheck_seconds:
            return None
        self.checked_at = time.monotonic()
        claims = self.claims
        reason = await anyio.to_thread.run_sync(
            lambda: self.auth.verifier.state.refusal(
                user_id=claims.subject, session=claims.session, version=claims.version
            )
        )
        return f"the access token was revoked: {reason}" if reason else None


router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("/{run_id}/events", response_class=EventSourceResponse, responses={**STREAM, **ERRORS})
async def stream_events(
    run_id: str,
    request: Request,
    system: SystemDep,
    settings: SettingsDep,
    principal: StreamPrincipal,
    after: Annotated[
        int | None,
        Query(
            ge=0, le=MAX_ID, description="Resume after this event id (for clients that cannot set headers)"
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, le=MAX_ID, description="The id of the last event received; the stream resumes after it"),
    ] = None,
) -> EventSourceResponse:
    """Live run events (Server-Sent Events) until the run ends or the access token lapses.

    Each event's `id` is its timeline seq; a reconnect with `Last-Event-ID` (or `?after=`) gets only
    the events after it. Authenticated like every route; since a browser's EventSource cannot send
    headers, the access token may come as the `access_token` query parameter here (and only here).
    When the token expires or is revoked the stream sends `event: error` with the reason and closes.
    """
    auth = auth_of(request)
    # A browser's automatic reconnect sends the header and repeats the URL: the header is newer.
    cursor = last_event_id if last_event_id is not None else (after or 0)
    ended = await anyio.to_thread.run_sync(lambda: _visible_and_ended(auth, principal, system, run_id))
    watch = TokenWatch(
        auth, principal, recheck_seconds=RECHECK_SECONDS, max_seconds=settings.stream_max_seconds
    )
    return EventSourceResponse(_event_stream(system, run_id, cursor=cursor, ended=ended, watch=watch))


def _visible_and_ended(auth: Access, principal: Principal, system: System, run_id: str) -> bool:
    """404 unless the caller may see the run; whether it has ended (then no event may follow the cursor)."""
    check_run(auth, principal, run_id=run_id)
    return views.run_status(system.db, run_id=run_id) in TERMINAL


async def _event_stream(
    system: System, run_id: str, *, cursor: int, ended: bool, watch: TokenWatch
) -> AsyncIterator[dict[str, str]]:
    """The run's timeline after the cursor, then its new events as they come, until it ends."""
    while True:
        reason = await watch.refusal()
        if reason is not None:
            yield {"event": "error", "data": json.dumps({"reason": reason})}
            return
        entries = await anyio.to_thread.run_sync(
            functools.partial(views.timeline, system.db, run_id=run_id, after=cursor)
        )
        for entry in entries:
            cursor = entry["seq"]
            yield {"event": entry["type"], "id": str(entry["seq"]), "data": json.dumps(entry)}
        if entries and entries[-1]["type"] in RUN_ENDED:
            return
        if ended and not entries:  # resumed after the run's last event: nothing more will come
            return
        ended = False  # a run that ended may be retried: then its new events follow
        await asyncio.sleep(POLL_SECONDS)
