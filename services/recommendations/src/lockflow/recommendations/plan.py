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
evidence lists every finding id. Insights become actions when significant; cluster and anomaly
insights, which carry no test, also do (at confidence 0.5). Trend breaks, concentration and
anomalies get their own actions (impact: their effect on the r scale; effort 2).

Duplicates merge: a significant correlation that involves a driver's column joins that driver's
action (one lever, two pieces of evidence); unresolved outlier findings on the columns that make
the anomalous rows unusual join the anomaly action. Every item lists its evidence ids and their
statements (`evidence_statements`), so each number can be traced back.

Expected impact in the goal's unit, where it can be estimated (`expected_impact`, `impact_unit`):
- driver: r x sd(target): the change in the target per row for a +1 sd move of the driver in the
  recommended direction (a correlation, so an upper bound to test, not a promise);
- under-performing segment: (mean of the rest - segment mean) x segment rows: the total gained if
  the segment matched the rest; out-performing segment: the per-row gap;
- cluster: best cluster mean - overall mean, per row; trend break: the level shift per period.
Items are sorted by priority (ties by title) and then numbered `act-1`, `act-2`, ...
"""

from collections.abc import Iterable

from lockflow.common.kinds import category_facts, insight_facts
from lockflow.common.models import ActionItem, Finding, Goal, Insight
from lockflow.stats.effects import r_from_d

QUALITY_CONFIDENCE = 0.9
UNTESTED_CONFIDENCE = 0.5
ACTIONABLE_SEVERITIES = ("medium", "high")


def recommend(*, goal: Goal, unresolved_findings: list[Finding], insights: list[Insight]) -> list[ActionItem]:
    """Actions from findings and insights, highest priority first, ids assigned in that order."""
    anomaly = next((i for i in insights if i.kind == "anomaly"), None)
    # Outlier findings on the anomalous rows' leading features are the same problem seen twice.
    merged_outliers = [
        f
        for f in unresolved_findings
        if anomaly is not None and f.category == "outliers" and set(f.columns) & set(anomaly.columns)
    ]
    findings = [f for f in unresolved_findings if f not in merged_outliers]
    drafts = [*_quality_actions(findings), *_insight_actions(goal, insights, merged_outliers)]
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
    expected: tuple[float | None, str | None, str] = (None, None, ""),
    statements: list[str] | None = None,
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
        expected_impact=expected[0],
        impact_unit=expected[1],
        impact_basis=expected[2],
        evidence_statements=statements or [],
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
    what = " and ".join(category_facts(c).words for c in categories)
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
        effort=max(category_facts(c).effort for c in categories),
        statements=[f"{f.id}: {f.explanation}" for f in group],
    )


# ---- insights ----------------------------------------------------------------------------------


def _insight_actions(goal: Goal, insights: Iterable[Insight], outliers: list[Finding]) -> list[ActionItem]:
    chosen = [i for i in insights if i.significant or not insight_facts(i.kind).tested]
    levers = {i.columns[0]: i for i in chosen if i.kind == "driver"}
    joined: dict[str, list[Insight]] = {i.id: [] for i in chosen}
    standalone = []
    for insight in chosen:
        lever = (
            next((c for c in insight.columns if c in levers), None) if insight.kind == "correlation" else None
        )
        if lever is not None:
            joined[levers[lever].id].append(insight)
        else:
            standalone.append(insight)
    return [
        _insight_action(goal, i, joined[i.id], outliers if i.kind == "anomaly" else []) for i in standalone
    ]


def _insight_action(goal: Goal, insight: Insight, also: list[Insight], outliers: list[Finding]) -> ActionItem:
    p_holm = insight.numbers.get("p_holm", insight.p_value)
    if not insight_facts(insight.kind).tested or p_holm is None:
        confidence = insight.confidence if insight.confidence is not None else UNTESTED_CONFIDENCE
    else:
        confidence = 1.0 - p_holm
    statements = [f"{i.id}: {i.statement}" for i in (insight, *also)]
    statements += [f"{f.id}: {f.explanation}" for f in outliers]
    return _item(
        title=_insight_title(goal, insight),
        rationale=insight.statement,
        origin="anomaly" if insight.kind == "anomaly" else "insight",
        evidence=[insight.id, *(i.id for i in also), *(f.id for f in outliers)],
        impact=abs(
            insight.effect_size
            if insight.kind in ("driver", "correlation")
            else r_from_d(insight.effect_size)
        ),
        confidence=confidence,
        effort=insight_facts(insight.kind).effort,
        expected=expected_impact(goal, insight),
        statements=statements,
    )


def expected_impact(goal: Goal, insight: Insight) -> tuple[float | None, str | None, str]:
    """The insight's likely effect in the goal's unit: (amount, unit, how it was estimated)."""
    target, n = goal.target or "the target", insight.numbers
    up = goal.direction == "increase"
    if insight.kind == "driver" and "slope" in n and "sd_driver" in n:
        amount = abs(n["slope"] * n["sd_driver"])
        lever = insight.columns[0]
        return amount, f"`{target}` per row", f"r x sd(`{target}`): +1 sd move of `{lever}` the right way"
    if insight.kind == "segment" and {"mean_segment", "mean_rest", "n_segment"} <= n.keys():
        gap = n["mean_rest"] - n["mean_segment"]
        if (gap > 0) == up:
            return abs(gap) * n["n_segment"], f"`{target}` in total", "segment brought to the rest's mean"
        return abs(gap), f"`{target}` per row", "gap of the rest to this segment's mean"
    if insight.kind == "cluster" and {"mean_cluster", "mean_all"} <= n.keys():
        return abs(n["mean_cluster"] - n["mean_all"]), f"`{target}` per row", "best cluster vs all rows"
    if insight.kind == "trend_break" and {"mean_before", "mean_after"} <= n.keys():
        return abs(n["mean_after"] - n["mean_before"]), f"`{target}` per period", "level shift at the break"
    return None, None, ""


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
    if insight.kind == "trend_break":
        when = insight.id.removeprefix("trend_break:")
        return f"Find out what changed around {when}, when `{target}` shifted"
    if insight.kind == "anomaly":
        count = int(insight.numbers.get("count", 0))
        return f"Review the {count} anomalous rows (led by `{insight.columns[0]}`) before acting on them"
    if insight.kind == "concentration":
        return f"Focus on the top 20% of rows, which hold most of `{target}`"
    if insight.kind == "correlation":
        a, b = insight.columns[:2]
        return f"Decide whether `{a}` and `{b}` are one lever before changing either"
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
