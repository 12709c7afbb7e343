"""Quality charts: histograms with the outlier fences, top categories with proposed merges, missing
values by column, a fix preview's before/after histograms, and the quality score by dimension."""

import math
from typing import Any

import altair as alt

from lockflow.charts.model import HEIGHT, WIDTH, Chart, make, values
from lockflow.common.models import ColumnSchema, ColumnStats, Finding

TOP_SHOWN = 20  # categories per chart: the rest is one "other" bar


def _fin(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def outlier_fences(findings: list[Finding]) -> dict[str, tuple[float, float]]:
    """The Tukey fences quality found per column (from its outlier findings' details)."""
    fences = {}
    for f in findings:
        lower, upper = f.details.get("lower"), f.details.get("upper")
        if f.category == "outliers" and f.columns and lower is not None and upper is not None:
            fences[f.columns[0]] = (float(lower), float(upper))
    return fences


def proposed_merges(findings: list[Finding]) -> dict[str, dict[str, str]]:
    """Per column, the spellings quality proposes to merge (variant -> canonical)."""
    merges: dict[str, dict[str, str]] = {}
    for f in findings:
        mapping = f.details.get("mapping")
        if f.category == "inconsistent_categories" and f.columns and isinstance(mapping, dict):
            merges[f.columns[0]] = {str(k): str(v) for k, v in mapping.items()}
    return merges


def bins(edges: list[float], counts: list[int]) -> list[dict[str, Any]]:
    """Histogram rows: one per bin, [start, end) and its count."""
    return [{"start": edges[i], "end": edges[i + 1], "count": int(c)} for i, c in enumerate(counts)]


def assessed_column(name: str, hist: dict[str, Any]) -> ColumnStats:
    """A numeric column as quality's histogram describes it (before analytics has run)."""
    counts = [int(c) for c in hist.get("counts") or []]
    edges = [float(e) for e in hist.get("edges") or []]
    return ColumnStats(
        name=name,
        kind="numeric",
        count=sum(counts),
        missing=0,
        distinct=0,
        histogram_edges=edges,
        histogram_counts=counts,
    )


def histogram(col: ColumnStats, fences: tuple[float, float] | None = None, *, note: str = "") -> Chart | None:
    """A numeric column's histogram; bins beyond the outlier fences in another colour, fences as rules."""
    if col.kind != "numeric" or len(col.histogram_edges) != len(col.histogram_counts) + 1:
        return None
    rows = bins(col.histogram_edges, col.histogram_counts)
    for row in rows:
        outside = fences is not None and (row["end"] <= fences[0] or row["start"] >= fences[1])
        row["part"] = "beyond a fence" if outside else "inside the fences"
    bars = (
        alt.Chart(values(rows))
        .mark_bar()
        .encode(
            x=alt.X("start:Q", bin="binned", title=col.name),
            x2="end:Q",
            y=alt.Y("count:Q", title="rows"),
            color=alt.Color(
                "part:N",
                title=None,
                scale=alt.Scale(domain=["inside the fences", "beyond a fence"], range=["#4c78a8", "#e45756"]),
                # Without fences (no outlier finding) every bin is inside: no legend to read.
                legend=alt.Legend() if fences is not None else None,
            ),
            tooltip=["start:Q", "end:Q", "count:Q"],
        )
    )
    chart: alt.TopLevelMixin = bars
    described = f"Distribution of '{col.name}' in {len(rows)} bins ({sum(col.histogram_counts)} values{note})"
    if fences is not None:
        marks = [{"fence": "lower fence", "at": fences[0]}, {"fence": "upper fence", "at": fences[1]}]
        rules = (
            alt.Chart(values(marks))
            .mark_rule(strokeDash=[4, 3], color="#222")
            .encode(x="at:Q", tooltip=["fence:N", "at:Q"])
        )
        chart = alt.layer(bars, rules)
        described += f"; the Tukey outlier fences at {fences[0]:.4g} and {fences[1]:.4g} are dashed lines"
    return make(
        chart.properties(width=WIDTH, height=HEIGHT),
        kind="histogram",
        subject=col.name,
        stage="quality",
        title=f"{col.name}: distribution",
        description=described + ".",
    )


def top_categories(col: ColumnStats, merges: dict[str, str] | None = None) -> Chart | None:
    """A categorical column's most common values; a spelling quality proposes to merge is marked."""
    # All values distinct (dates as text, ids): a bar per value says nothing.
    if col.kind not in ("categorical", "boolean") or not col.top or col.top[0][1] < 2:
        return None
    merges = merges or {}
    shown = col.top[:TOP_SHOWN]
    rows = [
        {
            "value": str(v),
            "count": int(n),
            "merge": f"merge into '{merges[str(v)]}'" if str(v) in merges else "kept",
        }
        for v, n in shown
    ]
    bars = (
        alt.Chart(values(rows))
        .mark_bar()
        .encode(
            y=alt.Y("value:N", sort="-x", title=col.name),
            x=alt.X("count:Q", title="rows"),
            color=alt.Color("merge:N", title="proposed"),
            tooltip=["value:N", "count:Q", "merge:N"],
        )
        .properties(width=WIDTH, height=max(80, 18 * len(rows)))
    )
    marked = sum(1 for r in rows if r["merge"] != "kept")
    return make(
        bars,
        kind="top_categories",
        subject=col.name,
        stage="quality",
        title=f"{col.name}: top categories",
        description=f"The {len(rows)} most common of {col.distinct} values of '{col.name}'"
        + (f"; {marked} spellings quality proposes to merge are coloured apart." if marked else "."),
    )


def missing_values(columns: list[ColumnSchema], rows: int) -> Chart | None:
    """Missing values per column of the data quality judged (every column, zeros too)."""
    if not columns:
        return None
    data = [
        {"column": c.name, "missing": c.null_count, "share": c.null_count / rows if rows else 0.0}
        for c in columns
    ]
    bars = (
        alt.Chart(values(data))
        .mark_bar(color="#f58518")
        .encode(
            y=alt.Y("column:N", sort="-x", title=None),
            x=alt.X("missing:Q", title="missing values"),
            tooltip=["column:N", "missing:Q", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(width=WIDTH, height=max(80, 16 * len(data)))
    )
    worst = max(columns, key=lambda c: c.null_count)
    return make(
        bars,
        kind="missing_values",
        subject="",
        stage="quality",
        title="Missing values by column",
        description=f"Missing values in each of {len(data)} columns ({rows} rows); the most: "
        f"'{worst.name}' with {worst.null_count}.",
    )


def preview_histogram(column: str, before: dict[str, Any], after: dict[str, Any]) -> Chart | None:
    """A fix preview's before/after histograms of one column, on the same bins."""
    edges = before.get("edges") or []
    if len(edges) < 2:
        return None
    rows = [
        {**row, "version": version}
        for version, side in (("before", before), ("after", after))
        for row in bins(edges, side.get("counts") or [])
    ]
    bars = (
        alt.Chart(values(rows))
        .mark_bar(opacity=0.8)
        .encode(
            x=alt.X("start:Q", bin="binned", title=column),
            x2="end:Q",
            y=alt.Y("count:Q", title="rows"),
            color=alt.Color("version:N", sort=["before", "after"], title=None),
            row=alt.Row("version:N", sort=["before", "after"], title=None),
            tooltip=["version:N", "start:Q", "end:Q", "count:Q"],
        )
        .properties(width=WIDTH, height=HEIGHT // 2)
    )
    return make(
        bars,
        kind="preview_histogram",
        subject=column,
        stage="quality",
        title=f"{column}: before and after the fixes",
        description=f"Distribution of '{column}' before ({sum(before.get('counts') or [])} values) and "
        f"after ({sum(after.get('counts') or [])} values) the chosen fixes, on the same "
        f"{len(edges) - 1} bins.",
    )


def quality_scores(
    before: dict[str, float],
    after: dict[str, float] | None,
    *,
    score_before: float | None = None,
    score_after: float | None = None,
) -> Chart | None:
    """The quality score by dimension (and overall), before and, once fixes were applied, after."""
    if not before:
        return None
    data = [{"dimension": d, "version": "before", "score": _fin(s)} for d, s in sorted(before.items())]
    if score_before is not None:
        data.append({"dimension": "overall", "version": "before", "score": _fin(score_before)})
    if after:
        data += [{"dimension": d, "version": "after", "score": _fin(s)} for d, s in sorted(after.items())]
        if score_after is not None:
            data.append({"dimension": "overall", "version": "after", "score": _fin(score_after)})
    bars = (
        alt.Chart(values(data))
        .mark_bar()
        .encode(
            x=alt.X("dimension:N", title=None, sort=[*sorted(before), "overall"]),
            xOffset=alt.XOffset("version:N", sort=["before", "after"]),
            y=alt.Y("score:Q", title="score", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("version:N", sort=["before", "after"], title=None),
            tooltip=["dimension:N", "version:N", alt.Tooltip("score:Q", format=".1f")],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return make(
        bars,
        kind="quality_scores",
        subject="",
        stage="quality",
        title="Quality score by dimension",
        description="Quality score (0-100) of each dimension"
        + (" before and after the fixes." if after else " as assessed (no fixes applied)."),
    )
