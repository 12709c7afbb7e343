"""Prometheus metrics: one registry per process (no multiprocess mode), bounded labels only.

Every name has the `lockflow_` prefix and a base unit (seconds, bytes, ratio); counters end in
`_total`. Labels come from closed sets (service, stage, gate, option, outcome, error type, topic,
group, route template, status), never a run, user or key: a label per run would make a new time
series per run and blow up Prometheus. Values outside a closed set are folded into "other".

Workers serve this registry on LOCKFLOW_METRICS_PORT (`serve_metrics`, with /healthz and /readyz);
the gateway serves it at /metrics. What a crashed process would hide (runs active, gates pending)
is computed from the database at scrape time by the orchestrator (`DatabaseCollector`).
"""

import platform
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import metadata
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from lockflow.common.db import Database, DecisionRequestRow, RunRow
from lockflow.common.logging import get_logger
from lockflow.common.pipeline import GATES as GATE_DEFINITIONS
from lockflow.common.pipeline import STAGES, STREAM_GATES, Gate

log = get_logger(__name__)
# The one registry of this process; everything below registers on it.
REGISTRY = CollectorRegistry(auto_describe=True)
# CPU seconds, resident memory, open files: the resource use the seed asks for.
ProcessCollector(namespace="lockflow", registry=REGISTRY)

SERVICES = ("gateway", "auth", "orchestrator", "lockflow", *STAGES)
GATES = tuple(g.value for g in Gate)
RUN_OUTCOMES = ("completed", "failed", "aborted")
RUN_STATES = ("running", "waiting", "retrying")
STAGE_OUTCOMES = ("succeeded", "failed", "skipped")
ERROR_TYPES = ("invalid_input", "timeout", "memory_budget", "unavailable", "unexpected")
BUS_OUTCOMES = ("handled", "dead_lettered", "invalid")
OTHER = "other"

# Stage work lasts from milliseconds to many minutes; a gate waits for a person (minutes to days).
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
RUN_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
WAIT_BUCKETS = (1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)

BUILD = Info("lockflow_build", "The running lockflow build", registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "lockflow_http_requests_total",
    "HTTP requests the gateway answered, by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "lockflow_http_request_duration_seconds",
    "Time the gateway took to answer, by route template",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)

RUNS_STARTED = Counter("lockflow_runs_started_total", "Runs requested", registry=REGISTRY)
RUNS_COMPLETED = Counter(
    "lockflow_runs_completed_total", "Runs that ended, by outcome", ["outcome"], registry=REGISTRY
)
RUN_DURATION = Histogram(
    "lockflow_run_duration_seconds",
    "Wall time from a run's request to its end (gates included), by outcome",
    ["outcome"],
    buckets=RUN_BUCKETS,
    registry=REGISTRY,
)
QUALITY_SCORE = Histogram(
    "lockflow_quality_score_ratio",
    "Quality score (0-1) of the datasets the quality stage assessed",
    buckets=SCORE_BUCKETS,
    registry=REGISTRY,
)

# A live stream's windows, as the orchestrator records them (WindowAssessed); per stream in the API.
STREAM_MODES = ("policy", "hold", "pass")
STREAM_OUTCOMES = ("clean", "quarantined", "repaired", "dropped", "held", "late")
STREAM_REOPEN_REASONS = ("new_kind", "violation_rate", "score_drop")
FRESHNESS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
STREAM_WINDOWS = Counter(
    "lockflow_stream_windows_recorded_total",
    "Closed stream windows recorded, by the mode they were routed in (policy, hold, pass)",
    ["mode"],
    registry=REGISTRY,
)
STREAM_RECORDS = Counter(
    "lockflow_stream_window_records_total",
    "Records of closed stream windows, by what was done with them",
    ["outcome"],
    registry=REGISTRY,
)
STREAM_WINDOW_RECORDS = Counter(
    "lockflow_stream_window_arrived_records_total",
    "Records that arrived in closed stream windows",
    registry=REGISTRY,
)
STREAM_FINDINGS = Counter(
    "lockflow_stream_window_findings_total",
    "Records with a finding in closed stream windows, by finding kind",
    ["kind"],
    registry=REGISTRY,
)
STREAM_QUALITY = Histogram(
    "lockflow_stream_window_quality_ratio",
    "Quality score (0-1) of each closed stream window",
    buckets=SCORE_BUCKETS,
    registry=REGISTRY,
)
STREAM_FRESHNESS = Histogram(
    "lockflow_stream_window_freshness_seconds",
    "A window's p99 end-to-end freshness (arrival minus event time): the stream's lag",
    buckets=FRESHNESS_BUCKETS,
    registry=REGISTRY,
)
STREAM_REOPENED = Counter(
    "lockflow_stream_gate_reopened_total",
    "Stream windows that reopened the quality policy's gate, by reason",
    ["reason"],
    registry=REGISTRY,
)

STAGE_MESSAGES = Counter(
    "lockflow_stage_messages_total",
    "Stage commands handled, by stage and outcome",
    ["stage", "outcome"],
    registry=REGISTRY,
)
STAGE_DURATION = Histogram(
    "lockflow_stage_processing_seconds",
    "Time a stage took on one command (retries included)",
    ["stage"],
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
STAGE_QUEUE_WAIT = Histogram(
    "lockflow_stage_queue_wait_seconds",
    "Time from a command being written to a stage worker taking it",
    ["stage"],
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
STAGE_RETRIES = Counter(
    "lockflow_stage_retries_total",
    "Stage attempts tried again after an unexpected error",
    ["stage"],
    registry=REGISTRY,
)
STAGE_FAILURES = Counter(
    "lockflow_stage_failures_total",
    "Stage commands that ended in StageFailed, by error type",
    ["stage", "error_type"],
    registry=REGISTRY,
)
STAGE_LAST_SUCCESS = Gauge(
    "lockflow_stage_last_success_timestamp_seconds",
    "Unix time a stage last finished a command successfully",
    ["stage"],
    registry=REGISTRY,
)

BUS_MESSAGES = Counter(
    "lockflow_bus_messages_total",
    "Records a consumer took from a topic, by outcome",
    ["topic", "outcome"],
    registry=REGISTRY,
)
DLQ_RECORDS = Counter(
    "lockflow_dlq_records_total",
    "Records written to a dead-letter topic, by original topic",
    ["topic"],
    registry=REGISTRY,
)
CONSUMER_POLL = Gauge(
    "lockflow_consumer_last_poll_timestamp_seconds",
    "Unix time a consumer group's loop last polled the broker (a worker's heartbeat)",
    ["group"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "lockflow_kafka_consumer_lag_messages",
    "End offset minus committed offset, summed over a topic's partitions, per consumer group",
    ["group", "topic"],
    registry=REGISTRY,
)

GATES_REQUESTED = Counter(
    "lockflow_gates_requested_total", "Decisions asked of a person, by gate", ["gate"], registry=REGISTRY
)
GATES_DECIDED = Counter(
    "lockflow_gates_decided_total",
    "Decisions made, by gate and option",
    ["gate", "option"],
    registry=REGISTRY,
)
GATE_WAIT = Histogram(
    "lockflow_gate_wait_seconds",
    "Time from a decision being asked to its being made, by gate",
    ["gate"],
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def bounded(value: str | None, allowed: Iterable[str]) -> str:
    """The value if it is one of the allowed label values, else "other" (labels stay a closed set)."""
    return value if value is not None and value in tuple(allowed) else OTHER


def set_build_info(service: str) -> None:
    """Name this process's service and versions in lockflow_build_info."""
    try:
        version = metadata.version("lockflow-common")
    except metadata.PackageNotFoundError:
        version = "unknown"
    BUILD.info(
        {"service": bounded(service, SERVICES), "version": version, "python": platform.python_version()}
    )


def seconds_since(moment: datetime, now: datetime | None = None) -> float:
    """Seconds from `moment` to now (never negative: clocks of two hosts may disagree a little)."""
    if moment.tzinfo is None:  # SQLite gives naive datetimes back; lockflow stores UTC
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())


def option_label(gate: str, option: str) -> str:
    """The option as a label: gates' options are a closed set in the pipeline definition."""
    known = {
        g.value: tuple(o.name for o in (*d.options, *(STREAM_GATES[g].options if g in STREAM_GATES else ())))
        for g, d in GATE_DEFINITIONS.items()
    }
    return bounded(option, known.get(gate, ()))


class DatabaseCollector(Collector):
    """Runs active by state and gates pending (count, oldest age), read from the database at scrape time,
    so a run whose worker crashed or that is stuck still counts."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db, self.clock = db, clock

    def describe(self) -> list[Any]:
        """No description up front: registering must not query the database."""
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """The gauges, from two grouped queries."""
        active = GaugeMetricFamily("lockflow_runs_active", "Runs not yet ended, by state", labels=["state"])
        pending = GaugeMetricFamily(
            "lockflow_gates_pending", "Decisions waiting for a person", labels=["gate"]
        )
        oldest = GaugeMetricFamily(
            "lockflow_gate_oldest_pending_age_seconds",
            "Age of the oldest decision waiting, by gate",
            labels=["gate"],
        )
        try:
            runs, gates = self._read()
        except Exception as exc:  # the database away: the scrape still answers, without these gauges
            log.warning("database_metrics_not_read", error=repr(exc))
            return []
        for state in RUN_STATES:
            active.add_metric([state], runs.get(state, 0))
        now = self.clock()
        for gate in GATES:
            count, since = gates.get(gate, (0, None))
            pending.add_metric([gate], count)
            oldest.add_metric([gate], seconds_since(since, now) if since is not None else 0.0)
        return [active, pending, oldest]

    def _read(self) -> tuple[dict[str, int], dict[str, tuple[int, datetime | None]]]:
        with self.db.transaction() as session:
            runs: dict[str, int] = {}
            for status, count in session.execute(
                select(RunRow.status, func.count())
                .where(RunRow.status.not_in(RUN_OUTCOMES))
                .group_by(RunRow.status)
            ):
                key = bounded(status, RUN_STATES)
                runs[key] = runs.get(key, 0) + int(count)
            gates: dict[str, tuple[int, datetime | None]] = {
                str(gate): (int(count), since)
                for gate, count, since in session.execute(
                    select(DecisionRequestRow.gate, func.count(), func.min(DecisionRequestRow.created_at))
                    .where(DecisionRequestRow.status == "open")
                    .group_by(DecisionRequestRow.gate)
                )
            }
        return runs, gates


_DATABASE_COLLECTOR: list[DatabaseCollector] = []


def watch_database(db: Database) -> None:
    """Report runs active and gates pending from this database (the orchestrator's; the last one wins,
    so a process that starts several orchestrators, as tests do, registers the collector once)."""
    if _DATABASE_COLLECTOR:
        _DATABASE_COLLECTOR[0].db = db
        return
    collector = DatabaseCollector(db)
    REGISTRY.register(collector)
    _DATABASE_COLLECTOR.append(collector)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


Checks = Callable[[], dict[str, str]]


def health_app(checks: Checks) -> Callable[..., Iterable[bytes]]:
    """A WSGI app: /metrics (this registry), /healthz (alive), /readyz (the checks; 503 naming the failed)."""
    import json

    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        body: dict[str, object]
        if path == "/healthz":
            body, status = {"status": "ok"}, "200 OK"
        elif path == "/readyz":
            results = checks()
            failed = sorted(name for name, result in results.items() if result != "ok")
            body = {"status": "ok" if not failed else "unavailable", "checks": results, "failed": failed}
            status = "200 OK" if not failed else "503 Service Unavailable"
        else:
            body, status = {"detail": "not found"}, "404 Not Found"
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return app


def serve_metrics(port: int, checks: Checks, *, host: str = "0.0.0.0") -> WSGIServer:
    """Serve /metrics, /healthz and /readyz on the port in a daemon thread; shut it down at exit."""
    server = make_server(
        host, port, health_app(checks), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="lockflow-metrics", daemon=True).start()
    return server


def now_seconds() -> float:
    """Unix time now (for the _timestamp_seconds gauges)."""
    return time.time()
