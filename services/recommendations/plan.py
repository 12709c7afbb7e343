"""Stage 6: turn unresolved quality findings and insights into one prioritised list of actions.

priority = round(impact x confidence / effort, 4), where
- impact is in 0..1: for a quality action the largest share of rows affected among its merged
  findings (capped at 1); for an insight action its effect on the correlation scale: |r| for a
  driver, and |d| / sqrt(d^2 + 4) for a segment's Cohen's d or a cluster's standardised gap,
  so that every kind of insight is weighed on the same 0..1 scale;
- confidence is in 0..1: 0.9 for a quality action (the problem was observed, not inferred);
  1 - p_holm for a tested insight; 0.5 for an insight without a test (clusters);
- effort is 1..5: by finding category (the largest among merged findings), 3 for acting on a
  driver, 2 for investigating a segment or targeting a cluster.

Quality findings of medium/high severity on the same column(s) merge into one action whose
evidence lists every finding id. Insights become actions when significant; cluster insights,
which carry no test, also do (at confidence 0.5). Items are sorted by priority (ties by title)
and then numbered `act-1`, `act-2`, ...
"""

from collections.abc import Iterable

from lockflow.common.models import ActionItem, Finding, FindingCategory, Goal, Insight
from lockflow.insights.find import r_from_d

QUALITY_CONFIDENCE = 0.9
UNTESTED_CONFIDENCE = 0.5
ACTIONABLE_SEVERITIES = ("medium", "high")
CATEGORY_EFFORT: dict[FindingCategory, int] = {
    "missing_values": 2,
    "duplicate_rows": 2,
    "type_mismatch": 3,
    "outliers": 3,
}
CATEGORY_WORDS: dict[FindingCategory, str] = {
    "missing_values": "missing values",
    "duplicate_rows": "duplicate rows",
    "type_mismatch": "type mismatches",
    "outliers": "outliers",
}
INSIGHT_EFFORT = {"driver": 3, "segment": 2, "cluster": 2, "correlation": 3}


def recommend(*, goal: Goal, unresolved_findings: list[Finding], insights: list[Insight]) -> list[ActionItem]:
    """Actions from findings and insights, highest priority first, ids assigned in that order."""
    drafts = [*_quality_actions(unresolved_findings), *_insight_actions(goal, insights)]
    ranked = sorted(drafts, key=lambda item: (-item.priority, item.title))
    return [item.model_copy(update={"id": f"act-{rank}"}) for rank, item in enumerate(ranked, start=1)]


def priority(*, impact: float, confidence: float, effort: int) -> float:
    """impact x confidence / effort, rounded to 4 decimals."""
    return round(impact * confidence / effort, 4)


def _item(
    *,
    title: str,
    rationale: str,
    origin: str,
    evidence: list[str],
    impact: float,
    confidence: float,
    effort: int,
) -> ActionItem:
    impact = _unit(impact)
    confidence = _unit(confidence)
    return ActionItem(
        id="draft",
        title=title,
        rationale=rationale,
        origin=origin,  # type: ignore[arg-type]
        evidence=evidence,
        impact=impact,
        confidence=confidence,
        effort=effort,
        priority=priority(impact=impact, confidence=confidence, effort=effort),
    )


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))


# ---- quality -----------------------------------------------------------------------------------


def _quality_actions(findings: Iterable[Finding]) -> list[ActionItem]:
    groups: dict[tuple[str, ...], list[Finding]] = {}
    for finding in findings:
        if finding.severity in ACTIONABLE_SEVERITIES:
            groups.setdefault(tuple(sorted(set(finding.columns))), []).append(finding)
    return [_quality_action(columns, group) for columns, group in groups.items()]


def _quality_action(columns: tuple[str, ...], group: list[Finding]) -> ActionItem:
    categories = list(dict.fromkeys(f.category for f in group))
    what = " and ".join(CATEGORY_WORDS[c] for c in categories)
    where = f" in {', '.join(f'`{c}`' for c in columns)}" if columns else ""
    ids = list(dict.fromkeys(f.id for f in group))
    explanations = " ".join(dict.fromkeys(f.explanation for f in group if f.explanation))
    return _item(
        title=f"Fix {what}{where} at the source",
        rationale=f"Unresolved quality findings ({', '.join(ids)}). {explanations}".strip(),
        origin="quality",
        evidence=ids,
        # Max, not sum: merged findings on one column often describe the same rows.
        impact=max(f.share for f in group),
        confidence=QUALITY_CONFIDENCE,
        effort=max(CATEGORY_EFFORT[c] for c in categories),
    )


# ---- insights ----------------------------------------------------------------------------------


def _insight_actions(goal: Goal, insights: Iterable[Insight]) -> list[ActionItem]:
    return [
        _insight_action(goal, insight)
        for insight in insights
        if insight.significant or insight.kind == "cluster"
    ]


def _insight_action(goal: Goal, insight: Insight) -> ActionItem:
    p_holm = insight.numbers.get("p_holm", insight.p_value)
    return _item(
        title=_insight_title(goal, insight),
        rationale=insight.statement,
        origin="insight",
        evidence=[insight.id],
        impact=abs(insight.effect_size if insight.kind == "driver" else r_from_d(insight.effect_size)),
        confidence=UNTESTED_CONFIDENCE if p_holm is None else 1.0 - p_holm,
        effort=INSIGHT_EFFORT[insight.kind],
    )


def _insight_title(goal: Goal, insight: Insight) -> str:
    target = goal.target or "the target"
    if insight.kind == "driver":
        return _driver_title(goal, insight, target)
    if insight.kind == "segment":
        return _segment_title(goal, insight, target)
    if insight.kind == "cluster":
        size = int(insight.numbers.get("size", 0))
        cluster = insight.id.removeprefix("cluster:")
        best = "highest" if goal.direction == "increase" else "lowest"
        return f"Target cluster {cluster} ({size} rows, {best} mean `{target}`) and study what sets it apart"
    return f"Investigate {insight.statement}"


def _driver_title(goal: Goal, insight: Insight, target: str) -> str:
    lever = insight.columns[0]
    raise_target = goal.direction == "increase"
    same_way = insight.effect_size >= 0
    move = "Increase" if same_way == raise_target else "Reduce"
    aim = "raise" if raise_target else "lower"
    return f"{move} `{lever}` to {aim} `{target}` (test it: the link is a correlation)"


def _segment_title(goal: Goal, insight: Insight, target: str) -> str:
    segment = insight.id.removeprefix("segment:")
    diff = insight.numbers.get("diff_pct")
    diff_text = f" ({_signed(diff)}% `{target}`)" if diff is not None else ""
    better = (insight.effect_size > 0) == (goal.direction == "increase")
    if better:
        return f"Learn from segment {segment}, which out-performs{diff_text}"
    return f"Investigate why segment {segment} under-performs{diff_text}"


def _signed(value: float) -> str:
    # A true minus sign reads better in titles than a hyphen.
    return f"{value:+.1f}".replace("-", "\u2212")
