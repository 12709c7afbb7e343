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
        )

    def effective_insight_params(self) -> InsightParams:
        """The insight parameters in force: the user's refinement, or the run's goal."""
        return self.insight_params or InsightParams(goal=self.goal)
