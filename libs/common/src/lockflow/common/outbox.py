"""Transactional outbox: events are stored with their cause and published after commit."""

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
    """Publish unpublished outbox rows in order and mark them; returns how many were sent."""
    sent = 0
    with db.transaction() as session:
        rows = session.scalars(
            select(OutboxRow)
            .where(OutboxRow.published_at.is_(None))
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            token = otel_context.attach(context_from_traceparent(row.traceparent))
            try:
                await bus.publish(parse_event(row.event_json))
            finally:
                otel_context.detach(token)
            row.published_at = utcnow()
            sent += 1
    return sent
