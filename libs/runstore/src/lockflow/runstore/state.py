"""Typed view of a run's latest results, kept as JSON in runs.state."""

from datetime import date
from typing import Any

from pydantic import Field

from lockflow.common.models import (
    ActionItem,
    AnalyticsParams,
    AnalyticsResult,
    AppliedResolution,
    ColumnSchema,
    DatasetRef,
    Finding,
    Goal,
    Insight,
    InsightParams,
    Model,
    PlannedAction,
    ReportRef,
    SchemaChange,
    SourceHealth,
    SourceSpec,
)
from lockflow.common.pipeline import DecisionContext
from lockflow.common.streams import StreamPolicy, StreamSpec, UnapprovedMode


class StreamState(Model):
    """A stream run's contract, spec and policy in force, and what its gate 2 rules read."""

    contract: dict[str, Any] | None = None  # inferred from gate 1's latest sample
    event_time_field: str | None = None
    key_field: str | None = None
    spec: StreamSpec | None = None  # set when gate 1 approved the contract (what StartStream carried)
    unapproved_mode: UnapprovedMode | None = None
    policy: StreamPolicy | None = None  # the version in force
    gate_kinds: list[str] = Field(default_factory=list)  # the finding kinds the open gate 2 asks about
    acknowledged: list[str] = Field(default_factory=list)  # reopen reasons a person already decided on
    asked: list[str] = Field(default_factory=list)  # the reasons the open gate 2 asks about
    windows: int = 0
    recent_scores: list[float] = Field(default_factory=list)  # the last windows' scores, newest last


class RunState(Model):
    """Everything later steps need from earlier ones."""

    source: SourceSpec
    goal: Goal
    dataset_ingested: DatasetRef | None = None
    dataset_current: DatasetRef | None = None
    sample: list[dict[str, Any]] = Field(default_factory=list)
    bytes_read: int = 0
    source_config: dict[str, Any] = Field(default_factory=dict)
    source_health: SourceHealth | None = None
    source_drift: list[SchemaChange] | None = None
    schema_cached: bool = False
    findings: list[Finding] = Field(default_factory=list)
    quality_rules: dict[str, Any] | None = None
    quality_dimensions: dict[str, float] = Field(default_factory=dict)
    quality_dimensions_after: dict[str, float] = Field(default_factory=dict)  # after gate 2's fixes
    # Quality's histograms of the numeric columns as assessed (column -> edges, counts): gate 2's charts.
    quality_histograms: dict[str, dict[str, Any]] = Field(default_factory=dict)
    findings_after: list[Finding] | None = None
    applied: list[AppliedResolution] = Field(default_factory=list)
    score_before: float | None = None
    score_after: float | None = None
    judged_as_of: date | None = None  # the date quality judged the data against (staleness)
    analytics_params: AnalyticsParams = Field(default_factory=AnalyticsParams)
    analytics: AnalyticsResult | None = None
    analytics_cached: bool = False
    analytics_parts_cached: list[str] = Field(default_factory=list)
    insight_params: InsightParams | None = None
    insights: list[Insight] = Field(default_factory=list)
    previous_insights: list[Insight] | None = None
    actions: list[ActionItem] = Field(default_factory=list)
    plan: list[PlannedAction] = Field(default_factory=list)
    report: ReportRef | None = None
    stream: StreamState | None = None  # a stream run's (source kind "stream")

    def unresolved_findings(self) -> list[Finding]:
        """Findings still present after any applied resolutions."""
        return self.findings_after if self.findings_after is not None else self.findings

    def approved_schema(self) -> list[ColumnSchema] | None:
        """The schema approved at gate 1, with any column types the user declared there."""
        if self.dataset_ingested is None:
            return None
        declared = self.source.options.column_types
        return [
            c.model_copy(update={"dtype": declared.get(c.name, c.dtype)})
            for c in self.dataset_ingested.columns
        ]

    def decision_context(self) -> DecisionContext:
        """What a decision's parameters are checked against."""
        columns = self.dataset_current.columns if self.dataset_current else []
        return DecisionContext(
            columns=frozenset(c.name for c in columns),
            numeric_columns=frozenset(c.name for c in columns if c.dtype in ("integer", "float")),
            finding_strategies={f.id: frozenset(r.strategy for r in f.resolutions) for f in self.findings},
            finding_columns={f.id: tuple(f.columns) for f in self.findings},
            finding_params={
                f.id: {r.strategy: frozenset(r.params) for r in f.resolutions} for f in self.findings
            },
            finding_defaults={
                f.id: {r.strategy: dict(r.params) for r in f.resolutions} for f in self.findings
            },
            action_ids=frozenset(a.id for a in self.actions),
            datetime_columns=frozenset(c.name for c in columns if c.dtype == "datetime"),
            # Known once stage 4 has described the data: a constant column cannot be a target.
            constant_columns=frozenset(
                c.name for c in (self.analytics.columns if self.analytics else []) if c.distinct < 2
            ),
            **self._stream_context(),
        )

    def _stream_context(self) -> dict[str, Any]:
        if self.source.kind != "stream":
            return {}
        stream = self.stream or StreamState()
        contract = (stream.spec.contract if stream.spec else stream.contract) or {}
        return {
            "stream": True,
            "event_time_field": stream.event_time_field,
            "key_field": stream.key_field,
            "stream_fields": frozenset(contract.get("properties") or {}),
            "stream_kinds": frozenset(stream.gate_kinds),
            "has_policy": stream.policy is not None,
        }

    def effective_insight_params(self) -> InsightParams:
        """The insight parameters in force: the user's refinement, or the run's goal."""
        return self.insight_params or InsightParams(goal=self.goal)
