"""The orchestrator's service functions: start runs, apply stage results and decisions.

Each function is one transaction: the state change, the timeline entry, the processed-event
marker and the outgoing events (outbox) commit together, so a crash at any point is repaired
by redelivery (at-least-once in, effectively-once out).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockflow.common import metrics
from lockflow.common.columns import choose_target, facts_from_rows
from lockflow.common.contracts import save_contract
from lockflow.common.db import (
    Database,
    DecisionRequestRow,
    DecisionRow,
    OutboxRow,
    ProcessedEventRow,
    RunRow,
    SourceRow,
    StageAttemptRow,
    utcnow,
)
from lockflow.common.errors import NotFound
from lockflow.common.events import (
    ActionsRecommended,
    AnalyticsCompleted,
    ApplyResolutions,
    ApplyResolutionsPayload,
    ApplyStreamPolicy,
    ApplyStreamPolicyPayload,
    AssessQuality,
    AssessQualityPayload,
    Command,
    CompileReport,
    CompileReportPayload,
    DecisionMade,
    DecisionRequested,
    DecisionRequestedPayload,
    Event,
    GateOptionSpec,
    GenerateInsights,
    GenerateInsightsPayload,
    IngestSource,
    IngestSourcePayload,
    InsightsGenerated,
    QualityAssessed,
    RecommendActions,
    RecommendActionsPayload,
    ReportCompiled,
    ResolutionsApplied,
    RetryRequested,
    RunAborted,
    RunAnalytics,
    RunAnalyticsPayload,
    RunCompleted,
    RunCompletedPayload,
    RunEndedPayload,
    RunFailed,
    SourceIngested,
    StageFailed,
    StartStream,
    StartStreamPayload,
    StopStream,
    StopStreamPayload,
    WindowAssessed,
    parse_event,
)
from lockflow.common.ids import new_id
from lockflow.common.logging import get_logger
from lockflow.common.models import (
    ActionSelection,
    AnalyticsParams,
    ColumnSchema,
    DecisionRecord,
    Goal,
    PlannedAction,
    ResolutionChoice,
)
from lockflow.common.outbox import add_to_outbox
from lockflow.common.pipeline import (
    STREAMING,
    AbortRun,
    ApplyPolicy,
    CompleteRun,
    Effect,
    Gate,
    InsightRefinement,
    KeepStreaming,
    OpenGate,
    QualityChoices,
    RequestStep,
    SourceReconfiguration,
    StartStreaming,
    Step,
    StopStreaming,
    StreamApproval,
    StreamPolicyChoice,
    gate_definitions,
    next_after_step,
    option_specs,
)
from lockflow.common.streams import StreamPolicy, StreamSpec
from lockflow.orchestrator.gate_context import gate_context
from lockflow.orchestrator.liveness import AttemptClock, LivenessPolicy, Overdue, overdue_attempts
from lockflow.orchestrator.stream_rules import (
    RECENT_WINDOWS,
    Reopen,
    gate_two_context,
    reopen_reasons,
    still_acknowledged,
    to_ask,
)
from lockflow.runstore.intake import record_timeline
from lockflow.runstore.state import RunState, StreamState
from lockflow.runstore.streams import add_policy, next_policy_version, recent_windows, record_window

PRODUCER = "orchestrator"
CONSUMER = "orchestrator"
log = get_logger(__name__)

RESULT_STEP: dict[str, Step] = {
    "SourceIngested": Step.INGEST,
    "QualityAssessed": Step.ASSESS_QUALITY,
    "ResolutionsApplied": Step.APPLY_RESOLUTIONS,
    "AnalyticsCompleted": Step.ANALYSE,
    "InsightsGenerated": Step.GENERATE_INSIGHTS,
    "ActionsRecommended": Step.RECOMMEND,
    "ReportCompiled": Step.REPORT,
}


# ---- noticing attempts whose worker died (called by the relay loop) ------------------------------


def sweep_attempts(db: Database, policy: LivenessPolicy, *, now: datetime | None = None) -> list[Overdue]:
    """Send again, or fail the run of, every pending attempt that is overdue; returns what was done.

    Each decision is applied in its own transaction and only if the attempt is still pending then,
    so two orchestrators sweeping at once act once, and a result arriving meanwhile wins.
    """
    at = now or utcnow()
    with db.transaction() as session:
        rows = session.execute(
            select(StageAttemptRow)
            .join(RunRow, RunRow.id == StageAttemptRow.run_id)
            .where(StageAttemptRow.status == "requested", RunRow.status == "running")
        ).scalars()
        clocks = [
            AttemptClock(r.id, r.run_id, r.step, r.requested_at, r.heartbeat_at, r.deadline_at, r.dispatches)
            for r in rows
        ]
    done = []
    for decision in overdue_attempts(clocks, at, policy):
        if _settle_overdue(db, decision, at):
            done.append(decision)
    return done


def _settle_overdue(db: Database, decision: Overdue, at: datetime) -> bool:
    with db.transaction() as session:
        run = session.get(RunRow, decision.run_id, with_for_update=True)
        attempt = session.get(StageAttemptRow, decision.attempt_id)
        if run is None or attempt is None or run.status != "running" or attempt.status != "requested":
            return False
        outbox = session.scalars(
            select(OutboxRow).where(OutboxRow.event_id == attempt.command_event_id)
        ).first()
        command = parse_event(outbox.event_json) if outbox is not None else None
        stage = command.stage if command is not None and command.stage else decision.step
        log.warning(
            "attempt_overdue", run_id=run.id, step=attempt.step, action=decision.action, why=decision.reason
        )
        attempt.finished_at, attempt.error = at, f"{stage}: {decision.reason}"
        if decision.action == "redispatch" and isinstance(command, Command):
            attempt.status = "abandoned"
            _redispatch(session, attempt, command)
            return True
        attempt.status = "failed"
        run.status, run.open_gate = "failed", None
        run.error = f"{stage}: {decision.reason}; `lockflow resume {run.id}` retries the step"
        ended = RunEndedPayload(reason=run.error)
        if command is not None:
            _emit(session, command.follow(RunFailed, ended, producer=PRODUCER))
        else:
            _emit(session, RunFailed(run_id=run.id, producer=PRODUCER, correlation_id=run.id, payload=ended))
        return True


def _redispatch(session: Session, attempt: StageAttemptRow, command: Command) -> None:
    """The same command again (same inputs) under a new attempt; the old attempt's result is ignored."""
    attempt_id = new_id()
    again = command.model_copy(
        update={
            "event_id": new_id(),
            "occurred_at": utcnow(),
            "payload": command.payload.model_copy(update={"attempt_id": attempt_id}),
        }
    )
    session.add(
        StageAttemptRow(
            id=attempt_id,
            run_id=attempt.run_id,
            step=attempt.step,
            status="requested",
            command_event_id=again.event_id,
            dispatches=attempt.dispatches + 1,
        )
    )
    _emit(session, again)


# ---- consuming events ---------------------------------------------------------------------------


def handle_event(db: Database, event: Event) -> None:
    """Apply one event from the events topic to its run, exactly once."""
    with db.transaction() as session:
        if session.get(ProcessedEventRow, (CONSUMER, event.event_id)) is not None:
            return
        session.add(ProcessedEventRow(consumer=CONSUMER, event_id=event.event_id))
        run = session.get(RunRow, event.run_id, with_for_update=True)
        if run is None:
            log.warning("event_for_unknown_run", run_id=event.run_id, event_type=event.type)
            return
        if run.status in ("completed", "failed", "aborted"):
            return
        if event.type == "RunRequested":
            _on_run_requested(session, run, event)
        elif event.type in RESULT_STEP:
            _on_step_result(session, run, event)
        elif isinstance(event, StageFailed):
            _on_stage_failed(session, run, event)
        elif isinstance(event, DecisionMade):
            _on_decision_made(session, run, event)
        elif isinstance(event, RetryRequested):
            _on_retry_requested(session, run, event)
        elif isinstance(event, WindowAssessed):
            _on_window(session, run, event)


def _on_run_requested(session: Session, run: RunRow, event: Event) -> None:
    if run.current_step is not None:
        return
    state = RunState.model_validate(run.state)
    _apply_effect(session, run, state, RequestStep(Step.INGEST), cause=event)


def _on_step_result(session: Session, run: RunRow, event: Event) -> None:
    step = RESULT_STEP[event.type]
    payload = event.payload
    attempt = session.get(StageAttemptRow, payload.attempt_id)  # type: ignore[attr-defined]
    if (
        attempt is None
        or attempt.run_id != run.id
        or attempt.status != "requested"
        or run.current_step != step
    ):
        log.info("stale_result_ignored", run_id=run.id, event_type=event.type)
        return
    attempt.status = "succeeded"
    attempt.finished_at = utcnow()
    attempt.result = payload.model_dump(mode="json")
    state = RunState.model_validate(run.state)
    _store_result(state, event)
    record_timeline(session, event)
    _apply_effect(session, run, state, next_after_step(step), cause=event)


def _store_result(state: RunState, event: Event) -> None:
    if isinstance(event, SourceIngested):
        p = event.payload
        if state.goal.target is None:
            state.goal = _goal_with_a_target(state.goal, p.dataset.columns, p.sample)
        state.dataset_ingested = state.dataset_current = p.dataset
        state.sample, state.bytes_read = p.sample, p.bytes_read
        state.source_config, state.source_health = p.config, p.health
        state.source_drift, state.schema_cached = p.drift, p.schema_cached
        if state.source.kind == "stream":
            stream = state.stream or StreamState()
            settings = p.config  # the stream source's config as stored (secrets masked)
            stream.contract = p.contract
            stream.event_time_field = settings.get("event_time_field")
            stream.key_field = settings.get("key_field")
            state.stream = stream
    elif isinstance(event, QualityAssessed):
        state.findings, state.score_before = event.payload.findings, event.payload.score
        state.quality_dimensions, state.quality_dimensions_after = event.payload.dimension_scores, {}
        state.quality_histograms = event.payload.profile.get("histograms") or {}
        state.findings_after, state.applied, state.score_after = None, [], None
        state.dataset_current = event.payload.dataset
        state.judged_as_of = event.payload.as_of
    elif isinstance(event, ResolutionsApplied):
        applied = event.payload
        state.dataset_current, state.applied = applied.dataset, applied.applied
        state.findings_after, state.score_after = applied.findings_after, applied.score_after
        state.quality_dimensions_after = applied.dimensions_after
    elif isinstance(event, AnalyticsCompleted):
        state.analytics, state.analytics_cached = event.payload.result, event.payload.cached
        state.analytics_parts_cached = event.payload.parts_cached
    elif isinstance(event, InsightsGenerated):
        state.previous_insights = state.insights or None
        state.insights, state.insight_params = event.payload.insights, event.payload.params
    elif isinstance(event, ActionsRecommended):
        state.actions = event.payload.items


def _goal_with_a_target(goal: Goal, columns: list[ColumnSchema], sample: list[dict[str, Any]]) -> Goal:
    """A run started without a target (a registered source: nothing is read before the run) gets one
    picked from the ingested schema and sample, with why; it stays without one when none suits."""
    facts = facts_from_rows([(c.name, c.dtype) for c in columns], sample)
    choice = choose_target(facts)
    if choice is None:
        return goal
    note = f"target picked by lockflow after ingest: {choice.target}, {choice.reason}"
    description = f"{goal.description}; {note}" if goal.description else note
    return goal.model_copy(update={"target": choice.target, "description": description[:500]})


def _on_stage_failed(session: Session, run: RunRow, event: StageFailed) -> None:
    attempt = session.get(StageAttemptRow, event.payload.attempt_id)
    if attempt is None or attempt.status != "requested":
        return
    attempt.status, attempt.error, attempt.finished_at = "failed", event.payload.error, utcnow()
    run.status, run.error, run.open_gate = "failed", f"{event.payload.stage}: {event.payload.error}", None
    record_timeline(session, event)
    failed = event.follow(RunFailed, RunEndedPayload(reason=run.error), producer=PRODUCER)
    _emit(session, failed)


def _on_retry_requested(session: Session, run: RunRow, event: RetryRequested) -> None:
    """Request the failed step again, built from the run's state as it was when the step failed."""
    step = event.payload.step
    if run.status != "running" or run.current_step != step or _attempt_pending(session, run.id):
        log.info("stale_retry_ignored", run_id=run.id, step=step)
        return
    state = RunState.model_validate(run.state)
    choices = _quality_choices(session, run.id) if step == Step.APPLY_RESOLUTIONS else []
    _apply_effect(session, run, state, RequestStep(Step(step)), cause=event, choices=choices)


def _attempt_pending(session: Session, run_id: str) -> bool:
    return (
        session.scalars(
            select(StageAttemptRow.id).where(
                StageAttemptRow.run_id == run_id, StageAttemptRow.status == "requested"
            )
        ).first()
        is not None
    )


def _quality_choices(session: Session, run_id: str) -> list[ResolutionChoice]:
    """The resolutions chosen at the latest gate 2 'apply' (what a retried apply step applies)."""
    row = session.scalars(
        select(DecisionRow)
        .where(DecisionRow.run_id == run_id, DecisionRow.gate == Gate.QUALITY_REVIEW.value)
        .order_by(DecisionRow.decided_at.desc())
        .limit(1)
    ).first()
    if row is None or not row.params:
        return []
    return QualityChoices.model_validate(row.params).choices


def _on_decision_made(session: Session, run: RunRow, event: DecisionMade) -> None:
    p = event.payload
    if run.open_gate != p.gate:
        return
    gate = Gate(p.gate)
    option = gate_definitions(stream=state_is_stream(run))[gate].option(p.option)
    params = option.params_model.model_validate(p.params) if option.params_model else None
    state = RunState.model_validate(run.state)
    choices: list[ResolutionChoice] = []
    if isinstance(params, SourceReconfiguration):
        # model_copy keeps the kind and source_id of a registered source.
        state.source = state.source.model_copy(
            update={
                "path": params.path or state.source.path,
                "format": params.format or state.source.format,
                "options": params.options,
            }
        )
    elif isinstance(params, QualityChoices):
        choices = params.choices
    elif isinstance(params, AnalyticsParams):
        state.analytics_params = params
    elif isinstance(params, InsightRefinement):
        current = state.effective_insight_params()
        # Only what the user set changes; the goal stays a Goal model, not a dict.
        changes = {k: getattr(params, k) for k in params.model_dump(exclude_none=True)}
        state.insight_params = current.model_copy(update=changes)
    elif isinstance(params, StreamApproval):
        assert state.stream is not None
        state.stream.spec = _stream_spec(session, run, state, params)
    elif isinstance(params, StreamPolicyChoice):
        assert state.stream is not None
        policy = StreamPolicy(
            stream_id=run.id,
            version=next_policy_version(session, stream_id=run.id),
            rules=params.rules,
            approved_by=p.decided_by,
            approved_at=p.decided_at,
            reopen_violation_rate=params.reopen_violation_rate,
            reopen_score_drop=params.reopen_score_drop,
        )
        add_policy(session, policy=policy, request_id=p.request_id)
        state.stream.policy = policy
    elif isinstance(params, ActionSelection):
        by_id = {a.id: a for a in state.actions}
        state.plan = [
            PlannedAction(rank=i, item=by_id[a], owner=params.owners.get(a), due=params.due.get(a))
            for i, a in enumerate(params.selected, start=1)
        ]
    approved_source = gate is Gate.SOURCE_REVIEW and option.name == "approve"
    if approved_source and state.source.source_id and state.dataset_ingested:
        # The approved schema becomes the source's contract; later runs report drift against it.
        save_contract(
            session,
            source_id=state.source.source_id,
            columns=state.dataset_ingested.columns,
            run_id=run.id,
            approved_by=p.decided_by,
        )
    if state.stream is not None and gate is Gate.QUALITY_REVIEW:
        # Whatever was decided, the reasons this gate was asked about are now a person's decision.
        state.stream.acknowledged = sorted({*state.stream.acknowledged, *state.stream.asked})
        state.stream.asked, state.stream.gate_kinds = [], []
    run.open_gate = None
    effect = option.effect
    if isinstance(effect, AbortRun):
        effect = AbortRun(f"aborted at {gate.value} by {p.decided_by}: {p.rationale}".strip(": "))
    elif isinstance(effect, StopStreaming):
        effect = StopStreaming(f"stream stopped at {gate.value} by {p.decided_by}: {p.rationale}".strip(": "))
    _apply_effect(session, run, state, effect, cause=event, choices=choices)


# ---- effects -----------------------------------------------------------------------------------


def _apply_effect(
    session: Session,
    run: RunRow,
    state: RunState,
    effect: Effect,
    *,
    cause: Event,
    choices: list[ResolutionChoice] | None = None,
) -> None:
    if isinstance(effect, RequestStep):
        attempt_id = new_id()
        command = _build_command(session, run, state, effect.step, attempt_id, cause, choices or [])
        session.add(
            StageAttemptRow(
                id=attempt_id,
                run_id=run.id,
                step=effect.step.value,
                status="requested",
                command_event_id=command.event_id,
            )
        )
        run.status, run.current_step, run.open_gate = "running", effect.step.value, None
        _emit(session, command)
    elif isinstance(effect, OpenGate):
        _open_gate(session, run, state, effect.gate, cause)
    elif isinstance(effect, CompleteRun):
        assert isinstance(cause, ReportCompiled)
        report = cause.payload.report
        state.report = report
        run.status, run.current_step = "completed", None
        _emit(session, cause.follow(RunCompleted, RunCompletedPayload(report=report), producer=PRODUCER))
    elif isinstance(effect, AbortRun):
        run.status, run.error, run.current_step = "aborted", effect.reason, None
        _emit(session, cause.follow(RunAborted, RunEndedPayload(reason=effect.reason), producer=PRODUCER))
    else:
        _apply_stream_effect(session, run, state, effect, cause=cause)
    run.state = state.model_dump(mode="json")
    if state.score_before is not None:  # assessed: the list can tell completed runs with open findings
        run.open_findings = len(state.unresolved_findings())


def _open_gate(
    session: Session,
    run: RunRow,
    state: RunState,
    gate: Gate,
    cause: Event,
    *,
    context: dict[str, Any] | None = None,
) -> None:
    request_id = new_id()
    stream = state.source.kind == "stream"
    options = option_specs(gate, stream=stream)
    context = context if context is not None else gate_context(gate, state)
    title = gate_definitions(stream=stream)[gate].title
    session.add(
        DecisionRequestRow(
            id=request_id,
            run_id=run.id,
            gate=gate.value,
            status="open",
            title=title,
            options=options,
            context=context,
        )
    )
    run.status, run.open_gate = "waiting", gate.value
    payload = DecisionRequestedPayload(
        request_id=request_id,
        gate=gate.value,
        title=title,
        options=[GateOptionSpec(**o) for o in options],
        context=context,
    )
    _emit(session, cause.follow(DecisionRequested, payload, producer=PRODUCER))


# ---- a live stream (a run of kind "stream": its run id is the stream's id) -----------------------


def state_is_stream(run: RunRow) -> bool:
    """True for a stream run."""
    return run.kind == "stream"


def _stream_spec(session: Session, run: RunRow, state: RunState, approval: StreamApproval) -> StreamSpec:
    """What the stream worker needs, from the stream source as stored and the approved contract.

    The SASL and schema registry passwords travel sealed: `security["sealed"]` is the registry's own token
    of the source's secrets (`lockflow.sources.kafka` opens it with the sources' key).
    """
    stream = state.stream
    source = session.get(SourceRow, state.source.source_id) if state.source.source_id else None
    if stream is None or source is None:
        raise RuntimeError(f"stream {run.id}: its registered source is gone")
    config = source.config
    contract = approval.contract if approval.contract is not None else stream.contract
    if contract is None:
        raise RuntimeError(f"stream {run.id}: no contract to approve")
    return StreamSpec(
        stream_id=run.id,
        source_id=source.id,
        bootstrap_servers=config["bootstrap_servers"],
        topic=config["topic"],
        consumer_group=config.get("consumer_group") or f"lockflow.stream.{source.id}",
        # As lockflow.sources.kafka.sealed_security makes it: the public settings and the sealed token.
        security={
            **{k: v for k, v in (config.get("security") or {}).items() if k != "sasl_password"},
            "sealed": source.secrets,
        },
        format=config.get("format") or "json",
        schema_registry_url=config.get("schema_registry_url"),
        schema_registry_username=config.get("schema_registry_username"),
        event_time_field=config["event_time_field"],
        key_field=config.get("key_field"),
        window_seconds=config.get("window_seconds") or 60,
        grace_seconds=config.get("grace_seconds") if config.get("grace_seconds") is not None else 10,
        contract=contract,
        unapproved_mode=approval.unapproved_mode or config.get("unapproved_mode") or "hold",
    )


def _apply_stream_effect(
    session: Session, run: RunRow, state: RunState, effect: Effect, *, cause: Event
) -> None:
    stream = state.stream
    assert stream is not None, f"run {run.id} is not a stream"
    if isinstance(effect, StartStreaming):
        assert stream.spec is not None
        run.status, run.current_step, run.open_gate = "running", STREAMING, None
        _emit(session, cause.follow(StartStream, StartStreamPayload(spec=stream.spec), producer=PRODUCER))
    elif isinstance(effect, ApplyPolicy):
        assert stream.policy is not None
        run.status, run.open_gate = "running", None
        _emit(
            session,
            cause.follow(
                ApplyStreamPolicy, ApplyStreamPolicyPayload(policy=stream.policy), producer=PRODUCER
            ),
        )
    elif isinstance(effect, KeepStreaming):
        run.status, run.open_gate = "running", None
    elif isinstance(effect, StopStreaming):
        run.status, run.error, run.current_step, run.open_gate = "aborted", effect.reason, None, None
        stop = StopStreamPayload(stream_id=run.id, reason=effect.reason)
        _emit(session, cause.follow(StopStream, stop, producer=PRODUCER))
        _emit(session, cause.follow(RunAborted, RunEndedPayload(reason=effect.reason), producer=PRODUCER))


def _on_window(session: Session, run: RunRow, event: WindowAssessed) -> None:
    """Store a closed window; open gate 2 after the first, or again when a window calls for it."""
    state = RunState.model_validate(run.state)
    stream = state.stream
    window = event.payload.window
    if not state_is_stream(run) or stream is None or stream.spec is None:
        log.warning("window_for_a_run_not_streaming", run_id=run.id)
        return
    row = record_window(session, stream_id=run.id, window=window)
    if row is None:
        log.info("window_already_stored", stream_id=run.id, window_start=window.window_start.isoformat())
        return
    stream.windows += 1
    ask: list[Reopen] = []
    if stream.policy is None:
        first = run.open_gate is None and not stream.asked and not _asked_before(session, run.id)
    else:
        found = reopen_reasons(window, stream.policy, stream.recent_scores)
        stream.acknowledged = still_acknowledged(stream.acknowledged, found)
        ask = to_ask(found, stream.acknowledged) if run.open_gate is None else []
        first = False
        if ask:
            row.reopened = [r.reason for r in ask]
            for reason in ask:
                metrics.STREAM_REOPENED.labels(
                    reason=metrics.bounded(reason.key.split(":")[0], metrics.STREAM_REOPEN_REASONS)
                ).inc()
    stream.recent_scores = [*stream.recent_scores, window.quality_score][-RECENT_WINDOWS:]
    if first or ask:
        windows = recent_windows(session, stream_id=run.id)
        context = gate_two_context(windows, policy=stream.policy, contract=stream.spec.contract, reasons=ask)
        stream.gate_kinds = list(context["required_kinds"])
        stream.asked = [r.key for r in ask]
        _open_gate(session, run, state, Gate.QUALITY_REVIEW, event, context=context)
    run.state = state.model_dump(mode="json")


def _asked_before(session: Session, run_id: str) -> bool:
    """Gate 2 of this stream was already asked (and answered without a policy, e.g. never)."""
    return (
        session.scalar(
            select(DecisionRequestRow.id).where(
                DecisionRequestRow.run_id == run_id, DecisionRequestRow.gate == Gate.QUALITY_REVIEW.value
            )
        )
        is not None
    )


def _build_command(
    session: Session,
    run: RunRow,
    state: RunState,
    step: Step,
    attempt_id: str,
    cause: Event,
    choices: list[ResolutionChoice],
) -> Command:
    def need(value: Any, what: str) -> Any:
        if value is None:
            raise RuntimeError(f"run {run.id}: {what} missing before step {step}")
        return value

    if step is Step.INGEST:
        return cause.follow(
            IngestSource, IngestSourcePayload(attempt_id=attempt_id, source=state.source), producer=PRODUCER
        )
    if step is Step.ASSESS_QUALITY:
        return cause.follow(
            AssessQuality,
            AssessQualityPayload(
                attempt_id=attempt_id,
                dataset=need(state.dataset_ingested, "dataset"),
                rules=state.quality_rules,
                approved_schema=state.approved_schema(),
            ),
            producer=PRODUCER,
        )
    if step is Step.APPLY_RESOLUTIONS:
        return cause.follow(
            ApplyResolutions,
            ApplyResolutionsPayload(
                attempt_id=attempt_id,
                dataset=need(state.dataset_current, "dataset"),
                findings=state.findings,
                choices=choices,
                rules=state.quality_rules,
            ),
            producer=PRODUCER,
        )
    if step is Step.ANALYSE:
        return cause.follow(
            RunAnalytics,
            RunAnalyticsPayload(
                attempt_id=attempt_id,
                dataset=need(state.dataset_current, "dataset"),
                params=state.analytics_params,
                goal=state.effective_insight_params().goal,
            ),
            producer=PRODUCER,
        )
    if step is Step.GENERATE_INSIGHTS:
        return cause.follow(
            GenerateInsights,
            GenerateInsightsPayload(
                attempt_id=attempt_id,
                dataset=need(state.dataset_current, "dataset"),
                analytics=need(state.analytics, "analytics"),
                params=state.effective_insight_params(),
            ),
            producer=PRODUCER,
        )
    if step is Step.RECOMMEND:
        return cause.follow(
            RecommendActions,
            RecommendActionsPayload(
                attempt_id=attempt_id,
                goal=state.effective_insight_params().goal,
                unresolved_findings=state.unresolved_findings(),
                insights=state.insights,
            ),
            producer=PRODUCER,
        )
    return cause.follow(
        CompileReport,
        CompileReportPayload(
            attempt_id=attempt_id,
            name=run.name,
            source=state.source,
            goal=state.effective_insight_params().goal,
            dataset_ingested=need(state.dataset_ingested, "dataset"),
            dataset_final=need(state.dataset_current, "dataset"),
            findings=state.findings,
            applied=state.applied,
            score_before=state.score_before or 0.0,
            score_after=state.score_after if state.score_after is not None else state.score_before or 0.0,
            analytics=need(state.analytics, "analytics"),
            insights=state.insights,
            plan=state.plan,
            decisions=decisions_of(session, run.id),
            requested_by=run.requested_by,
            judged_as_of=state.judged_as_of,
            dimensions_before=state.quality_dimensions,
            dimensions_after=state.quality_dimensions_after,
        ),
        producer=PRODUCER,
    )


def decisions_of(session: Session, run_id: str) -> list[DecisionRecord]:
    """The run's decisions in the order they were made."""
    rows = session.scalars(
        select(DecisionRow).where(DecisionRow.run_id == run_id).order_by(DecisionRow.decided_at)
    ).all()
    return [
        DecisionRecord(
            gate=r.gate,
            option=r.option,
            params=r.params,
            decided_by=r.decided_by,
            decided_at=_aware(r.decided_at),
            rationale=r.rationale,
        )
        for r in rows
    ]


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _emit(session: Session, event: Event) -> None:
    add_to_outbox(session, event)
    record_timeline(session, event)


def _run(session: Session, run_id: str) -> RunRow:
    run = session.get(RunRow, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run
