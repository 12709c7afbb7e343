"""One-line summaries of events for the run's timeline and live view."""

from typing import Any

from lockflow.common.events import (
    ActionsRecommended,
    AnalyticsCompleted,
    DecisionMade,
    DecisionRequested,
    Event,
    InsightsGenerated,
    QualityAssessed,
    ResolutionsApplied,
    RetryRequested,
    RunEndedPayload,
    SourceIngested,
    StageFailed,
)


def summarize(event: Event) -> dict[str, Any]:
    """A small JSON summary of an event (never the data itself)."""
    summary: dict[str, Any] = {"type": event.type, "producer": event.producer}
    if event.is_command:
        summary["stage"] = event.stage
    if isinstance(event, SourceIngested):
        summary.update(rows=event.payload.dataset.rows, columns=len(event.payload.dataset.columns))
    elif isinstance(event, QualityAssessed):
        summary.update(findings=len(event.payload.findings), score=event.payload.score)
    elif isinstance(event, ResolutionsApplied):
        summary.update(applied=len(event.payload.applied), score_after=event.payload.score_after)
    elif isinstance(event, AnalyticsCompleted):
        summary.update(rows_used=event.payload.result.rows_used, cached=event.payload.cached)
    elif isinstance(event, InsightsGenerated):
        summary.update(insights=len(event.payload.insights))
    elif isinstance(event, ActionsRecommended):
        summary.update(items=len(event.payload.items))
    elif isinstance(event, DecisionRequested):
        summary.update(gate=event.payload.gate, request_id=event.payload.request_id)
    elif isinstance(event, DecisionMade):
        summary.update(
            gate=event.payload.gate, option=event.payload.option, decided_by=event.payload.decided_by
        )
    elif isinstance(event, RetryRequested):
        summary.update(step=event.payload.step, requested_by=event.payload.requested_by)
    elif isinstance(event, StageFailed):
        summary.update(stage=event.payload.stage, error=event.payload.error)
    elif isinstance(event.payload, RunEndedPayload):
        summary.update(reason=event.payload.reason)
    return summary
