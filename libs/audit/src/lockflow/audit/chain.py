"""The append-only audit and security log: each row's hash covers its content and the previous hash.

The database refuses UPDATE and DELETE on `audit_log` (triggers in migration 0003); `verify_chain`
recomputes every hash so a row changed behind the triggers' back is found. User-supplied text is
escaped (`clean`) so it cannot break a record or a log line in two.

Appenders take turns through a lock the database holds until the appending transaction ends, so each
row chains to the newest committed one, whatever process or thread wrote it: PostgreSQL's advisory
transaction lock, SQLite's write lock (`BEGIN IMMEDIATE`). The newest row is read after the lock is
taken, in the same transaction; ids then grow in chain order, the order `verify_chain` walks.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import utcnow

GENESIS = "0" * 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
# The key of the PostgreSQL advisory lock appenders take turns on (migrations use 7170717).
CHAIN_LOCK_KEY = 7170718


def clean(value: str | None, *, limit: int = 200) -> str | None:
    """Escape CR, LF and every other control character, and cut to `limit` characters."""
    if value is None:
        return None
    escaped = _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}"), value)
    return escaped[:limit]


def _stamp(at: datetime) -> str:
    # SQLite hands timestamps back naive; they were written in UTC.
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(row: AuditRow) -> str:
    """SHA-256 of the previous hash and the row's content in a canonical form."""
    content = {
        "at": _stamp(row.at),
        "action": row.action,
        "actor": row.actor,
        "subject": row.subject,
        "client": row.client,
        "run_id": row.run_id,
        "gate": row.gate,
        "choice": row.choice,
        "rationale": row.rationale,
        "detail": row.detail,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((row.prev_hash + canonical).encode()).hexdigest()


def append(
    session: Session,
    *,
    action: str,
    actor: str,
    subject: str | None = None,
    client: str | None = None,
    run_id: str | None = None,
    gate: str | None = None,
    choice: str | None = None,
    rationale: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRow:
    """Add one record in the caller's transaction, chained to the newest one."""
    _lock_chain(session)
    return _append(session, action, actor, subject, client, run_id, gate, choice, rationale, detail)


def _lock_chain(session: Session) -> None:
    """Hold the chain for this transaction: no one else appends until it commits or rolls back."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    elif dialect == "sqlite":
        driver = connection.connection.dbapi_connection
        # pysqlite opens a transaction only before an INSERT/UPDATE/DELETE, which took the write lock
        # already; otherwise take it now (waiting up to the busy timeout), before the newest row is read.
        if not getattr(driver, "in_transaction", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        raise RuntimeError(f"the audit chain needs PostgreSQL or SQLite, not {dialect}")


def _append(
    session: Session,
    action: str,
    actor: str,
    subject: str | None,
    client: str | None,
    run_id: str | None,
    gate: str | None,
    choice: str | None,
    rationale: str | None,
    detail: dict[str, Any] | None,
) -> AuditRow:
    previous = session.scalar(select(AuditRow.hash).order_by(AuditRow.id.desc()).limit(1))
    row = AuditRow(
        at=utcnow(),
        action=action,
        actor=clean(actor) or "",
        subject=clean(subject),
        client=clean(client, limit=64),
        run_id=run_id,
        gate=gate,
        choice=clean(choice, limit=40),
        rationale=clean(rationale, limit=4000),
        detail={k: clean(v) if isinstance(v, str) else v for k, v in (detail or {}).items()},
        prev_hash=previous or GENESIS,
    )
    row.hash = row_hash(row)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verifying the chain: rows checked and the first broken row, if any."""

    ok: bool
    rows: int
    broken_at: int | None = None
    reason: str | None = None


def verify_chain(session: Session, *, batch: int = 1000) -> ChainReport:
    """Recompute every hash in order; the first mismatch is reported."""
    previous, count, last_id = GENESIS, 0, 0
    while True:
        rows = session.scalars(
            select(AuditRow).where(AuditRow.id > last_id).order_by(AuditRow.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, rows=count)
        for row in rows:
            if row.prev_hash != previous:
                return ChainReport(False, count, row.id, "prev_hash does not match the previous row")
            if row_hash(row) != row.hash:
                return ChainReport(False, count, row.id, "the row's content does not match its hash")
            previous, count, last_id = row.hash, count + 1, row.id


def records_after(session: Session, *, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` records after the id `after`, oldest first, and how many follow `after` in all."""
    rows = session.scalars(select(AuditRow).where(AuditRow.id > after).order_by(AuditRow.id).limit(limit))
    total = session.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.id > after))
    return [record_to_dict(r) for r in rows], total or 0


def record_to_dict(row: AuditRow) -> dict[str, Any]:
    """A record as shown by the API."""
    return {
        "id": row.id,
        "at": _stamp(row.at),
        "action": row.action,
        "actor": row.actor,
        "subject": row.subject,
        "client": row.client,
        "run_id": row.run_id,
        "gate": row.gate,
        "choice": row.choice,
        "rationale": row.rationale,
        "detail": row.detail,
        "hash": row.hash,
    }


def record_decision(
    session: Session,
    *,
    actor: str,
    run_id: str,
    gate: str,
    choice: str,
    rationale: str,
    client: str | None = None,
) -> AuditRow:
    """Who decided which gate of which run, what they chose and why (in the decision's transaction)."""
    return append(
        session,
        action="decision",
        actor=actor,
        client=client,
        run_id=run_id,
        gate=gate,
        choice=choice,
        rationale=rationale,
    )


def record_source_change(
    session: Session,
    *,
    actor: str,
    change: str,
    source: str,
    detail: dict[str, Any] | None = None,
    client: str | None = None,
) -> AuditRow:
    """A source created, updated or deleted (`change`: created / updated / deleted)."""
    if change not in ("created", "updated", "deleted"):
        raise ValueError(f"unknown source change {change!r}")
    return append(
        session, action=f"source_{change}", actor=actor, subject=source, client=client, detail=detail
    )
