"""Analytics charts: the correlation heatmap, clusters, drivers, segment differences with intervals,
and the time series with its trend and change points."""

import math
from typing import Any

import altair as alt

from lockflow.charts.model import HEIGHT, WIDTH, Chart, make, values
from lockflow.common.models import Clustering, CorrelationPair, DriverAnalysis, SegmentComparison, TimeSeries

HEATMAP_COLUMNS = 20  # the columns with the strongest pairs; a bigger matrix is unreadable anyway
SERIES_POINTS = 1_000  # the latest periods shown; older ones are left out (and the description says so)
Z95 = 1.959964


def correlation_heatmap(pairs: list[CorrelationPair]) -> Chart | None:
    """Pearson r between numeric columns as a symmetric matrix (the diagonal is 1)."""
    finite = [p for p in pairs if math.isfinite(p.pearson)]
    if not finite:
        return None
    strength: dict[str, float] = {}
    for p in finite:
        for c in (p.a, p.b):
            strength[c] = max(strength.get(c, 0.0), abs(p.pearson))
    kept = sorted(sorted(strength, key=lambda c: (-strength[c], c))[:HEATMAP_COLUMNS])
    cells = [{"a": c, "b": c, "r": 1.0} for c in kept]
    for p in finite:
        if p.a in kept and p.b in kept:
            cells += [
                {"a": p.a, "b": p.b, "r": p.pearson, "n": p.n},
                {"a": p.b, "b": p.a, "r": p.pearson, "n": p.n},
            ]
    base = alt.Chart(values(cells)).encode(
        x=alt.X("a:N", title=None, sort=kept), y=alt.Y("b:N", title=None, sort=kept)
    )
    heat = base.mark_rect().encode(
        color=alt.Color(
            "r:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1], reverse=True), title="Pearson r"
        ),
        tooltip=["a:N", "b:N", alt.Tooltip("r:Q", format=".3f"), "n:Q"],
    )
    text = base.mark_text(fontSize=9).encode(text=alt.Text("r:Q", format=".2f"))
    side = max(WIDTH // 2, 22 * len(kept))
    return make(
        alt.layer(heat, text).properties(width=side, height=side),
        kind="correlation_heatmap",
        subject="",
        stage="analytics",
        title="Correlations",
        description=f"Pearson correlation between {len(kept)} numeric columns"
        + (f" (the {HEATMAP_COLUMNS} with the strongest pairs)" if len(strength) > len(kept) else "")
        + "; red is positive, blue negative.",
    )


def clusters(clustering: Clustering) -> Chart | None:
    """The clusters' centres on their first two features, each point as big as its cluster."""
    if len(clustering.features) < 2 or not clustering.clusters:
        return None
    fx, fy = clustering.features[:2]
    rows = [
        {"cluster": str(c.cluster), "size": c.size, "x": c.centroid.get(fx), "y": c.centroid.get(fy)}
        for c in clustering.clusters
    ]
    points = (
        alt.Chart(values(rows))
        .mark_circle(opacity=0.8)
        .encode(
            x=alt.X("x:Q", title=fx, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title=fy, scale=alt.Scale(zero=False)),
            size=alt.Size("size:Q", title="rows", scale=alt.Scale(range=[60, 1200])),
            color=alt.Color("cluster:N"),
            tooltip=["cluster:N", "size:Q", alt.Tooltip("x:Q", title=fx), alt.Tooltip("y:Q", title=fy)],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    chosen = "chosen by silhouette" if clustering.chosen_by == "silhouette" else "set by the user"
    return make(
        points,
        kind="clusters",
        subject="",
        stage="analytics",
        title=f"Clusters (k = {clustering.k})",
        description=f"The centres of {clustering.k} clusters ({chosen}) on '{fx}' and '{fy}' (feature "
        "means; each circle's area is the cluster's size).",
    )


def drivers(analysis: DriverAnalysis) -> Chart | None:
    """Permutation importance of each driver of the target, with its spread over repeats."""
    if not analysis.drivers:
        return None
    rows = [
        {
            "column": d.column,
            "importance": d.permutation_importance,
            "low": d.permutation_importance - d.permutation_std,
            "high": d.permutation_importance + d.permutation_std,
            "mutual_info": d.mutual_info,
            "rank": d.rank,
        }
        for d in sorted(analysis.drivers, key=lambda d: d.rank)
    ]
    order = [str(r["column"]) for r in rows]
    base = alt.Chart(values(rows)).encode(y=alt.Y("column:N", sort=order, title=None))
    bars = base.mark_bar(color="#54a24b").encode(
        x=alt.X("importance:Q", title=f"permutation importance for '{analysis.target}'"),
        tooltip=["column:N", "rank:Q", alt.Tooltip("importance:Q", format=".4f"), "mutual_info:Q"],
    )
    spread = base.mark_rule(color="#222").encode(x="low:Q", x2="high:Q")
    return make(
        alt.layer(bars, spread).properties(width=WIDTH, height=max(80, 20 * len(rows))),
        kind="drivers",
        subject=analysis.target,
        stage="analytics",
        title=f"Drivers of {analysis.target}",
        description=f"How much the {analysis.model} model's score drops when each column is shuffled "
        "(permutation importance, the line is one standard deviation over repeats).",
    )


def _interval(mean: float, mean_rest: float, d: float | None, n: int) -> tuple[float | None, float | None]:
    """95% interval of a group's mean from the pooled sd implied by Cohen's d (|mean - rest| / |d|)."""
    if d is None or d == 0 or n < 2 or not math.isfinite(d):
        return None, None
    half = Z95 * abs(mean - mean_rest) / abs(d) / math.sqrt(n)
    return mean - half, mean + half


def segments(comparison: SegmentComparison) -> Chart | None:
    """The target's mean per value of one categorical column, with 95% intervals."""
    if not comparison.groups:
        return None
    rows: list[dict[str, Any]] = []
    for g in comparison.groups:
        low, high = _interval(g.mean, g.mean_rest, g.cohens_d, g.n)
        rows.append({"value": g.value, "n": g.n, "mean": g.mean, "low": low, "high": high, "d": g.cohens_d})
    order = [r["value"] for r in rows]
    base = alt.Chart(values(rows)).encode(y=alt.Y("value:N", sort=order, title=comparison.column))
    points = base.mark_point(filled=True, size=60).encode(
        x=alt.X("mean:Q", title=f"mean {comparison.target}", scale=alt.Scale(zero=False)),
        tooltip=["value:N", "n:Q", alt.Tooltip("mean:Q", format=".4g"), "low:Q", "high:Q", "d:Q"],
    )
    bars = base.mark_rule().encode(x="low:Q", x2="high:Q")
    p = f"p = {comparison.p_value:.3g}" if comparison.p_value is not None else "no p-value"
    return make(
        alt.layer(bars, points).properties(width=WIDTH, height=max(80, 20 * len(rows))),
        kind="segments",
        subject=comparison.column,
        stage="analytics",
        title=f"{comparison.target} by {comparison.column}",
        description=f"Mean of '{comparison.target}' for each value of '{comparison.column}' with a 95% "
        f"interval (from the pooled standard deviation); eta squared {comparison.eta_squared:.3f}, {p}.",
    )


def trend_line(values_: list[float | None], slope: float) -> tuple[float, float] | None:
    """The least-squares line (intercept, slope) through the finite values, as analytics fitted it."""
    points = [(i, v) for i, v in enumerate(values_) if v is not None and math.isfinite(v)]
    if len(points) < 2:
        return None
    mx = sum(i for i, _ in points) / len(points)
    my = sum(v for _, v in points) / len(points)
    return my - slope * mx, slope


def time_series(series: TimeSeries) -> Chart | None:
    """The resampled series, its linear trend and its change points (dated rules)."""
    if not series.periods:
        return None
    start = max(0, len(series.periods) - SERIES_POINTS)
    line = trend_line(series.values, series.trend_slope) if series.trend_slope is not None else None
    rows = [
        {
            "period": series.periods[i].isoformat(),
            "value": series.values[i],
            "trend": line[0] + line[1] * i if line else None,
        }
        for i in range(start, len(series.periods))
    ]
    label = f"{series.aggregate} of {series.value}" if series.aggregate == "mean" else "rows"
    base = alt.Chart(values(rows)).encode(x=alt.X("period:T", title=series.date_column))
    layers: list[alt.Chart] = [
        base.mark_line(point=len(rows) <= 60).encode(
            y=alt.Y("value:Q", title=label), tooltip=["period:T", alt.Tooltip("value:Q", format=".4g")]
        )
    ]
    if line:
        layers.append(base.mark_line(strokeDash=[6, 4], color="#e45756").encode(y="trend:Q"))
    changes = [
        {"at": c.at.isoformat(), "before": c.mean_before, "after": c.mean_after, "p": c.p_value}
        for c in series.change_points
    ]
    if changes:
        layers.append(
            alt.Chart(values(changes))
            .mark_rule(color="#f58518", strokeWidth=2)
            .encode(x="at:T", tooltip=["at:T", "before:Q", "after:Q", "p:Q"])
        )
    shown = f"the last {len(rows)} of {len(series.periods)}" if start else f"{len(rows)}"
    trend = f"; trend {series.trend_slope:.4g} per period (dashed)" if line else ""
    return make(
        alt.layer(*layers).properties(width=WIDTH * 2, height=HEIGHT),
        kind="time_series",
        subject=series.value,
        stage="analytics",
        title=f"{label} over time",
        description=f"The {label} per period ({shown} periods, {series.freq}){trend}; "
        f"{len(changes)} change points (orange lines).",
    )
