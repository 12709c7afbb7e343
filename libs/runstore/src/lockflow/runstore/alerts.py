"""Reading and acknowledging the alerts people see: only those of runs the reader may see, filtered in
the query, then paged, with the total."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from lockflow.common.db import AlertRow, Database, RunRow, utcnow
from lockflow.common.errors import Conflict, NotFound
from lockflow.runstore.views import Page, Reader, runs_visible_to


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def alert_view(row: AlertRow) -> dict[str, Any]:
    """An alert as the API shows it (the delivery state included, not the receiver's error text)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "severity": row.severity,
        "run_id": row.run_id,
        "subject": row.subject,
        "title": row.title,
        "detail": row.detail,
        "created_at": _iso(row.created_at),
        "acknowledged_at": _iso(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "delivery": row.delivery,
    }


def _conditions(
    reader: Reader | None, *, status: str | None, run_id: str | None, kind: str | None, after: int | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if status == "open":
        conditions.append(AlertRow.acknowledged_at.is_(None))
    elif status == "acknowledged":
        conditions.append(AlertRow.acknowledged_at.is_not(None))
    if run_id:
        conditions.append(AlertRow.run_id == run_id)
    if kind:
        conditions.append(AlertRow.kind == kind)
    if after is not None:
        conditions.append(AlertRow.id > after)
    visible = runs_visible_to(reader)
    if visible is not None:
        conditions.append(AlertRow.run_id.in_(select(RunRow.id).where(visible)))
    return conditions


def alerts_page(
    db: Database,
    *,
    reader: Reader | None,
    status: str | None = None,
    run_id: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """The reader's alerts, newest first, filtered in the query, then paged, with the total."""
    conditions = _conditions(reader, status=status, run_id=run_id, kind=kind, after=None)
    query = select(AlertRow).where(*conditions).order_by(AlertRow.id.desc()).limit(limit).offset(offset)
    count = select(func.count()).select_from(AlertRow).where(*conditions)
    with db.transaction() as session:
        return Page(rows=[alert_view(r) for r in session.scalars(query)], total=session.scalar(count) or 0)


def alerts_after(
    db: Database, *, reader: Reader | None, after: int, limit: int = 100
) -> list[dict[str, Any]]:
    """The reader's alerts with an id above `after`, oldest first (the live stream's next batch)."""
    conditions = _conditions(reader, status=None, run_id=None, kind=None, after=after)
    query = select(AlertRow).where(*conditions).order_by(AlertRow.id).limit(limit)
    with db.transaction() as session:
        return [alert_view(r) for r in session.scalars(query)]


def last_alert_id(db: Database) -> int:
    """The newest alert's id (a stream without a cursor starts after it)."""
    with db.transaction() as session:
        return int(session.scalar(select(func.max(AlertRow.id))) or 0)


def acknowledge(db: Database, *, alert_id: int, reader: Reader | None, by: str) -> dict[str, Any]:
    """Mark an alert seen by `by`: 404 when the reader may not see it, 409 when already acknowledged."""
    with db.transaction() as session:
        row = session.get(AlertRow, alert_id, with_for_update=True)
        condition = runs_visible_to(reader)
        visible = row is not None and (
            condition is None
            or bool(
                session.scalar(
                    select(func.count()).select_from(RunRow).where(RunRow.id == row.run_id, condition)
                )
            )
        )
        if row is None or not visible:
            raise NotFound(f"no alert {alert_id}")
        if row.acknowledged_at is not None:
            raise Conflict(f"alert {alert_id} was acknowledged by {row.acknowledged_by}")
        row.acknowledged_at, row.acknowledged_by = utcnow(), by
        return alert_view(row)
