"""What people ask of a run, written to the run store: start a run, decide a gate, retry a failed step.

The gateway (and the CLI) record these; the orchestrator reacts to the events they publish. Each
function is one transaction: the row change, the timeline entry and the outgoing event (outbox)
commit together, so DecisionMade is published exactly once per accepted decision, after it commits.
"""

from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lockflow.common.db import (
    Database,
    DecisionRequestRow,
    DecisionRow,
    RunEventRow,
    RunRow,
    StageAttemptRow,
    utcnow,
)
from lockflow.common.errors import Conflict, NotFound
from lockflow.common.events import (
    DecisionMade,
    DecisionMadePayload,
    Event,
    RetryRequested,
    RetryRequestedPayload,
    RunRequested,
    RunRequestedPayload,
)
from lockflow.common.ids import new_id
from lockflow.common.models import DecisionRecord, Goal, SourceSpec
from lockflow.common.outbox import add_to_outbox
from lockflow.common.pipeline import Gate, GateClosed, decide
from lockflow.common.telemetry import context_from_traceparent, current_traceparent, tracer
from lockflow.runstore.state import RunState
from lockflow.runstore.timeline import summarize


def record_timeline(session: Session, event: Event) -> None:
    """Add the event to its run's timeline (the live view and `GET /runs/{id}/timeline` read it)."""
    session.add(
        RunEventRow(
            run_id=event.run_id,
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            summary=summarize(event),
        )
    )


def find_run(session: Session, run_id: str) -> RunRow:
    """The run's row; NotFound if there is none."""
    run = session.get(RunRow, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


# ---- starting a run ---------------------------------------------------------------------------


def request_run(
    db: Database,
    *,
    name: str,
    source: SourceSpec,
    goal: Goal,
    requested_by: str,
    quality_rules: dict[str, Any] | None = None,
    stream_id: str | None = None,
) -> str:
    """Create a run and publish RunRequested; the run's root span makes it one trace.

    A stream source makes a stream run (kind "stream"); `stream_id` links a snapshot run to its stream.
    """
    run_id = new_id()
    with tracer().start_as_current_span("lockflow.run", context=otel_context.Context()) as span:
        span.set_attribute("lockflow.run_id", run_id)
        traceparent = current_traceparent()
        state = RunState(source=source, goal=goal, quality_rules=quality_rules)
        with db.transaction() as session:
            session.add(
                RunRow(
                    id=run_id,
                    name=name,
                    status="running",
                    current_step=None,
                    open_gate=None,
                    requested_by=requested_by,
                    traceparent=traceparent,
                    state=state.model_dump(mode="json"),
                    kind="stream" if source.kind == "stream" else "batch",
                    stream_id=stream_id,
                )
            )
            event = RunRequested(
                run_id=run_id,
                producer="gateway",
                correlation_id=run_id,
                payload=RunRequestedPayload(
                    name=name,
                    source=source,
                    goal=goal,
                    requested_by=requested_by,
                    quality_rules=quality_rules,
                ),
            )
            add_to_outbox(session, event, traceparent=traceparent)
            record_timeline(session, event)
    return run_id


# ---- decisions (called by the gateway and the CLI) ----------------------------------------------


def record_decision(
    db: Database,
    *,
    request_id: str,
    option: str,
    params: dict[str, Any] | None,
    rationale: str,
    decided_by: str,
    submitted_gate: str | None = None,
) -> DecisionRecord:
    """Accept a decision exactly once (GateClosed on the second), check it, and publish DecisionMade."""
    with db.transaction() as session:
        request = session.get(DecisionRequestRow, request_id)
        if request is None:
            raise NotFound(f"no decision request {request_id}")
        run = find_run(session, request.run_id)
        state = RunState.model_validate(run.state)
        accepted = decide(
            open_gate=Gate(run.open_gate) if run.open_gate else None,
            request_gate=Gate(request.gate),
            request_open=request.status == "open",
            submitted_gate=submitted_gate,
            option=option,
            params=params,
            context=state.decision_context(),
        )
        decided_at = utcnow()
        closed = session.execute(
            update(DecisionRequestRow)
            .where(DecisionRequestRow.id == request_id, DecisionRequestRow.status == "open")
            .values(status="decided", decided_at=decided_at)
        )
        if closed.rowcount != 1:  # type: ignore[attr-defined]
            raise GateClosed(f"gate {request.gate} is closed: it was already decided")
        params_json = accepted.params.model_dump(mode="json") if accepted.params else {}
        session.add(
            DecisionRow(
                id=new_id(),
                request_id=request_id,
                run_id=run.id,
                gate=request.gate,
                option=accepted.option,
                params=params_json,
                decided_by=decided_by,
                rationale=rationale,
                decided_at=decided_at,
            )
        )
        event = DecisionMade(
            run_id=run.id,
            producer="gateway",
            correlation_id=run.id,
            payload=DecisionMadePayload(
                request_id=request_id,
                gate=request.gate,
                option=accepted.option,
                params=params_json,
                decided_by=decided_by,
                rationale=rationale,
                decided_at=decided_at,
            ),
        )
        publish_in_run_trace(session, run, f"decide {request.gate}", event)
    return DecisionRecord(
        gate=request.gate,
        option=accepted.option,
        params=params_json,
        decided_by=decided_by,
        decided_at=decided_at,
        rationale=rationale,
    )


def publish_in_run_trace(session: Session, run: RunRow, span_name: str, event: Event) -> None:
    """Write a person's event to the outbox and the timeline in a span of the run's stored trace.

    Decisions and retries are separate requests, maybe days after the run started: continuing the
    stored context keeps one run one trace across them.
    """
    token = otel_context.attach(context_from_traceparent(run.traceparent))
    try:
        with tracer().start_as_current_span(span_name) as span:
            span.set_attribute("lockflow.run_id", run.id)
            add_to_outbox(session, event)
            record_timeline(session, event)
    finally:
        otel_context.detach(token)


# ---- retrying a failed step (called by the gateway and the CLI) ---------------------------------


def retry_run(db: Database, *, run_id: str, requested_by: str) -> str:
    """Ask for a failed run's failed step again with the same inputs; return the retry's event id.

    Conflict unless the run failed at a step; the decisions made so far stay as they are. The
    request travels as RetryRequested through the outbox; the orchestrator then re-requests the step.
    """
    with db.transaction() as session:
        run = session.get(RunRow, run_id, with_for_update=True)
        if run is None:
            raise NotFound(f"no run {run_id}")
        if run.status != "failed" or run.current_step is None:
            raise Conflict(
                f"run {run_id} is {run.status}"
                + (f" at {run.current_step}" if run.current_step else "")
                + "; only a run that failed at a step can be retried"
            )
        failed = session.scalars(
            select(StageAttemptRow)
            .where(StageAttemptRow.run_id == run_id, StageAttemptRow.step == run.current_step)
            .order_by(StageAttemptRow.requested_at.desc())
            .limit(1)
        ).first()
        error = run.error or ""
        claimed = session.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == "failed")
            .values(status="running", error=None)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"run {run_id} is already being retried")
        event = RetryRequested(
            run_id=run_id,
            producer="gateway",
            correlation_id=run_id,
            payload=RetryRequestedPayload(
                step=run.current_step,
                failed_attempt_id=failed.id if failed else "",
                error=error,
                requested_by=requested_by,
            ),
        )
        publish_in_run_trace(session, run, f"retry {run.current_step}", event)
    return event.event_id
