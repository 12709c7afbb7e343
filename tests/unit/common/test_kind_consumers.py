"""Every finding category, insight kind and fix strategy through every stage and view that reads it.

Parametrised over the `Literal`s (and every strategy in the table) plus one value this build does
not know: recommendations (medium and high severity), the report in Markdown, JSON and HTML, the
plan export in every format, the CLI gate views 2, 4 and 5, the gate 2 context and the preview's
steps. Each must run without an exception and show the table's wording, so a consumer that keeps
its own partial list, or none, fails here. An unknown value cannot pass pydantic's `Literal` in an
event, so it is built with `model_construct` or given as a plain dict, the way a consumer that
reads stored JSON sees it.
"""

import html
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from lockflow.common.events import CompileReportPayload
from lockflow.common.kinds import (
    CATEGORIES,
    GENERIC_CATEGORY,
    GENERIC_INSIGHT,
    GENERIC_STRATEGY,
    INSIGHT_KINDS,
    STRATEGIES,
    category_facts,
    category_label,
    insight_facts,
    insight_label,
    strategy_facts,
)
from lockflow.common.models import (
    ActionItem,
    AnalyticsParams,
    AnalyticsResult,
    AppliedResolution,
    DatasetRef,
    Finding,
    FindingCategory,
    Goal,
    Insight,
    InsightKind,
    PlannedAction,
    Resolution,
    ResolutionChoice,
    SourceSpec,
)
from lockflow.gate_views import show_actions, show_insights, show_quality
from lockflow.orchestrator.gate_context import quality_finding
from lockflow.plans.export import plan_csv, plan_json, plan_markdown
from lockflow.quality.detect import assess
from lockflow.quality.preview import describe_steps, preview
from lockflow.recommendations.plan import recommend
from lockflow.reporting.render import build_report, render_html, render_markdown

UNKNOWN_CATEGORY = "brand_new_category"
UNKNOWN_KIND = "brand_new_kind"
UNKNOWN_STRATEGY = "brand_new_fix"
CATEGORY_VALUES = [*get_args(FindingCategory), UNKNOWN_CATEGORY]
KIND_VALUES = [*get_args(InsightKind), UNKNOWN_KIND]
STRATEGY_VALUES = [*STRATEGIES, UNKNOWN_STRATEGY]
GOAL = Goal(target="revenue", direction="increase")
SHARE = {"medium": 0.08, "high": 0.31}
ROWS = 4000
SAMPLE = Path(__file__).parents[3] / "src" / "lockflow" / "data" / "sample_sales.csv"


def test_tables_cover_every_literal_and_nothing_else() -> None:
    assert set(CATEGORIES) == set(get_args(FindingCategory))
    assert set(INSIGHT_KINDS) == set(get_args(InsightKind))
    assert all(category_facts(c).default_fix in STRATEGIES for c in CATEGORIES)
    assert category_facts(UNKNOWN_CATEGORY) is GENERIC_CATEGORY
    assert insight_facts(UNKNOWN_KIND) is GENERIC_INSIGHT
    assert strategy_facts(UNKNOWN_STRATEGY) is GENERIC_STRATEGY


# ---- realistic inputs ----------------------------------------------------------------------------


def make_finding(category: str, severity: str = "medium", strategy: str | None = None) -> Finding:
    """A finding as a detector would report it; an unknown category is built without validation."""
    fix = strategy or category_facts(category).default_fix
    columns = [] if category == "duplicate_rows" else ["discount"]
    share = SHARE.get(severity, 0.01)
    fields: dict[str, Any] = {
        "id": f"{category}:{columns[0] if columns else 'rows'}",
        "category": category,
        "severity": severity,
        "columns": columns,
        "count": round(share * ROWS),
        "share": share,
        "sample_rows": [3, 17, 42],
        "explanation": f"{round(share * ROWS)} of {ROWS} rows of 'discount' have the problem.",
        "resolutions": [
            Resolution(strategy=fix, params={}, rationale="ranked first by the detector"),
            Resolution(strategy="flag_only", params={"column": "discount_flagged"}, rationale="keep"),
        ],
        "dimension": category_facts(category).dimension,
    }
    if category in CATEGORIES:
        return Finding(**fields)
    return Finding.model_construct(**fields)


def make_insight(kind: str) -> Insight:
    """An insight as stage 5 would report it, with the numbers its kind carries."""
    numbers: dict[str, dict[str, float]] = {
        "driver": {"slope": 2.4, "sd_driver": 110.0, "p_holm": 0.0004},
        "segment": {"mean_segment": 2400.0, "mean_rest": 3100.0, "n_segment": 800.0, "diff_pct": -22.6},
        "cluster": {"size": 640.0, "mean_cluster": 3900.0, "mean_all": 3000.0},
        "correlation": {"pearson": 0.71, "n": 4000.0},
        "trend_break": {"mean_before": 2900.0, "mean_after": 3300.0},
        "anomaly": {"count": 40.0, "share": 0.01},
        "concentration": {"top_share": 0.46},
    }
    ids = {"segment": "segment:region=West", "cluster": "cluster:2", "trend_break": "trend_break:2025-06-01"}
    fields: dict[str, Any] = {
        "id": ids.get(kind, f"{kind}:marketing_spend"),
        "kind": kind,
        "statement": f"A {kind.replace('_', ' ')} in marketing_spend moves revenue.",
        "columns": ["marketing_spend", "revenue"],
        "numbers": numbers.get(kind, {"value": 1.0}),
        "effect_size": 0.42,
        "p_value": 0.0001 if insight_facts(kind).tested else None,
        "significant": True,
        "relevance": 1.0,
        "score": 0.42,
        "confidence": None if insight_facts(kind).tested else 0.6,
    }
    if kind in INSIGHT_KINDS:
        return Insight(**fields)
    return Insight.model_construct(**fields)


def payload(
    *,
    findings: list[Finding],
    applied: list[AppliedResolution],
    insights: list[Insight],
    items: list[ActionItem],
) -> CompileReportPayload:
    """The report's input as the orchestrator builds it (instances are not validated again)."""
    dataset = DatasetRef(uri="file:///a/data.parquet", fingerprint="sha256:abc", rows=ROWS, columns=[])
    return CompileReportPayload(
        attempt_id="att-1",
        name="kinds",
        source=SourceSpec(path="sample_sales.csv"),
        goal=GOAL,
        dataset_ingested=dataset,
        dataset_final=dataset,
        findings=findings,
        applied=applied,
        score_before=0.9,
        score_after=0.95,
        analytics=AnalyticsResult(
            rows_total=ROWS,
            rows_used=ROWS,
            sampled=False,
            seed=0,
            columns=[],
            correlations=[],
            clustering=None,
            params=AnalyticsParams(),
        ),
        insights=insights,
        plan=[PlannedAction(rank=i, item=item) for i, item in enumerate(items, start=1)],
        decisions=[],
        requested_by="local",
    )


def report_texts(p: CompileReportPayload) -> tuple[dict[str, Any], str, str, str]:
    """The report as its JSON dict and the three stored formats."""
    report = build_report(payload=p, run_id="run-1", generated_at=datetime(2026, 12, 1, tzinfo=UTC))
    as_json = json.dumps(report, indent=2, sort_keys=True)
    assert json.loads(as_json) == report
    return report, as_json, render_markdown(report), render_html(report)


def printed(show: Any, ctx: dict[str, Any]) -> str:
    """What a gate view prints, from a wide console so cells are not wrapped."""
    out = io.StringIO()
    show(ctx, Console(file=out, width=600, color_system=None))
    return out.getvalue()


def plan_texts(items: list[ActionItem]) -> list[str]:
    plan = [PlannedAction(rank=i, item=item, owner="ana") for i, item in enumerate(items, start=1)]
    return [plan_markdown(plan), plan_json(plan), plan_csv(plan)]


# ---- categories ----------------------------------------------------------------------------------


@pytest.mark.parametrize("severity", ["medium", "high"])
@pytest.mark.parametrize("category", CATEGORY_VALUES)
def test_every_category_through_every_consumer(category: str, severity: str) -> None:
    facts = category_facts(category)
    label = category_label(category)
    finding = make_finding(category, severity)

    items = recommend(goal=GOAL, unresolved_findings=[finding], insights=[])
    assert len(items) == 1
    item = items[0]
    assert facts.words in item.title and item.effort == facts.effort and finding.id in item.evidence

    applied = [AppliedResolution(finding_id=finding.id, strategy=facts.default_fix, cells_changed=3)]
    report, as_json, markdown, page = report_texts(
        payload(findings=[finding], applied=applied, insights=[], items=items)
    )
    shown = report["quality"]["findings"][0]
    assert (shown["category"], shown["label"], shown["dimension"]) == (category, label, facts.dimension)
    assert f"| {finding.id} | {label} | {facts.dimension} | {severity} |" in markdown
    assert f"<td>{html.escape(label)}</td><td>{facts.dimension}</td>" in page
    fix = strategy_facts(facts.default_fix)
    assert fix.description in markdown and html.escape(fix.description) in page and label in as_json

    for text in plan_texts(items):
        assert facts.words in text

    ctx = {"score": 91.5, "findings": [quality_finding(finding)], "rows": ROWS}
    gate2 = printed(show_quality, ctx)
    assert label in gate2 and facts.dimension in gate2 and fix.description in gate2
    assert ctx["findings"][0]["label"] == label
    assert ctx["findings"][0]["resolutions"][0]["risk"] == fix.risk
    # The same view fed the stored JSON (a plain dict, no validation) says the same.
    assert printed(show_quality, json.loads(json.dumps(ctx))) == gate2

    gate5 = printed(show_actions, {"items": [i.model_dump(mode="json") for i in items]})
    assert facts.words in gate5 and item.id in gate5

    steps = describe_steps(applied, [finding])
    assert steps[0]["category"] == label and steps[0]["description"] == fix.description


# ---- insight kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_VALUES)
def test_every_insight_kind_through_every_consumer(kind: str) -> None:
    facts = insight_facts(kind)
    label = insight_label(kind)
    insight = make_insight(kind)

    items = recommend(goal=GOAL, unresolved_findings=[], insights=[insight])
    assert len(items) == 1
    item = items[0]
    assert item.effort == facts.effort and insight.id in item.evidence
    assert item.origin == ("anomaly" if kind == "anomaly" else "insight")

    report, as_json, markdown, page = report_texts(
        payload(findings=[], applied=[], insights=[insight], items=items)
    )
    assert report["insights"][0]["label"] == label and report["insights"][0]["kind"] == kind
    assert f"| 1 | {label} | {insight.statement} |" in markdown
    assert f"<td>{html.escape(label)}</td>" in page and label in as_json
    assert html.escape(item.title) in page

    for text in plan_texts(items):
        assert insight.id in text

    ctx = {"params": {"goal": GOAL.model_dump(mode="json")}, "insights": [insight.model_dump(mode="json")]}
    gate4 = printed(show_insights, ctx)
    row = next(line for line in gate4.splitlines() if f" {insight.id} " in line)
    assert f" {label} " in row

    gate5 = printed(show_actions, {"items": [i.model_dump(mode="json") for i in items]})
    assert item.id in gate5


# ---- fix strategies ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGY_VALUES)
def test_every_strategy_through_every_consumer(strategy: str) -> None:
    facts = strategy_facts(strategy)
    finding = make_finding("missing_values", "high", strategy=strategy)

    ctx = {"score": 80.0, "findings": [quality_finding(finding)], "rows": ROWS}
    offered = ctx["findings"][0]["resolutions"][0]
    assert (offered["description"], offered["risk"], offered["changes"]) == (
        facts.description,
        facts.risk,
        facts.changes,
    )
    gate2 = printed(show_quality, ctx)
    row = next(line for line in gate2.splitlines() if f" {strategy} " in line and facts.description in line)
    assert f" {facts.risk} " in row and f" {facts.changes} " in row

    applied = [AppliedResolution(finding_id=finding.id, strategy=strategy, rows_removed=2, note="done")]
    report, as_json, markdown, page = report_texts(
        payload(findings=[finding], applied=applied, insights=[], items=[])
    )
    assert (report["quality"]["applied"][0]["description"], report["quality"]["applied"][0]["risk"]) == (
        facts.description,
        facts.risk,
    )
    assert json.dumps(facts.description) in as_json
    assert f"| {finding.id} | {strategy} | {facts.description} | {facts.risk} |" in markdown
    assert f"<td>{html.escape(facts.description)}</td><td>{facts.risk}</td>" in page

    steps = describe_steps(applied, [finding])
    assert (steps[0]["description"], steps[0]["risk"]) == (facts.description, facts.risk)


def test_a_preview_step_of_a_finding_it_does_not_know_still_reads() -> None:
    steps = describe_steps([AppliedResolution(finding_id="gone", strategy=UNKNOWN_STRATEGY)], [])
    assert steps[0]["category"] == "-" and steps[0]["description"] == GENERIC_STRATEGY.description
    assert steps[0]["risk"] == "high"


def test_plan_export_of_the_due_date_and_origin_is_unchanged_by_kinds() -> None:
    items = recommend(goal=GOAL, unresolved_findings=[make_finding("staleness", "high")], insights=[])
    plan = [PlannedAction(rank=1, item=items[0], owner="ana", due=date(2027, 1, 31))]
    assert "2027-01-31" in plan_csv(plan) and "stale data" in plan_markdown(plan)


# ---- real findings -------------------------------------------------------------------------------


def test_the_sample_data_with_planted_problems_through_every_consumer() -> None:
    """Detectors' own findings on the bundled sample (plus planted gaps and repeats), not hand-made ones."""
    frame = pd.read_csv(SAMPLE, parse_dates=["order_date"])
    rng = np.random.default_rng(3)
    frame.loc[rng.choice(len(frame), 300, replace=False), "discount"] = np.nan
    frame = pd.concat([frame, frame.iloc[:50]], ignore_index=True)
    findings = assess(frame=frame, as_of=date(2027, 6, 1)).findings
    assert {"missing_values", "duplicate_rows", "staleness"} <= {f.category for f in findings}

    ctx = {"score": 90.0, "findings": [quality_finding(f) for f in findings], "rows": len(frame)}
    gate2 = printed(show_quality, ctx)
    for f in findings:
        assert category_label(f.category) in gate2
        assert strategy_facts(f.resolutions[0].strategy).description in gate2

    choices = [
        ResolutionChoice(finding_id=f.id, strategy=f.resolutions[0].strategy, params=f.resolutions[0].params)
        for f in findings
    ]
    result = preview(frame=frame, total_rows=len(frame), findings=findings, choices=choices)
    assert {s["finding_id"] for s in result["steps"]} == {f.id for f in findings}
    by_id = {f.id: f for f in findings}
    for step in result["steps"]:
        assert step["category"] == category_label(by_id[step["finding_id"]].category)
        assert step["description"] == strategy_facts(step["strategy"]).description

    items = recommend(goal=GOAL, unresolved_findings=findings, insights=[])
    actionable = [f for f in findings if f.severity in ("medium", "high")]
    assert {e for i in items for e in i.evidence} == {f.id for f in actionable}
    _, _, markdown, page = report_texts(payload(findings=findings, applied=[], insights=[], items=items))
    for f in findings:
        assert f"| {f.id} | {category_label(f.category)} | {f.dimension} |" in markdown
        assert html.escape(category_label(f.category)) in page
    gate5 = printed(show_actions, {"items": [i.model_dump(mode="json") for i in items]})
    assert all(i.id in gate5 for i in items)
