"""Stage 5: goal-oriented insights (drivers, segments, clusters) with their tests and ranking.

Pure: the cleaned frame, stage 4's result and `InsightParams` in, ranked `Insight`s out.

- drivers: Pearson r of each other numeric column with the target (pairwise complete rows);
  p-values Holm-corrected across all drivers.
- segments: for each categorical/boolean column with 2..30 distinct values, each value with at
  least `min_segment_rows` rows (target present) against the rest of the rows with a target
  (rows missing the segment value count as "rest"); Welch t-test, Cohen's d with the pooled
  sd; p-values Holm-corrected across all segment tests.
- cluster: the cluster with the best mean target for the goal's direction. It carries no test:
  the clusters were formed using the target, so a test against the rest would be circular.

- correlations, trend breaks, anomalies and concentration: see signals.py.

Tests run on the frame stage 5 is given (the handler reads it with stage 4's sampling, so above
`sample_rows` they run on the same sample and say so); clusters, trend breaks and anomalies
come from stage 4's result. Every tested insight carries `confidence` = 1 - p_holm; drivers a
95% Fisher-z interval for r, segments a 95% Welch interval for the mean difference (goal unit).
Drivers also carry stage 4's mutual information and permutation importance when stage 4 used
the same target, and `slope` (goal units per unit of the driver, r x sd_y / sd_x).

Ranking: score = |effect on the r scale| x relevance x (1 if significant else 0.3). Relevance is
1.0 for what calls for action toward the goal (any driver, an under-performing segment, the best
cluster) and 0.8 for an over-performing segment (a model to learn from, less urgent); other
kinds see signals.py. With a segment of interest ("column=value"), insights about that very
segment get x`SEGMENT_OF_INTEREST_BOOST` and others on the same column x`SAME_COLUMN_BOOST`.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

from lockflow.common.errors import InvalidInput
from lockflow.common.models import AnalyticsResult, Clustering, Direction, Insight, InsightParams
from lockflow.datasets.columns import as_float, column_kind, numeric_columns
from lockflow.insights.signals import (
    anomaly_insight,
    concentration_insight,
    correlation_insights,
    trend_break_insights,
)
from lockflow.stats.effects import r_from_d
from lockflow.stats.pvalues import holm

MAX_SEGMENT_VALUES = 30
NOT_SIGNIFICANT_WEIGHT = 0.3
OVER_PERFORMER_RELEVANCE = 0.8
SEGMENT_OF_INTEREST_BOOST = 1.5
SAME_COLUMN_BOOST = 1.2
Z95 = 1.959963984540054


def find_insights(*, frame: pd.DataFrame, analytics: AnalyticsResult, params: InsightParams) -> list[Insight]:
    """The top `params.top_n` insights toward the goal, best score first (none without a target)."""
    if params.goal.target is None:
        return []  # no column could be a target: the run was started knowing it (see settle_goal)
    target = _require_target(frame, params)
    found = [
        *drivers(frame=frame, target=target, alpha=params.alpha),
        *segments(
            frame=frame,
            target=target,
            direction=params.goal.direction,
            alpha=params.alpha,
            min_rows=params.min_segment_rows,
        ),
    ]
    best = best_cluster(
        clustering=analytics.clustering,
        target=target,
        direction=params.goal.direction,
        target_std=_target_std(analytics, frame, target),
    )
    if best is not None:
        found.append(best)
    found += _other_signals(frame=frame, analytics=analytics, params=params, target=target)
    found = [_with_driver_evidence(i, analytics, frame, target) if i.kind == "driver" else i for i in found]
    if params.segment_of_interest:
        found = [_focus(i, params.segment_of_interest) for i in found]
    # Ties broken by id so the order is the same on every run.
    ranked = sorted(found, key=lambda insight: (-insight.score, insight.id))
    return ranked[: params.top_n]


def _other_signals(
    *, frame: pd.DataFrame, analytics: AnalyticsResult, params: InsightParams, target: str
) -> list[Insight]:
    found = [
        *correlation_insights(
            analytics=analytics,
            target=target,
            threshold=params.min_abs_correlation,
            alpha=params.alpha,
        ),
        *trend_break_insights(
            analytics=analytics, target=target, direction=params.goal.direction, alpha=params.alpha
        ),
    ]
    anomaly = anomaly_insight(analytics=analytics, target=target)
    concentration = concentration_insight(frame=frame, target=target, seed=analytics.seed)
    return found + [i for i in (anomaly, concentration) if i is not None]


def _with_driver_evidence(
    insight: Insight, analytics: AnalyticsResult, frame: pd.DataFrame, target: str
) -> Insight:
    """Add stage 4's MI and permutation importance and the slope in goal units to a driver."""
    column = insight.columns[0]
    numbers = dict(insight.numbers)
    pair = pd.DataFrame({"x": as_float(frame[column]), "y": as_float(frame[target])}).dropna()
    sd_x, sd_y = float(pair["x"].std(ddof=1)), float(pair["y"].std(ddof=1))
    if sd_x > 0:
        numbers["slope"] = insight.effect_size * sd_y / sd_x
        numbers["sd_driver"] = sd_x
    if analytics.drivers is not None and analytics.drivers.target == target:
        for d in analytics.drivers.drivers:
            if d.column == column:
                numbers |= {
                    "mutual_info": d.mutual_info,
                    "permutation_importance": d.permutation_importance,
                    "importance_rank": float(d.rank),
                }
    return insight.model_copy(update={"numbers": numbers})


def _focus(insight: Insight, segment: str) -> Insight:
    column = segment.split("=", 1)[0]
    if insight.id == f"segment:{segment}":
        boost = SEGMENT_OF_INTEREST_BOOST
    elif column in insight.columns:
        boost = SAME_COLUMN_BOOST
    else:
        return insight
    return insight.model_copy(update={"relevance": insight.relevance * boost, "score": insight.score * boost})


def score(*, effect_size: float, relevance: float, significant: bool) -> float:
    """|effect| x relevance, discounted when the evidence is not significant (effect on the r scale)."""
    return abs(effect_size) * relevance * (1.0 if significant else NOT_SIGNIFICANT_WEIGHT)


def _require_target(frame: pd.DataFrame, params: InsightParams) -> str:
    numeric = numeric_columns(frame)
    target = params.goal.target
    listing = ", ".join(f"`{c}`" for c in numeric) or "(none)"
    if target is None:
        raise InvalidInput(f"Insights need a goal target. Choose one of the numeric columns: {listing}.")
    if target not in numeric:
        raise InvalidInput(
            f"The goal target `{target}` is not a numeric column of this data. "
            f"Choose one of the numeric columns: {listing}."
        )
    return target


# ---- drivers -----------------------------------------------------------------------------------


def drivers(*, frame: pd.DataFrame, target: str, alpha: float) -> list[Insight]:
    """One insight per numeric column correlated with the target, Holm-corrected."""
    y = as_float(frame[target])
    tests = []
    for column in numeric_columns(frame):
        if column == target:
            continue
        pair = pd.DataFrame({"x": as_float(frame[column]), "y": y}).dropna()
        if len(pair) < 3 or pair["x"].nunique() < 2 or pair["y"].nunique() < 2:
            continue
        result = stats.pearsonr(pair["x"], pair["y"])
        tests.append((column, float(result.statistic), float(result.pvalue), len(pair)))
    corrected = holm([p for _, _, p, _ in tests])
    return [
        _driver(column=c, target=target, r=r, p=p, p_holm=ph, n=n, alpha=alpha)
        for (c, r, p, n), ph in zip(tests, corrected, strict=True)
    ]


def _driver(*, column: str, target: str, r: float, p: float, p_holm: float, n: int, alpha: float) -> Insight:
    significant = p_holm < alpha
    low, high = _fisher_ci(r, n)
    way = "higher" if r >= 0 else "lower"
    caveat = "" if significant else "; not significant"
    statement = (
        f"Higher `{column}` goes with {way} `{target}` (r = {r:.2f}, n = {n}, {_p_text(p_holm)}){caveat}"
    )
    return Insight(
        id=f"driver:{column}",
        kind="driver",
        statement=statement,
        columns=[column, target],
        numbers={"r": r, "n": float(n), "p_value": p, "p_holm": p_holm},
        effect_size=r,
        p_value=p,
        significant=significant,
        relevance=1.0,
        score=score(effect_size=r, relevance=1.0, significant=significant),
        confidence=1.0 - p_holm,
        ci_low=low,
        ci_high=high,
        ci_of="Pearson r (95%, Fisher z)",
        method="Pearson r, t test, Holm-corrected over all drivers",
    )


def _fisher_ci(r: float, n: int) -> tuple[float | None, float | None]:
    if n <= 3 or abs(r) >= 1:
        return None, None
    z, half = math.atanh(r), Z95 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


# ---- segments ----------------------------------------------------------------------------------


def segments(
    *, frame: pd.DataFrame, target: str, direction: Direction, alpha: float, min_rows: int
) -> list[Insight]:
    """One insight per large-enough segment of a low-cardinality column, Holm-corrected."""
    y = as_float(frame[target])
    has_target = y.notna()
    tests: list[dict[str, float | str]] = []
    for column in frame.columns:
        if column == target or column_kind(frame[column]) not in ("categorical", "boolean"):
            continue
        labels = frame[column][has_target]
        if not 2 <= labels.nunique() <= MAX_SEGMENT_VALUES:
            continue
        for value in sorted(labels.dropna().unique(), key=str):
            test = _segment_test(y[has_target], labels == value, min_rows)
            if test is not None:
                tests.append({"column": str(column), "value": str(value), **test})
    corrected = holm([float(t["p_value"]) for t in tests])
    return [
        _segment(test=t, p_holm=ph, target=target, direction=direction, alpha=alpha)
        for t, ph in zip(tests, corrected, strict=True)
    ]


def _segment_test(y: pd.Series, inside: pd.Series, min_rows: int) -> dict[str, float] | None:
    inside = inside.fillna(False).astype(bool)
    seg, rest = y[inside], y[~inside]
    n1, n2 = len(seg), len(rest)
    if n1 < min_rows or n2 < min_rows:
        return None
    s1, s2 = float(seg.std(ddof=1)), float(rest.std(ddof=1))
    pooled = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
    if pooled == 0:
        return None
    m1, m2 = float(seg.mean()), float(rest.mean())
    test = stats.ttest_ind(seg, rest, equal_var=False)
    result = {
        "mean_segment": m1,
        "mean_rest": m2,
        "n_segment": float(n1),
        "n_rest": float(n2),
        "cohens_d": (m1 - m2) / pooled,
        "t": float(test.statistic),
        "p_value": float(test.pvalue),
    }
    if m2 != 0:
        result["diff_pct"] = (m1 - m2) / abs(m2) * 100
    # Welch 95% interval of the mean difference, in the goal's unit.
    v1, v2 = s1**2 / n1, s2**2 / n2
    dof = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)) if v1 + v2 > 0 else n1 + n2 - 2
    half = float(stats.t.ppf(0.975, dof)) * math.sqrt(v1 + v2)
    result["diff"] = m1 - m2
    result["ci_low"], result["ci_high"] = m1 - m2 - half, m1 - m2 + half
    return result


def _segment(
    *, test: dict[str, float | str], p_holm: float, target: str, direction: Direction, alpha: float
) -> Insight:
    column, value = str(test["column"]), str(test["value"])
    numbers = {k: float(v) for k, v in test.items() if k not in ("column", "value")}
    numbers["p_holm"] = p_holm
    d = numbers["cohens_d"]
    significant = p_holm < alpha
    better = (d > 0) == (direction == "increase")
    relevance = OVER_PERFORMER_RELEVANCE if better else 1.0
    verb = "out-performs" if better else "under-performs"
    diff = f"{numbers['diff_pct']:+.1f}%, " if "diff_pct" in numbers else ""
    caveat = "" if significant else "; not significant"
    statement = (
        f"Segment `{column}` = {value} {verb} on `{target}`: mean {numbers['mean_segment']:.4g} vs "
        f"{numbers['mean_rest']:.4g} in the rest ({diff}d = {d:.2f}, n = {int(numbers['n_segment'])}, "
        f"{_p_text(p_holm)}){caveat}"
    )
    return Insight(
        id=f"segment:{column}={value}",
        kind="segment",
        statement=statement,
        columns=[column, target],
        numbers=numbers,
        effect_size=d,
        p_value=numbers["p_value"],
        significant=significant,
        relevance=relevance,
        score=score(effect_size=r_from_d(d), relevance=relevance, significant=significant),
        confidence=1.0 - p_holm,
        ci_low=numbers["ci_low"],
        ci_high=numbers["ci_high"],
        ci_of=f"mean difference in `{target}`, segment minus rest (95%, Welch)",
        method="Welch t test, Holm-corrected over all segments",
    )


# ---- clusters ----------------------------------------------------------------------------------


def best_cluster(
    *, clustering: Clustering | None, target: str, direction: Direction, target_std: float | None
) -> Insight | None:
    """The cluster with the best mean target, if the clustering used the target as a feature."""
    if clustering is None or target not in clustering.features:
        return None
    profiles = [p for p in clustering.clusters if target in p.centroid and p.size > 0]
    if len(profiles) < 2:
        return None
    total = sum(p.size for p in profiles)
    mean_all = sum(p.centroid[target] * p.size for p in profiles) / total
    pick = max if direction == "increase" else min
    best = pick(profiles, key=lambda p: p.centroid[target])
    mean_best = best.centroid[target]
    # Standardised like Cohen's d: the gap to the clustered rows' mean in target sds.
    effect = (mean_best - mean_all) / target_std if target_std else 0.0
    numbers = {
        "size": float(best.size),
        "share": best.size / total,
        "mean_cluster": mean_best,
        "mean_all": mean_all,
        "std_target": float(target_std or 0.0),
    }
    if mean_all != 0:
        numbers["diff_pct"] = (mean_best - mean_all) / abs(mean_all) * 100
    word = "highest" if direction == "increase" else "lowest"
    statement = (
        f"Cluster {best.cluster} (n = {best.size}, {best.size / total:.0%} of clustered rows) has the "
        f"{word} mean `{target}`: {mean_best:.4g} vs {mean_all:.4g} over all clustered rows"
    )
    return Insight(
        id=f"cluster:{best.cluster}",
        kind="cluster",
        statement=statement,
        columns=list(clustering.features),
        numbers=numbers,
        effect_size=effect,
        p_value=None,
        significant=False,
        relevance=1.0,
        score=score(effect_size=r_from_d(effect), relevance=1.0, significant=False),
    )


def _target_std(analytics: AnalyticsResult, frame: pd.DataFrame, target: str) -> float | None:
    for column in analytics.columns:
        if column.name == target and column.std:
            return column.std
    value = float(np.nanstd(as_float(frame[target]), ddof=1)) if frame[target].notna().sum() > 1 else 0.0
    return value if math.isfinite(value) and value > 0 else None


def _p_text(p: float) -> str:
    return "p_holm < 0.001" if p < 0.001 else f"p_holm = {p:.3f}"
