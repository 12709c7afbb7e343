"""Every chart of a run from the evidence its stages stored, in one order for the API and the reports."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lockflow.charts import analytics, insights, quality
from lockflow.charts.model import Chart
from lockflow.common.models import AnalyticsResult, DatasetRef, Finding, Insight

SEGMENT_CHARTS = 3  # the strongest groupings; the rest stay in the tables


@dataclass
class Evidence:
    """What the stages stored for a run (any part may be missing while the run is under way)."""

    dataset: DatasetRef | None = None  # the data quality judged (missing values by column)
    findings: list[Finding] = field(default_factory=list)
    dimensions_before: dict[str, float] = field(default_factory=dict)
    dimensions_after: dict[str, float] = field(default_factory=dict)
    score_before: float | None = None
    score_after: float | None = None
    analytics: AnalyticsResult | None = None
    insights: list[Insight] = field(default_factory=list)
    # Quality's histograms of the data as assessed (column -> edges, counts, exact): the histograms
    # until analytics has described the data.
    quality_histograms: dict[str, dict[str, Any]] = field(default_factory=dict)


def _quality(ev: Evidence) -> list[Chart | None]:
    charts: list[Chart | None] = [
        quality.quality_scores(
            ev.dimensions_before,
            ev.dimensions_after,
            score_before=ev.score_before,
            score_after=ev.score_after,
        )
    ]
    if ev.dataset is not None:
        charts.append(quality.missing_values(ev.dataset.columns, ev.dataset.rows))
    fences, merges = quality.outlier_fences(ev.findings), quality.proposed_merges(ev.findings)
    if ev.analytics is not None:
        for col in ev.analytics.columns:
            charts.append(quality.histogram(col, fences.get(col.name)))
            charts.append(quality.top_categories(col, merges.get(col.name)))
    else:
        for name, hist in ev.quality_histograms.items():
            col = quality.assessed_column(name, hist)
            note = "" if hist.get("exact", True) else ", of quality's row sample"
            charts.append(quality.histogram(col, fences.get(name), note=note))
    return charts


def _analytics(ev: Evidence) -> list[Chart | None]:
    result = ev.analytics
    if result is None:
        return []
    charts = [analytics.correlation_heatmap(result.correlations)]
    if result.clustering is not None:
        charts.append(analytics.clusters(result.clustering))
    if result.drivers is not None:
        charts.append(analytics.drivers(result.drivers))
    charts += [analytics.segments(s) for s in result.segments[:SEGMENT_CHARTS]]
    if result.time_series is not None:
        charts.append(analytics.time_series(result.time_series))
    return charts


def _insights(ev: Evidence) -> list[Chart | None]:
    return [insights.insight_scores(ev.insights)]


FAMILIES: dict[str, Callable[[Evidence], list[Chart | None]]] = {
    "quality": _quality,
    "analytics": _analytics,
    "insights": _insights,
}


def charts_of(evidence: Evidence, *, stage: str | None = None) -> list[Chart]:
    """The run's charts (of one stage, if given), those the evidence supports, in a stable order."""
    out: list[Chart] = []
    for name, build in FAMILIES.items():
        if stage is None or stage == name:
            out += [c for c in build(evidence) if c is not None]
    return out


def preview_charts(preview: dict[str, Any]) -> list[Chart]:
    """A gate 2 preview's before/after histograms (from the `histograms` the quality stage adds)."""
    out = []
    for column, sides in (preview.get("histograms") or {}).items():
        chart = quality.preview_histogram(column, sides.get("before") or {}, sides.get("after") or {})
        if chart is not None:
            out.append(chart)
    return out
