"""Stage 6: merging of findings, the priority formula and the ordering of actions."""

import numpy as np
import pandas as pd
import pytest

from lockflow.common.models import (
    ActionItem,
    AnalyticsParams,
    AnalyticsResult,
    CorrelationPair,
    Finding,
    Goal,
    Insight,
    InsightParams,
)
from lockflow.insights.find import find_insights
from lockflow.recommendations.plan import recommend


def _finding(fid: str, category: str, severity: str, columns: list[str], share: float) -> Finding:
    return Finding(
        id=fid,
        category=category,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        columns=columns,
        count=int(share * 1000),
        share=share,
        sample_rows=[1, 2],
        explanation=f"{category} in {columns}",
        resolutions=[],
    )


def _insight(
    iid: str, kind: str, effect: float, p_holm: float | None, significant: bool, **numbers: float
) -> Insight:
    figures = dict(numbers)
    if p_holm is not None:
        figures["p_holm"] = p_holm
    return Insight(
        id=iid,
        kind=kind,  # type: ignore[arg-type]
        statement=f"statement of {iid}",
        columns=[iid.split(":")[1].split("=")[0], "sales"],
        numbers=figures,
        effect_size=effect,
        p_value=None if p_holm is None else p_holm / 2,
        significant=significant,
        relevance=1.0,
        score=abs(effect),
    )


def _by_evidence(items: list[ActionItem]) -> dict[str, ActionItem]:
    return {e: item for item in items for e in item.evidence}


GOAL = Goal(target="sales", direction="increase")


def test_findings_on_one_column_merge_and_low_severity_is_ignored() -> None:
    findings = [
        _finding("q-1", "missing_values", "medium", ["age"], 0.20),
        _finding("q-2", "outliers", "high", ["age"], 0.05),
        _finding("q-3", "missing_values", "low", ["city"], 0.40),
        _finding("q-4", "type_mismatch", "high", ["price"], 0.10),
        _finding("q-5", "missing_values", "medium", ["age"], 0.20),  # a duplicate of q-1
    ]
    items = recommend(goal=GOAL, unresolved_findings=findings, insights=[])
    assert len(items) == 2
    age = _by_evidence(items)["q-1"]
    assert age.evidence == ["q-1", "q-2", "q-5"]
    assert age.title == "Fix missing values and outliers in `age` at the source"
    assert (age.origin, age.impact, age.confidence, age.effort) == ("quality", 0.20, 0.9, 3)
    assert age.priority == round(0.20 * 0.9 / 3, 4)
    assert "q-3" not in _by_evidence(items)
    price = _by_evidence(items)["q-4"]
    assert price.title == "Fix type mismatches in `price` at the source"
    assert price.priority == round(0.10 * 0.9 / 3, 4)


def test_impact_is_capped_and_table_wide_findings_read_well() -> None:
    items = recommend(
        goal=GOAL, unresolved_findings=[_finding("q-9", "duplicate_rows", "high", [], 1.7)], insights=[]
    )
    assert items[0].title == "Fix duplicate rows at the source"
    assert (items[0].impact, items[0].effort, items[0].priority) == (1.0, 2, 0.45)


def test_insight_actions_priority_and_titles() -> None:
    insights = [
        _insight("driver:price", "driver", -0.6, 0.002, True, r=-0.6),
        _insight("segment:region=south", "segment", -1.4, 0.0, True, diff_pct=-30.2),
        _insight("segment:region=north", "segment", 0.4, 0.01, True, diff_pct=8.0),
        _insight("driver:noise", "driver", 0.05, 0.8, False, r=0.05),
        _insight("cluster:2", "cluster", 0.9, None, False, size=80.0),
    ]
    items = _by_evidence(recommend(goal=GOAL, unresolved_findings=[], insights=insights))
    assert "driver:noise" not in items

    price = items["driver:price"]
    assert price.title.startswith("Reduce `price` to raise `sales`")
    assert (price.impact, price.confidence, price.effort) == (0.6, pytest.approx(0.998), 3)
    assert price.priority == round(0.6 * 0.998 / 3, 4)

    south = items["segment:region=south"]
    assert south.title == "Investigate why segment region=south under-performs (\u221230.2% `sales`)"
    south_impact = 1.4 / (1.4**2 + 4) ** 0.5  # Cohen's d on the correlation scale
    assert south.impact == pytest.approx(south_impact)
    assert (south.confidence, south.effort, south.priority) == (1.0, 2, round(south_impact / 2, 4))
    assert items["segment:region=north"].title.startswith("Learn from segment region=north")

    cluster = items["cluster:2"]
    assert cluster.title.startswith("Target cluster 2 (80 rows")
    cluster_impact = 0.9 / (0.9**2 + 4) ** 0.5
    assert (cluster.confidence, cluster.priority) == (0.5, round(cluster_impact * 0.5 / 2, 4))


def test_driver_title_follows_goal_direction() -> None:
    insight = _insight("driver:price", "driver", 0.6, 0.001, True)
    down = recommend(
        goal=Goal(target="sales", direction="decrease"), unresolved_findings=[], insights=[insight]
    )
    assert down[0].title.startswith("Reduce `price` to lower `sales`")
    up = recommend(goal=GOAL, unresolved_findings=[], insights=[insight])
    assert up[0].title.startswith("Increase `price` to raise `sales`")


def test_sorted_by_priority_and_numbered_after_sorting() -> None:
    findings = [_finding("q-1", "missing_values", "high", ["age"], 0.5)]  # 0.5*0.9/2 = 0.225
    insights = [
        _insight("driver:a", "driver", 0.3, 0.01, True),  # 0.3*0.99/3 = 0.099
        _insight("segment:r=x", "segment", -1.5, 0.0, True, diff_pct=-20.0),  # r = 1.5/2.5; 0.6/2 = 0.3
    ]
    items = recommend(goal=GOAL, unresolved_findings=findings, insights=insights)
    assert [i.evidence for i in items] == [["segment:r=x"], ["q-1"], ["driver:a"]]
    assert [i.id for i in items] == ["act-1", "act-2", "act-3"]
    assert [i.priority for i in items] == [0.3, 0.225, 0.099]


def test_end_to_end_from_planted_data() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x1": rng.normal(size=500), "x2": rng.normal(size=500)})
    frame["sales"] = 3 * frame["x1"] + rng.normal(0, 1, 500)
    analytics = AnalyticsResult(
        rows_total=500,
        rows_used=500,
        sampled=False,
        seed=0,
        columns=[],
        correlations=[],
        clustering=None,
        params=AnalyticsParams(),
    )
    insights = find_insights(frame=frame, analytics=analytics, params=InsightParams(goal=GOAL))
    items = recommend(goal=GOAL, unresolved_findings=[], insights=insights)
    assert items[0].evidence == ["driver:x1"]
    significant = {i.id for i in insights if i.significant}
    assert {e for item in items for e in item.evidence} == significant
    r = np.corrcoef(frame["x1"], frame["sales"])[0, 1]
    assert items[0].impact == pytest.approx(r)
    assert items[0].title.startswith("Increase `x1` to raise `sales`")


def test_expected_impact_in_goal_units_and_duplicates_merged() -> None:
    rng = np.random.default_rng(5)
    rows = 1_000
    frame = pd.DataFrame({"spend": rng.normal(100, 20, rows)})
    frame["visits"] = frame["spend"] * 2 + rng.normal(0, 5, rows)  # one lever seen twice
    frame["region"] = rng.choice(["north", "south"], rows)
    frame["sales"] = 3 * frame["spend"] + rng.normal(0, 30, rows) - 60 * (frame["region"] == "south")
    analytics = AnalyticsResult(
        rows_total=rows, rows_used=rows, sampled=False, seed=0, columns=[], clustering=None,
        params=AnalyticsParams(),
        correlations=[CorrelationPair(a="spend", b="visits", pearson=frame["spend"].corr(frame["visits"]), n=rows)],  # noqa: E501
    )  # fmt: skip
    insights = find_insights(frame=frame, analytics=analytics, params=InsightParams(goal=GOAL, top_n=50))
    items = recommend(goal=GOAL, unresolved_findings=[], insights=insights)
    spend = _by_evidence(items)["driver:spend"]
    # The strong spend~visits correlation joins the spend action instead of being a second action.
    assert spend.evidence[:2] == ["driver:spend", "correlation:spend~visits"]
    assert _by_evidence(items)["correlation:spend~visits"] is spend
    r = frame["spend"].corr(frame["sales"])
    assert spend.expected_impact == pytest.approx(abs(r) * frame["sales"].std())
    assert spend.impact_unit == "`sales` per row" and len(spend.evidence_statements) == 2
    south = _by_evidence(items)["segment:region=south"]
    inside = frame["region"] == "south"
    gap = frame.loc[~inside, "sales"].mean() - frame.loc[inside, "sales"].mean()
    assert south.expected_impact == pytest.approx(gap * inside.sum())
    assert south.impact_unit == "`sales` in total"


def test_anomaly_action_absorbs_outlier_findings_on_the_same_columns() -> None:
    anomaly = Insight(
        id="anomaly:rows", kind="anomaly", statement="12 rows are anomalous", columns=["price", "qty"],
        numbers={"count": 12.0}, effect_size=2.0, p_value=None, significant=False, relevance=0.7, score=0.1,
    )  # fmt: skip
    findings = [_finding("outliers:price", "outliers", "medium", ["price"], 0.01)]
    items = recommend(goal=GOAL, unresolved_findings=findings, insights=[anomaly])
    assert len(items) == 1 and items[0].origin == "anomaly"
    assert items[0].evidence == ["anomaly:rows", "outliers:price"]
    assert items[0].title.startswith("Review the 12 anomalous rows")
