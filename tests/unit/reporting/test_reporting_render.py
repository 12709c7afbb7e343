"""Stage 7 report: every section copied from the payload, safe to serialise, escaped when rendered."""

import html
import itertools
import json
import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lockflow.common.events import CompileReportPayload
from lockflow.common.models import (
    ActionItem,
    AnalyticsParams,
    AnalyticsResult,
    AppliedResolution,
    Clustering,
    ClusterProfile,
    ColumnSchema,
    ColumnStats,
    CorrelationPair,
    DatasetRef,
    DecisionRecord,
    Finding,
    Goal,
    Insight,
    PlannedAction,
    Resolution,
    SourceSpec,
)
from lockflow.reporting.render import build_report, render_html, render_markdown

Built = tuple[dict[str, Any], CompileReportPayload, pd.DataFrame]
XSS = "<script>alert(1)</script>"
GENERATED = datetime(2025, 3, 4, 12, 30, tzinfo=UTC)


def synthetic() -> pd.DataFrame:
    """Sales data with planted signals: revenue follows ads, churn falls with tenure."""
    rng = np.random.default_rng(11)
    n = 600
    ads = rng.normal(50, 10, n)
    tenure = rng.uniform(1, 60, n)
    frame = pd.DataFrame(
        {
            "ads": ads,
            "revenue": 3 * ads + rng.normal(0, 8, n),
            "tenure": tenure,
            "churn": 0.8 - 0.01 * tenure + rng.normal(0, 0.05, n),
            "noise_a": rng.normal(0, 1, n),
            XSS: rng.normal(0, 1, n),  # a hostile column name, as an uploaded file may carry
        }
    )
    frame.loc[rng.choice(n, 30, replace=False), "tenure"] = np.nan
    return frame


def column_stats(frame: pd.DataFrame) -> list[ColumnStats]:
    out = []
    for name in frame.columns:
        s = frame[name]
        q = s.quantile([0.25, 0.5, 0.75])
        out.append(
            ColumnStats(
                name=name,
                kind="numeric",
                count=int(s.count()),
                missing=int(s.isna().sum()),
                distinct=int(s.nunique()),
                mean=float(s.mean()),
                std=float(s.std()),
                min=float(s.min()),
                p25=float(q[0.25]),
                median=float(q[0.5]),
                p75=float(q[0.75]),
                max=float(s.max()),
            )
        )
    return out


def correlations(frame: pd.DataFrame) -> list[CorrelationPair]:
    pairs = []
    for a, b in itertools.combinations(frame.columns, 2):
        both = frame[[a, b]].dropna()
        r = float(np.corrcoef(both[a], both[b])[0, 1])
        pairs.append(CorrelationPair(a=a, b=b, pearson=r, n=len(both)))
    return pairs


def schema(frame: pd.DataFrame) -> list[ColumnSchema]:
    return [
        ColumnSchema(
            name=c,
            dtype="float",
            nullable=bool(frame[c].isna().any()),
            null_count=int(frame[c].isna().sum()),
            examples=[str(v) for v in frame[c].dropna().head(3)],
        )
        for c in frame.columns
    ]


def make_payload() -> tuple[CompileReportPayload, pd.DataFrame]:
    raw = synthetic()
    missing = int(raw["tenure"].isna().sum())
    final = raw.dropna()
    findings = [
        Finding(
            id="f-missing-tenure",
            category="missing_values",
            severity="medium",
            columns=["tenure"],
            count=missing,
            share=missing / len(raw),
            sample_rows=[int(i) for i in np.flatnonzero(raw["tenure"].isna())[:5]],
            explanation="tenure is empty in some rows",
            resolutions=[Resolution(strategy="drop_rows", rationale="few rows")],
        ),
        Finding(
            id="f-outliers-xss",
            category="outliers",
            severity="low",
            columns=[XSS],
            count=4,
            share=4 / len(raw),
            sample_rows=[1, 2],
            explanation="extreme values",
            resolutions=[],
        ),
    ]
    revenue_high = final["revenue"][final["ads"] > final["ads"].median()]
    revenue_low = final["revenue"][final["ads"] <= final["ads"].median()]
    t = stats.ttest_ind(revenue_high, revenue_low, equal_var=False)
    diff = float(revenue_high.mean() - revenue_low.mean())
    r_tenure = float(np.corrcoef(final["tenure"], final["churn"])[0, 1])
    insights = [
        Insight(
            id="i-corr",
            kind="correlation",
            statement="Churn falls as tenure grows | strongest in year one\nsee appendix",
            columns=["tenure", "churn"],
            numbers={"pearson": r_tenure, "n": float(len(final))},
            effect_size=abs(r_tenure),
            p_value=None,
            significant=True,
            relevance=0.5,
            score=0.41,
        ),
        Insight(
            id="i-driver",
            kind="driver",
            statement="Revenue is higher when ads spend is above its median",
            columns=["ads", "revenue"],
            numbers={"difference": diff, "mean_high": float(revenue_high.mean())},
            effect_size=diff / float(final["revenue"].std()),
            p_value=float(t.pvalue),
            significant=bool(t.pvalue < 0.05),
            relevance=1.0,
            score=0.93,
        ),
    ]
    items = [
        ActionItem(
            id="a-ads",
            title="Shift budget to ads",
            rationale="revenue tracks ads",
            origin="insight",
            evidence=["i-driver"],
            impact=0.8,
            confidence=0.9,
            effort=2,
            priority=0.8 * 0.9 / 2,
        ),
        ActionItem(
            id="a-tenure",
            title="Fix tenure capture",
            rationale="tenure missing | in 5% of rows",
            origin="quality",
            evidence=["f-missing-tenure"],
            impact=0.3,
            confidence=1.0,
            effort=1,
            priority=0.3,
        ),
    ]
    decisions = [
        DecisionRecord(
            gate="source_review",
            option="approve",
            params={},
            decided_by="alice",
            decided_at=datetime(2025, 3, 4, 9, 0, tzinfo=UTC),
            rationale="schema ok",
        ),
        DecisionRecord(
            gate="quality_review",
            option="apply",
            params={"choices": [{"finding_id": "f-missing-tenure", "strategy": "drop_rows"}]},
            decided_by="bob",
            decided_at=datetime(2025, 3, 4, 9, 5, tzinfo=UTC),
            rationale="drop the rows",
        ),
        DecisionRecord(
            gate="analytics_review",
            option="accept",
            params={},
            decided_by="alice",
            decided_at=datetime(2025, 3, 4, 9, 7, tzinfo=UTC),
            rationale="",
        ),
        DecisionRecord(
            gate="action_selection",
            option="select",
            params={"selected": ["a-tenure", "a-ads"]},
            decided_by="carol",
            decided_at=datetime(2025, 3, 4, 9, 20, tzinfo=UTC),
            rationale="quick win first",
        ),
    ]
    features = ["ads", "revenue"]
    clusters = [
        ClusterProfile(
            cluster=k,
            size=int(part.shape[0]),
            centroid={f: float(part[f].mean()) for f in features},
        )
        for k, part in enumerate([final[final["ads"] <= 50], final[final["ads"] > 50]])
    ]
    analytics = AnalyticsResult(
        rows_total=len(final),
        rows_used=len(final),
        sampled=False,
        seed=0,
        columns=column_stats(final),
        correlations=correlations(final),
        clustering=Clustering(
            k=2, chosen_by="user", silhouette=float("nan"), features=features, clusters=clusters
        ),
        params=AnalyticsParams(n_clusters=2),
    )
    payload = CompileReportPayload(
        attempt_id="att-1",
        name="Q1 sales",
        source=SourceSpec(path="/data/sales.csv", format="csv"),
        goal=Goal(target="revenue", direction="increase", description="grow revenue"),
        dataset_ingested=DatasetRef(
            uri="file:///a/raw.parquet", fingerprint="sha256:raw", rows=len(raw), columns=schema(raw)
        ),
        dataset_final=DatasetRef(
            uri="file:///a/final.parquet", fingerprint="sha256:final", rows=len(final), columns=schema(final)
        ),
        findings=findings,
        applied=[
            AppliedResolution(
                finding_id="f-missing-tenure", strategy="drop_rows", rows_removed=len(raw) - len(final)
            )
        ],
        score_before=1 - missing / len(raw),
        score_after=1.0,
        analytics=analytics,
        insights=insights,
        plan=[
            PlannedAction(rank=2, item=items[0], owner="dave", due=date(2025, 4, 1)),
            PlannedAction(rank=1, item=items[1]),
        ],
        decisions=decisions,
        requested_by="alice",
    )
    return payload, final


@pytest.fixture
def built() -> Built:
    payload, final = make_payload()
    return build_report(payload=payload, run_id="run-42", generated_at=GENERATED), payload, final


def test_report_is_plain_json(built: Built) -> None:
    report, _, _ = built
    again = json.loads(json.dumps(report, allow_nan=False))  # NaN silhouette must not leak
    assert again == report
    assert report["analytics"]["clustering"]["silhouette"] is None


def test_run_source_goal_and_dataset(built: Built) -> None:
    report, _, final = built
    assert report["run"] == {
        "id": "run-42",
        "name": "Q1 sales",
        "requested_by": "alice",
        "generated_at": "2025-03-04T12:30:00+00:00",
        "judged_as_of": None,
    }
    assert report["source"]["path"] == "/data/sales.csv" and report["source"]["format"] == "csv"
    assert report["goal"] == {"target": "revenue", "direction": "increase", "description": "grow revenue"}
    ingested, after = report["dataset"]["ingested"], report["dataset"]["final"]
    assert (ingested["rows"], ingested["fingerprint"]) == (600, "sha256:raw")
    assert (after["rows"], after["fingerprint"]) == (len(final), "sha256:final")
    assert [c["name"] for c in after["columns"]] == list(final.columns)
    assert ingested["columns"][2]["null_count"] == 30


def test_ingested_dataset_counts_its_exact_duplicate_rows(built: Built) -> None:
    report, payload, _ = built
    assert report["dataset"]["ingested"]["duplicate_rows"] == 0  # no duplicate_rows finding
    repeats = Finding(
        id="duplicate_rows",
        category="duplicate_rows",
        severity="low",
        columns=["ads", "tenure"],
        count=7,
        share=7 / 600,
        sample_rows=[3],
        explanation="exact copies of earlier rows",
        resolutions=[],
    )
    with_repeats = payload.model_copy(update={"findings": [*payload.findings, repeats]})
    again = build_report(payload=with_repeats, run_id="run-42", generated_at=GENERATED)
    assert again["dataset"]["ingested"]["duplicate_rows"] == 7
    assert "duplicate_rows" not in again["dataset"]["final"]


def test_quality_section(built: Built) -> None:
    report, _, final = built
    quality = report["quality"]
    assert quality["score_before"] == pytest.approx(1 - 30 / 600)
    assert quality["score_after"] == 1.0
    assert quality["findings"][0] == {
        "id": "f-missing-tenure",
        "category": "missing_values",
        "label": "Missing values",
        "dimension": "validity",
        "severity": "medium",
        "columns": ["tenure"],
        "count": 30,
        "share": 0.05,
        "explanation": "tenure is empty in some rows",
    }
    assert [f["id"] for f in quality["findings"]] == ["f-missing-tenure", "f-outliers-xss"]
    assert quality["applied"][0]["rows_removed"] == 600 - len(final) == 30
    # What the fix does and its risk come from the strategies table, for a reader judging the fix.
    assert quality["applied"][0]["description"] == "remove the rows that have this problem"
    assert quality["applied"][0]["risk"] == "high"


def test_analytics_section_copies_stats_and_keeps_top_ten_by_abs_r(
    built: Built,
) -> None:
    report, _, final = built
    analytics = report["analytics"]
    assert analytics["rows_used"] == len(final) and analytics["sampled"] is False
    by_name = {c["name"]: c for c in analytics["columns"]}
    assert by_name["revenue"]["mean"] == pytest.approx(final["revenue"].mean())
    assert by_name["tenure"]["median"] == pytest.approx(final["tenure"].median())

    # Independent ranking from pandas' correlation matrix: 15 pairs, the strongest 10 by |r|.
    matrix = final.corr()
    expected = sorted(
        ((a, b, matrix.loc[a, b]) for a, b in itertools.combinations(final.columns, 2)),
        key=lambda t: -abs(t[2]),
    )[:10]
    top = analytics["top_correlations"]
    assert len(top) == 10
    assert [(p["a"], p["b"]) for p in top] == [(a, b) for a, b, _ in expected]
    assert [p["pearson"] for p in top] == pytest.approx([r for _, _, r in expected])
    assert (top[0]["a"], top[0]["b"]) == ("ads", "revenue")  # the planted signal leads
    assert top[0]["pearson"] > 0.9

    clustering = analytics["clustering"]
    assert clustering["k"] == 2 and clustering["features"] == ["ads", "revenue"]
    assert sum(c["size"] for c in clustering["clusters"]) == len(final)
    assert clustering["clusters"][1]["centroid"]["ads"] == pytest.approx(
        final.loc[final["ads"] > 50, "ads"].mean()
    )


def test_insights_are_ranked_by_score_with_their_numbers(
    built: Built,
) -> None:
    report, payload, final = built
    insights = report["insights"]
    assert [(i["rank"], i["id"]) for i in insights] == [(1, "i-driver"), (2, "i-corr")]
    driver = insights[0]
    high = final["revenue"][final["ads"] > final["ads"].median()]
    low = final["revenue"][final["ads"] <= final["ads"].median()]
    assert driver["numbers"]["difference"] == pytest.approx(high.mean() - low.mean())
    assert driver["p_value"] == pytest.approx(stats.ttest_ind(high, low, equal_var=False).pvalue)
    assert driver["significant"] is True
    assert driver["effect_size"] == payload.insights[1].effect_size
    assert insights[1]["p_value"] is None


def test_plan_is_in_rank_order_with_owner_and_due(
    built: Built,
) -> None:
    report, _, _ = built
    plan = report["plan"]
    assert [p["id"] for p in plan] == ["a-tenure", "a-ads"]
    assert plan[1] == {
        "rank": 2,
        "id": "a-ads",
        "title": "Shift budget to ads",
        "rationale": "revenue tracks ads",
        "origin": "insight",
        "priority": pytest.approx(0.36),
        "impact": 0.8,
        "confidence": 0.9,
        "effort": 2,
        "owner": "dave",
        "due": "2025-04-01",
        "evidence": ["i-driver"],
    }
    assert plan[0]["owner"] is None and plan[0]["due"] is None


def test_decision_log_keeps_order_and_who_decided(
    built: Built,
) -> None:
    report, payload, _ = built
    log = report["decisions"]
    assert [(d["gate"], d["decided_by"]) for d in log] == [
        ("source_review", "alice"),
        ("quality_review", "bob"),
        ("analytics_review", "alice"),
        ("action_selection", "carol"),
    ]
    assert log[1]["params"] == payload.decisions[1].params
    assert log[3]["decided_at"] == "2025-03-04T09:20:00+00:00"
    assert log[3]["rationale"] == "quick win first"

    markdown = render_markdown(report)
    positions = [markdown.index(f"| {d['gate']} |") for d in log]
    assert positions == sorted(positions)
    assert "| 2 | quality_review | apply | bob | 2025-03-04T09:05:00+00:00 | drop the rows |" in markdown


def test_markdown_has_every_section_and_escapes_cells(
    built: Built,
) -> None:
    report, _, _ = built
    markdown = render_markdown(report)
    for heading in ["# Report: Q1 sales", "## Run", "## Dataset", "## Data quality", "## Analytics"]:
        assert heading in markdown
    for heading in ["## Insights", "## Action plan", "## Decisions"]:
        assert heading in markdown
    assert (
        "| f-missing-tenure | Missing values | validity | medium | tenure | 30 | 5.0% "
        "| tenure is empty in some rows |" in markdown
    )
    assert "| 1 | Driver | Revenue is higher when ads spend is above its median |" in markdown
    # A pipe and a newline inside a statement must not break the table row.
    assert "Churn falls as tenure grows \\| strongest in year one<br>see appendix" in markdown
    assert "tenure missing \\| in 5% of rows" in markdown
    for line in markdown.splitlines():
        if line.startswith("| ") and "Churn falls" in line:
            assert line.count(" | ") == 6  # seven cells, exactly as the header
    assert XSS not in markdown and html.escape(XSS, quote=False) in markdown


def test_html_escapes_data_and_is_self_contained(
    built: Built,
) -> None:
    report, _, _ = built
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page  # the hostile column name appears only escaped
    assert html.escape(XSS) in page
    assert "src=" not in page and "<link" not in page  # nothing loaded from elsewhere
    for title in ["Run", "Dataset", "Data quality", "Analytics", "Insights", "Action plan", "Decisions"]:
        assert f"<h2>{title}</h2>" in page
    assert "<td>carol</td>" in page
    assert page.index("<td>alice</td>") < page.index("<td>bob</td>") < page.index("<td>carol</td>")


def test_no_numbers_are_invented(built: Built) -> None:
    report, payload, _ = built
    # Each float in the report must be one the payload holds (or None for a non-finite one).
    held = {v for v in _floats(payload.model_dump(mode="json")) if math.isfinite(v)}
    for value in _floats(report):
        assert value in held


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in _floats(v)]
    return []
