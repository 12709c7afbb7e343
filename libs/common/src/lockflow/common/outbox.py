"""Transactional outbox: events are stored with their cause and published after commit.

A process's `OutboxRelay` publishes as soon as a transaction that wrote outbox rows commits in that
process (the commit wakes it), and sweeps the table every `outbox_sweep_seconds` as the safety net
for rows a crashed process committed but never sent.
"""

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Sequence

from opentelemetry import context as otel_context
from sqlalchemy import event as orm_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from lockflow.common.bus import Bus
from lockflow.common.db import Database, OutboxRow, utcnow
from lockflow.common.events import Event, parse_event, serialize_event
from lockflow.common.logging import get_logger
from lockflow.common.telemetry import context_from_traceparent, current_traceparent

log = get_logger(__name__)
PUBLISH_LIMIT = 100
# Rows held back (an earlier row of their run held by another relay) are tried again this soon,
# rather than at the next sweep: the other relay is about to commit.
HELD_BACK_RETRY_SECONDS = 0.02
HELD_BACK_RETRIES = 25  # then the sweep's pace: the other relay's transaction is taking long
_WROTE = "lockflow.outbox.wrote"
_RELAYS: "weakref.WeakSet[OutboxRelay]" = weakref.WeakSet()
_RELAYS_LOCK = threading.Lock()  # commits run on worker threads, relays start on the loop's


def add_to_outbox(session: Session, event: Event, *, traceparent: str | None = None) -> None:
    """Stage an event for publication in the caller's transaction (its commit wakes the relays)."""
    session.add(
        OutboxRow(
            event_id=event.event_id,
            run_id=event.run_id,
            event_json=serialize_event(event).decode(),
            traceparent=traceparent or current_traceparent(),
        )
    )
    session.info[_WROTE] = True


@orm_event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    """After a commit that wrote outbox rows: wake this process's relays on the same database."""
    if not session.info.pop(_WROTE, False):
        return
    bind = session.get_bind()
    with _RELAYS_LOCK:
        relays = list(_RELAYS)
    for relay in relays:
        if relay.db.engine is bind:
            relay.wake()


@orm_event.listens_for(Session, "after_rollback")
def _forget_rows(session: Session) -> None:
    """Rolled back: the rows were never written, nothing to wake for."""
    session.info.pop(_WROTE, None)


class OutboxRelay:
    """Publishes a process's outbox: at once when woken by a commit, else every `sweep_seconds`.

    `wake_on_commit=False` leaves publication to the sweep alone (the peer bench/pipeline.py
    measures against); `publish` is the same serialised publication on demand.
    """

    def __init__(
        self, db: Database, bus: Bus, *, sweep_seconds: float = 1.0, wake_on_commit: bool = True
    ) -> None:
        self.db, self.bus = db, bus
        self.sweep_seconds, self.wake_on_commit = sweep_seconds, wake_on_commit
        self.lock = asyncio.Lock()
        self._woken: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def publish(self) -> int:
        """Publish whatever the outbox holds now (serialised within this process); how many were sent."""
        sent, _held = await self._publish()
        return sent

    async def _publish(self) -> tuple[int, int]:
        async with self.lock:
            total_sent = total_held = 0
            while True:
                sent, held, taken = await _publish_rows(self.db, self.bus, limit=PUBLISH_LIMIT)
                total_sent, total_held = total_sent + sent, held
                if taken < PUBLISH_LIMIT or sent == 0:
                    return total_sent, total_held

    def wake(self) -> None:
        """Publish soon, from any thread (a commit's); nothing when waking is off or not started."""
        loop, woken = self._loop, self._woken
        if not self.wake_on_commit or loop is None or woken is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(woken.set)

    def start(self) -> None:
        """Run the relay on the running event loop until `stop`."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self._stopping = False
        with _RELAYS_LOCK:
            _RELAYS.add(self)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._woken is not None
        wait, retries = 0.0, 0  # a first sweep at start: what a crashed process left
        while not self._stopping:
            if wait > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that arrives as the
                # event is set (a commit's wake-up during stop), and the relay then never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._woken.wait()
            if self._stopping:
                return
            self._woken.clear()
            wait = self.sweep_seconds
            try:
                _sent, held = await self._publish()
                retries = retries + 1 if held else 0
                if held and self.wake_on_commit and retries <= HELD_BACK_RETRIES:
                    wait = min(wait, HELD_BACK_RETRY_SECONDS)
            except Exception as exc:  # the relay must outlive a transient broker or database error
                log.warning("outbox_relay_failed", error=repr(exc))

    async def stop(self) -> None:
        """Stop the relay's task (rows not yet sent stay for the next process's sweep)."""
        with _RELAYS_LOCK:
            _RELAYS.discard(self)
        task, self._task = self._task, None
        self._stopping = True
        if self._woken is not None:
            self._woken.set()  # a loop that lost the cancel still sees the flag at once
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop = self._woken = None


async def publish_pending(db: Database, bus: Bus, *, limit: int = PUBLISH_LIMIT) -> int:
    """Publish unpublished outbox rows in order and mark them; returns how many were sent.

    Several relays share the table (the orchestrator, every gateway process). Each takes the rows
    no other relay holds (`FOR UPDATE SKIP LOCKED`, so no row is sent twice) and, to keep one run's
    events in their order, sends a run's rows only while no earlier row of that run is still unsent
    (held by another relay right now): those wait for the next sweep, after the other relay committed.
    """
    sent, _held, _taken = await _publish_rows(db, bus, limit=limit)
    return sent


async def _publish_rows(db: Database, bus: Bus, *, limit: int) -> tuple[int, int, int]:
    """(rows sent, rows held back behind another relay's, rows taken) of one pass over the outbox."""
    sent = 0
    with db.transaction() as session:
        rows = session.scalars(
            select(OutboxRow)
            .where(OutboxRow.published_at.is_(None))
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        ready = _in_run_order(session, rows)
        for row in ready:
            token = otel_context.attach(context_from_traceparent(row.traceparent))
            try:
                await bus.publish(parse_event(row.event_json))
            finally:
                otel_context.detach(token)
            row.published_at = utcnow()
            sent += 1
    return sent, len(rows) - len(ready), len(rows)


def _in_run_order(session: Session, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    """The rows that are next in their run: each run's taken rows up to the first unsent row not taken."""
    if not rows:
        return []
    taken = {row.id for row in rows}
    unsent = session.execute(
        select(OutboxRow.run_id, OutboxRow.id)
        .where(OutboxRow.published_at.is_(None), OutboxRow.run_id.in_({row.run_id for row in rows}))
        .order_by(OutboxRow.id)
    ).all()
    blocked: set[str] = set()
    for run_id, row_id in unsent:
        if row_id not in taken:
            blocked.add(run_id)  # another relay holds it: this run's later rows wait
        elif run_id in blocked:
            taken.discard(row_id)
    return [row for row in rows if row.id in taken]
