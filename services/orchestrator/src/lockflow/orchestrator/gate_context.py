"""What a person sees at each gate: the results the decision is about."""

from typing import Any

from lockflow.common.kinds import category_label, strategy_facts
from lockflow.common.models import Finding
from lockflow.common.pipeline import Gate
from lockflow.runstore.state import RunState

SAMPLE_ROWS_SHOWN = 10


def gate_context(gate: Gate, state: RunState) -> dict[str, Any]:
    """The decision request's context for a gate, as JSON-safe values."""
    if gate is Gate.SOURCE_REVIEW:
        dataset = state.dataset_ingested
        return {
            "source": state.source.model_dump(mode="json"),
            "rows": dataset.rows if dataset else 0,
            "bytes_read": state.bytes_read,
            "schema": [c.model_dump(mode="json") for c in dataset.columns] if dataset else [],
            "sample": state.sample[:SAMPLE_ROWS_SHOWN],
            "fingerprint": dataset.fingerprint if dataset else None,
            "config": state.source_config,
            "health": state.source_health.model_dump(mode="json") if state.source_health else None,
            "drift": [d.model_dump(mode="json") for d in state.source_drift]
            if state.source_drift is not None
            else None,
            "schema_cached": state.schema_cached,
            # A stream: the JSON Schema inferred from the sample, which 'approve' takes as it is or edited.
            **(
                {"stream": True, "contract": state.stream.contract, "sample_malformed": _malformed(state)}
                if state.stream is not None
                else {}
            ),
        }
    if gate is Gate.QUALITY_REVIEW:
        return {
            "score": state.score_before,
            "as_of": state.judged_as_of.isoformat() if state.judged_as_of else None,
            "dimensions": state.quality_dimensions,
            "rows": state.dataset_current.rows if state.dataset_current else 0,
            "findings": [quality_finding(f) for f in state.findings],
        }
    if gate is Gate.ANALYTICS_REVIEW:
        return {
            "analytics": state.analytics.model_dump(mode="json") if state.analytics else None,
            "cached": state.analytics_cached,
            "parts_cached": state.analytics_parts_cached,
            "quality_applied": [a.model_dump(mode="json") for a in state.applied],
        }
    if gate is Gate.INSIGHT_REVIEW:
        return {
            "params": state.effective_insight_params().model_dump(mode="json"),
            "insights": [i.model_dump(mode="json") for i in state.insights],
            "comparison": _compare_insights(state),
            "previous_insights": (
                [i.model_dump(mode="json") for i in state.previous_insights]
                if state.previous_insights
                else None
            ),
        }
    return {"items": [a.model_dump(mode="json") for a in state.actions]}


def _malformed(state: RunState) -> int:
    contract = (state.stream.contract if state.stream else None) or {}
    return int((contract.get("x-lockflow") or {}).get("malformed_in_sample", 0))


def quality_finding(finding: Finding) -> dict[str, Any]:
    """A finding as gate 2 shows it: its category's label, and each fix with what it does and its risk."""
    shown = finding.model_dump(mode="json")
    shown["label"] = category_label(finding.category)
    for resolution in shown["resolutions"]:
        facts = strategy_facts(resolution["strategy"])
        resolution.update(description=facts.description, risk=facts.risk, changes=facts.changes)
    return shown


def _compare_insights(state: RunState) -> dict[str, Any] | None:
    if state.previous_insights is None:
        return None
    before = [i.id for i in state.previous_insights]
    after = [i.id for i in state.insights]
    return {
        "added": [i for i in after if i not in before],
        "dropped": [i for i in before if i not in after],
        "reranked": [i for i in after if i in before and before.index(i) != after.index(i)],
        # 1-based ranks before -> after, so a person sees how far each insight moved.
        "moves": {i: [before.index(i) + 1, after.index(i) + 1] for i in after if i in before},
    }
