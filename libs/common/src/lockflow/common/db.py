"""Database models and session handling (SQLAlchemy 2): PostgreSQL distributed, SQLite embedded.

The schema is owned by Alembic migrations in lockflow.common.migrations; `migrate()` brings any
database to head and is safe to call at every start.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class RunRow(Base):
    """A run: its status, where it is, and the latest result of each stage (state)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_requested_by_created_at", "requested_by", "created_at", "id"),
        Index("ix_runs_kind_created_at", "kind", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    current_step: Mapped[str | None] = mapped_column(String(40))
    open_gate: Mapped[str | None] = mapped_column(String(40))
    requested_by: Mapped[str] = mapped_column(String(200))
    traceparent: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # Findings still present after gate 2's fixes; None until quality has assessed the run.
    open_findings: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "batch", or "stream": a long-lived run whose id is the stream's (lockflow.common.streams).
    kind: Mapped[str] = mapped_column(String(20), default="batch", server_default="batch")
    # A snapshot run: the stream its dataset was cut from.
    stream_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class StageAttemptRow(Base):
    """One request for a step's work and its outcome."""

    __tablename__ = "stage_attempts"
    __table_args__ = (Index("ix_stage_attempts_run_id_requested_at", "run_id", "requested_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    command_event_id: Mapped[str] = mapped_column(String(36))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by the worker when it starts the attempt and every few seconds while it runs.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Overdue after this: not picked up by a worker in time, or not finished in time.
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 1 for the first request of the step, +1 each time the sweep sends it again.
    dispatches: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class DecisionRequestRow(Base):
    """A gate waiting for a person (status open) or already decided."""

    __tablename__ = "decision_requests"
    __table_args__ = (
        Index("ix_decision_requests_run_id_status", "run_id", "status"),
        Index("ix_decision_requests_status_created_at", "status", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    gate: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(200))
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DecisionRow(Base):
    """Who decided what, when and why: one per decision request, never more."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("request_id", name="uq_decisions_request"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("decision_requests.id"))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    gate: Mapped[str] = mapped_column(String(40))
    option: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    decided_by: Mapped[str] = mapped_column(String(200))
    rationale: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """An event written in the same transaction as its cause, published after commit."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    event_json: Mapped[str] = mapped_column(Text)
    traceparent: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class ProcessedEventRow(Base):
    """Marks an event as handled by a consumer, in the same transaction as the effect."""

    __tablename__ = "processed_events"
    consumer: Mapped[str] = mapped_column(String(60), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RunEventRow(Base):
    """The run's timeline as the orchestrator saw it (feeds the live view)."""

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_id_id", "run_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class SourceRow(Base):
    """A registered data source: public config as JSON, secrets encrypted (Fernet) as text."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    last_health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SourceContractRow(Base):
    """The schema a person approved at gate 1 for a source; later runs report drift against it."""

    __tablename__ = "source_contracts"
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    run_id: Mapped[str] = mapped_column(String(36))
    approved_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UploadRow(Base):
    """An uploaded file, by the name the server gave it, who uploaded it, and its artifact's uri.

    The bytes are an artifact (content-addressed, in the artifact store every process reaches), so the
    same bytes uploaded twice are one artifact under two names, each with its own owner.
    """

    __tablename__ = "uploads"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    uri: Mapped[str | None] = mapped_column(String(1000), index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    original_name: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlertRow(Base):
    """An alert a user sees (a stage failed, a gate overdue, a quality score low or dropping), and its
    webhook delivery; `dedup_key` makes raising the same alert twice (a redelivered event) a no-op."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    # Webhook delivery: pending (or none when no webhook is set), delivered, given_up.
    delivery: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(Text)


class QualityScoreRow(Base):
    """A run's assessed quality score by its source, so a score is compared with the source's earlier runs."""

    __tablename__ = "quality_scores"
    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(1000), index=True)
    score: Mapped[float]
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StreamWindowRow(Base):
    """One closed window of a stream as its WindowAssessed said (`result` is the WindowResult)."""

    __tablename__ = "stream_windows"
    __table_args__ = (
        UniqueConstraint("stream_id", "window_start", name="uq_stream_windows_start"),
        Index("ix_stream_windows_stream_id_start", "stream_id", "window_start"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(20))
    records: Mapped[int] = mapped_column(Integer)
    violations: Mapped[int] = mapped_column(Integer)  # records with any finding
    quality_score: Mapped[float]
    freshness_p99_seconds: Mapped[float | None]
    artifact_uri: Mapped[str | None] = mapped_column(String(1000))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Why this window reopened gate 2 (None: it did not).
    reopened: Mapped[list[str] | None] = mapped_column(JSON)
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StreamPolicyRow(Base):
    """One approved version of a stream's standing policy (`policy` is the StreamPolicy)."""

    __tablename__ = "stream_policies"
    stream_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str] = mapped_column(String(36))
    approved_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StreamSnapshotScheduleRow(Base):
    """A stream's recurring snapshot: its last `last_windows` windows as a batch run every `every_seconds`."""

    __tablename__ = "stream_snapshot_schedules"
    stream_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    last_windows: Mapped[int] = mapped_column(Integer)
    every_seconds: Mapped[int] = mapped_column(Integer)
    goal: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_run_id: Mapped[str | None] = mapped_column(String(36))


def make_engine(url: str) -> Engine:
    """An engine with settings that suit each backend."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def is_database_outage(exc: BaseException) -> bool:
    """True for an error of the database being away or restarting (refused, cut, starting up, a lock
    or statement timeout, a SQLite file locked), which a retry after a while gets past; False for
    errors of the statement or the schema."""
    if isinstance(exc, DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):  # SQLite's OperationalError also means "no such table"
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)
    return isinstance(exc, OperationalError | InterfaceError)


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Every process migrates at start; the lock makes concurrent starts take turns.
            connection.execute(text("SELECT pg_advisory_xact_lock(7170717)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """Engine + session factory; `transaction()` is the unit of work."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
