"""The orchestrator's alerts: raised from the facts it consumes and a sweep of open gates, stored once
each, and delivered to the webhook with retries (doubling backoff, then given up, recorded either way)."""

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import anyio
import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from lockflow.common.db import (
    AlertRow,
    Database,
    DecisionRequestRow,
    QualityScoreRow,
    RunRow,
    StreamWindowRow,
    utcnow,
)
from lockflow.common.events import Event, QualityAssessed, StageFailed, WindowAssessed
from lockflow.common.logging import get_logger
from lockflow.orchestrator.alerting import (
    AlertDraft,
    AlertRules,
    OpenGate,
    backoff,
    overdue_gates,
    quality_alerts,
    signature,
    slack_message,
    stage_failed,
    stream_gate_reopened,
)
from lockflow.orchestrator.settings import OrchestratorSettings

log = get_logger(__name__)
SIGNATURE_HEADER = "X-Lockflow-Signature"
TIMESTAMP_HEADER = "X-Lockflow-Request-Timestamp"
DELIVERY_TIMEOUT_SECONDS = 10.0


def rules_of(settings: OrchestratorSettings) -> AlertRules:
    """The alert thresholds from settings."""
    return AlertRules(
        quality_min=settings.alert_quality_min,
        quality_drop=settings.alert_quality_drop,
        gate_deadline=timedelta(seconds=settings.alert_gate_deadline_seconds),
    )


def raise_for_event(db: Database, event: Event, rules: AlertRules) -> list[AlertDraft]:
    """Store the alerts a fact raises (a stage failed, a quality score low or dropping); returns them."""
    drafts: list[AlertDraft] = []
    if isinstance(event, StageFailed):
        payload = event.payload
        drafts = [
            stage_failed(
                event.run_id, stage=payload.stage, attempt_id=payload.attempt_id, error=payload.error
            )
        ]
    elif isinstance(event, QualityAssessed):
        source = _source_key(db, event.run_id)
        previous = _record_score(db, event.run_id, source, event.payload.score)
        drafts = quality_alerts(
            event.run_id, source=source, score=event.payload.score, previous=previous, rules=rules
        )
    elif isinstance(event, WindowAssessed):
        drafts = _stream_reopened(db, event)
    store(db, drafts)
    return drafts


def _stream_reopened(db: Database, event: WindowAssessed) -> list[AlertDraft]:
    """The alert of a window that reopened its stream's gate 2 (the orchestrator marked it when stored)."""
    window = event.payload.window
    with db.transaction() as session:
        row = session.scalars(
            select(StreamWindowRow).where(
                StreamWindowRow.stream_id == event.run_id, StreamWindowRow.window_start == window.window_start
            )
        ).first()
        if row is None or not row.reopened:
            return []
        state = session.scalar(select(RunRow.state).where(RunRow.id == event.run_id)) or {}
    topic = ((state.get("stream") or {}).get("spec") or {}).get("topic") or event.run_id
    return [
        stream_gate_reopened(
            event.run_id, topic=topic, window_start=window.window_start, reasons=row.reopened
        )
    ]


def _source_key(db: Database, run_id: str) -> str:
    """What makes runs comparable: the registered source, else the file's name."""
    with db.transaction() as session:
        state = session.scalar(select(RunRow.state).where(RunRow.id == run_id)) or {}
    source = state.get("source") or {}
    return str(source.get("source_id") or source.get("path") or "unknown")[:1000]


def _record_score(db: Database, run_id: str, source: str, score: float) -> list[float]:
    """Keep this run's score; return the source's earlier runs' scores, most recent first."""
    with db.transaction() as session:
        previous = [
            float(s)
            for s in session.scalars(
                select(QualityScoreRow.score)
                .where(QualityScoreRow.source_key == source, QualityScoreRow.run_id != run_id)
                .order_by(QualityScoreRow.recorded_at.desc())
                .limit(50)
            )
        ]
        row = session.get(QualityScoreRow, run_id)
        if row is None:
            session.add(QualityScoreRow(run_id=run_id, source_key=source, score=score))
        else:  # a re-assessment after fixes: the run's latest score counts
            row.score = score
    return previous


def store(db: Database, drafts: Sequence[AlertDraft]) -> int:
    """Store each alert unless its dedup key is already there (a redelivered fact); returns how many new."""
    added = 0
    for draft in drafts:
        try:
            with db.transaction() as session:
                if (
                    session.scalar(select(AlertRow.id).where(AlertRow.dedup_key == draft.dedup_key))
                    is not None
                ):
                    continue
                session.add(
                    AlertRow(
                        dedup_key=draft.dedup_key,
                        run_id=draft.run_id,
                        kind=draft.kind,
                        severity=draft.severity,
                        subject=draft.subject,
                        title=draft.title,
                        detail=draft.detail,
                        created_at=utcnow(),
                        delivery="pending",
                        delivery_attempts=0,
                    )
                )
            added += 1
            log.info("alert_raised", kind=draft.kind, run_id=draft.run_id, subject=draft.subject)
        except IntegrityError:  # another orchestrator stored the same alert a moment earlier
            continue
    return added


def sweep_overdue_gates(db: Database, rules: AlertRules, *, now: datetime | None = None) -> int:
    """Alert on every decision request open past the deadline (once each); returns how many new."""
    now = now or utcnow()
    with db.transaction() as session:
        rows = session.execute(
            select(
                DecisionRequestRow.id,
                DecisionRequestRow.run_id,
                DecisionRequestRow.gate,
                DecisionRequestRow.created_at,
            ).where(
                DecisionRequestRow.status == "open", DecisionRequestRow.created_at < now - rules.gate_deadline
            )
        ).all()
    gates = [OpenGate(r.id, r.run_id, r.gate, _aware(r.created_at)) for r in rows]
    return store(db, overdue_gates(gates, now=now, rules=rules))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_dict(row: AlertRow) -> dict[str, object]:
    return {
        "id": row.id,
        "kind": row.kind,
        "severity": row.severity,
        "run_id": row.run_id,
        "subject": row.subject,
        "title": row.title,
        "detail": row.detail,
        "created_at": _aware(row.created_at).isoformat(),
    }


async def deliver_pending(db: Database, settings: OrchestratorSettings, client: httpx.AsyncClient) -> int:
    """POST every alert due for delivery to the webhook; a failure is tried again later. Returns delivered."""
    if not settings.alert_webhook_url:
        return 0
    now = utcnow()
    # The database calls run in a thread: the orchestrator's event loop keeps consuming meanwhile.
    due = await anyio.to_thread.run_sync(_due, db, now)
    delivered = 0
    for row in due:
        if not await anyio.to_thread.run_sync(_claim, db, row.id, now):
            continue  # another orchestrator took it a moment ago
        error = await _post(settings, client, _as_dict(row))
        await anyio.to_thread.run_sync(_record_delivery, db, row.id, error, settings.alert_webhook_attempts)
        delivered += error is None
    return delivered


def _due(db: Database, now: datetime) -> list[AlertRow]:
    """Alerts waiting for delivery whose next try is due, oldest first."""
    with db.transaction() as session:
        return list(
            session.scalars(
                select(AlertRow)
                .where(AlertRow.delivery == "pending")
                .where((AlertRow.next_delivery_at.is_(None)) | (AlertRow.next_delivery_at <= now))
                .order_by(AlertRow.id)
                .limit(50)
            )
        )


def _claim(db: Database, alert_id: int, now: datetime) -> bool:
    """Lease one alert's delivery (its next try pushed past the call's timeout), so two orchestrators
    never POST the same alert at once; False when another holds it."""
    lease = now + timedelta(seconds=2 * DELIVERY_TIMEOUT_SECONDS)
    with db.transaction() as session:
        taken = session.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id, AlertRow.delivery == "pending")
            .where((AlertRow.next_delivery_at.is_(None)) | (AlertRow.next_delivery_at <= now))
            .values(next_delivery_at=lease)
        )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


async def _post(
    settings: OrchestratorSettings, client: httpx.AsyncClient, alert: dict[str, object]
) -> str | None:
    """One delivery; None when the receiver took it (2xx), else why not."""
    run_url = f"{settings.public_url.rstrip('/')}/runs/{alert['run_id']}" if alert["run_id"] else None
    body = json.dumps(slack_message(alert, run_url=run_url)).encode()
    headers = {"Content-Type": "application/json"}
    if settings.alert_webhook_secret is not None:
        stamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(stamp)
        headers[SIGNATURE_HEADER] = signature(settings.alert_webhook_secret.get_secret_value(), stamp, body)
    assert settings.alert_webhook_url is not None
    try:
        response = await client.post(settings.alert_webhook_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if response.is_success else f"HTTP {response.status_code}"


def _record_delivery(db: Database, alert_id: int, error: str | None, max_attempts: int) -> None:
    with db.transaction() as session:
        row = session.get(AlertRow, alert_id)
        if row is None:
            return
        row.delivery_attempts += 1
        row.delivery_error = error
        if error is None:
            row.delivery, row.next_delivery_at = "delivered", None
        elif row.delivery_attempts >= max_attempts:
            row.delivery = "given_up"
            log.warning("alert_delivery_given_up", alert_id=alert_id, error=error)
        else:
            row.next_delivery_at = utcnow() + backoff(row.delivery_attempts)
            log.warning(
                "alert_delivery_failed", alert_id=alert_id, attempt=row.delivery_attempts, error=error
            )
