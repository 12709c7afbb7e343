"""The orchestrator's metrics: what each fact says about runs and gates, and the consumer groups' lag.

Counted from the facts the orchestrator consumes (every run's facts pass through it); durations that
need the start (a run's, a gate's wait) read it from the database. A redelivered fact is counted
again: counters are for rates, and redeliveries are rare.
"""

import asyncio
from datetime import datetime

from sqlalchemy import select

from lockflow.common import metrics
from lockflow.common.bus.kafka import measure_lag
from lockflow.common.db import Database, DecisionRequestRow, RunRow
from lockflow.common.events import (
    DecisionMade,
    DecisionRequested,
    Event,
    QualityAssessed,
    RunAborted,
    RunCompleted,
    RunFailed,
    RunRequested,
    WindowAssessed,
)
from lockflow.common.logging import get_logger
from lockflow.common.pipeline import STAGES
from lockflow.common.streams import STREAM_FINDING_KINDS

log = get_logger(__name__)
ENDED = {RunCompleted: "completed", RunFailed: "failed", RunAborted: "aborted"}
LAG_INTERVAL_SECONDS = 15.0


def observe(db: Database, event: Event) -> None:
    """Count one fact: a run started or ended, a gate asked or decided, a quality score."""
    outcome = ENDED.get(type(event))
    if isinstance(event, RunRequested):
        metrics.RUNS_STARTED.inc()
    elif outcome is not None:
        metrics.RUNS_COMPLETED.labels(outcome=outcome).inc()
        started = _created_at(db, RunRow, event.run_id)
        if started is not None:
            metrics.RUN_DURATION.labels(outcome=outcome).observe(
                metrics.seconds_since(started, event.occurred_at)
            )
    elif isinstance(event, DecisionRequested):
        metrics.GATES_REQUESTED.labels(gate=metrics.bounded(event.payload.gate, metrics.GATES)).inc()
    elif isinstance(event, DecisionMade):
        gate = metrics.bounded(event.payload.gate, metrics.GATES)
        metrics.GATES_DECIDED.labels(gate=gate, option=metrics.option_label(gate, event.payload.option)).inc()
        asked = _created_at(db, DecisionRequestRow, event.payload.request_id)
        if asked is not None:
            metrics.GATE_WAIT.labels(gate=gate).observe(
                metrics.seconds_since(asked, event.payload.decided_at)
            )
    elif isinstance(event, QualityAssessed):
        metrics.QUALITY_SCORE.observe(event.payload.score / 100)  # a ratio, as its name says
    elif isinstance(event, WindowAssessed):
        observe_window(event)


def observe_window(event: WindowAssessed) -> None:
    """Count a closed stream window: its records by outcome, its findings by kind, score and lag."""
    window = event.payload.window
    metrics.STREAM_WINDOWS.labels(mode=metrics.bounded(window.mode, metrics.STREAM_MODES)).inc()
    metrics.STREAM_WINDOW_RECORDS.inc(window.records)
    for outcome in metrics.STREAM_OUTCOMES:
        count = getattr(window, outcome)
        if count:
            metrics.STREAM_RECORDS.labels(outcome=outcome).inc(count)
    for kind, count in window.findings.items():
        metrics.STREAM_FINDINGS.labels(kind=metrics.bounded(kind, STREAM_FINDING_KINDS)).inc(count)
    metrics.STREAM_QUALITY.observe(window.quality_score / 100)
    if window.freshness_p99_seconds is not None:
        metrics.STREAM_FRESHNESS.observe(window.freshness_p99_seconds)


def _created_at(db: Database, row: type[RunRow] | type[DecisionRequestRow], key: str) -> datetime | None:
    with db.transaction() as session:
        found: datetime | None = session.scalar(select(row.created_at).where(row.id == key))
    return found


def consumer_groups(prefix: str) -> list[str]:
    """The consumer groups whose lag matters: the orchestrator's and each stage's."""
    return [f"{prefix}-orchestrator", *[f"{prefix}-{stage}" for stage in STAGES]]


async def lag_loop(bootstrap: str, prefix: str, *, interval: float = LAG_INTERVAL_SECONDS) -> None:
    """Refresh lockflow_kafka_consumer_lag_messages every interval (outlives a broker hiccup)."""
    while True:
        try:
            for (group, topic), behind in (await measure_lag(bootstrap, consumer_groups(prefix))).items():
                metrics.CONSUMER_LAG.labels(group=group, topic=topic).set(behind)
        except Exception as exc:
            log.warning("consumer_lag_not_measured", error=repr(exc))
        await asyncio.sleep(interval)
