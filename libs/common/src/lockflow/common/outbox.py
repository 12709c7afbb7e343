"""Transactional outbox: events are stored with their cause and published after commit."""

from collections.abc import Sequence

from opentelemetry import context as otel_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from lockflow.common.bus import Bus
from lockflow.common.db import Database, OutboxRow, utcnow
from lockflow.common.events import Event, parse_event, serialize_event
from lockflow.common.telemetry import context_from_traceparent, current_traceparent


def add_to_outbox(session: Session, event: Event, *, traceparent: str | None = None) -> None:
    """Stage an event for publication in the caller's transaction."""
    session.add(
        OutboxRow(
            event_id=event.event_id,
            run_id=event.run_id,
            event_json=serialize_event(event).decode(),
            traceparent=traceparent or current_traceparent(),
        )
    )


async def publish_pending(db: Database, bus: Bus, *, limit: int = 100) -> int:
    """Publish unpublished outbox rows in order and mark them; returns how many were sent.

    Several relays share the table (the orchestrator, every gateway process). Each takes the rows
    no other relay holds (`FOR UPDATE SKIP LOCKED`, so no row is sent twice) and, to keep one run's
    events in their order, sends a run's rows only while no earlier row of that run is still unsent
    (held by another relay right now): those wait for the next sweep, after the other relay committed.
    """
    sent = 0
    with db.transaction() as session:
        rows = session.scalars(
            select(OutboxRow)
            .where(OutboxRow.published_at.is_(None))
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in _in_run_order(session, rows):
            token = otel_context.attach(context_from_traceparent(row.traceparent))
            try:
                await bus.publish(parse_event(row.event_json))
            finally:
                otel_context.detach(token)
            row.published_at = utcnow()
            sent += 1
    return sent


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
