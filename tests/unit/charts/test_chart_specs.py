"""Every chart kind from real evidence: a valid Vega-Lite spec whose numbers are the evidence's."""

import json
import math
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
from real_evidence import RealEvidence

from lockflow.charts import analytics, insights, quality
from lockflow.charts.catalog import charts_of, preview_charts
from lockflow.charts.model import KINDS, Chart, data_rows
from lockflow.common.models import ColumnStats

MAX_SPEC_BYTES = 64_000  # aggregated data only: a spec never grows with the dataset's rows


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        (files("altair") / "vegalite" / "v6" / "schema" / "vega-lite-schema.json").read_text()
    )
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)  # type: ignore[no-any-return]


def _all(real: RealEvidence) -> list[Chart]:
    return charts_of(real.evidence) + preview_charts(real.preview)


def _rows(chart: Chart, index: int = 0) -> list[dict[str, Any]]:
    return data_rows(chart.spec)[index]


def _one(charts: list[Chart], chart_id: str) -> Chart:
    return next(c for c in charts if c.id == chart_id)


def test_every_kind_is_built_from_real_evidence_and_is_valid_vega_lite(
    real: RealEvidence, validator: jsonschema.protocols.Validator
) -> None:
    charts = _all(real)
    assert {c.kind for c in charts} == set(KINDS)
    assert len({c.id for c in charts}) == len(charts)
    for chart in charts:
        errors = list(validator.iter_errors(chart.spec))
        assert not errors, f"{chart.id}: {errors[0].message}"
        assert chart.spec["title"] == chart.title and chart.spec["description"] == chart.description
        assert chart.stage in ("quality", "analytics", "insights")
        assert len(json.dumps(chart.spec)) < MAX_SPEC_BYTES, chart.id


def test_stage_filter_keeps_only_that_stage(real: RealEvidence) -> None:
    for stage in ("quality", "analytics", "insights"):
        charts = charts_of(real.evidence, stage=stage)
        assert charts and {c.stage for c in charts} == {stage}
    assert charts_of(real.evidence, stage="reporting") == []


def test_histogram_bins_are_the_profiles_bins_and_the_fences_are_qualitys(real: RealEvidence) -> None:
    result = real.evidence.analytics
    assert result is not None
    fences = quality.outlier_fences(real.evidence.findings)
    assert fences, "the weather data has outliers"
    charts = charts_of(real.evidence)
    for col in (c for c in result.columns if c.kind == "numeric"):
        chart = _one(charts, f"histogram:{col.name}")
        bars = _rows(chart)
        assert [b["count"] for b in bars] == col.histogram_counts
        assert [b["start"] for b in bars] + [bars[-1]["end"]] == col.histogram_edges
        if col.name in fences:
            rules = _rows(chart, 1)
            assert [r["at"] for r in rules] == list(fences[col.name])
            low, high = fences[col.name]
            beyond = [b for b in bars if b["part"] == "beyond a fence"]
            assert all(b["end"] <= low or b["start"] >= high for b in beyond)


def test_before_analytics_the_histograms_are_qualitys_profile_of_every_row(real: RealEvidence) -> None:
    from dataclasses import replace

    assessed = real.evidence.quality_histograms
    assert set(assessed) == {"precipitation", "temp_max", "temp_min", "wind"}
    charts = charts_of(replace(real.evidence, analytics=None), stage="quality")
    for name, hist in assessed.items():
        assert hist["exact"]  # 1,461 rows fit quality's sample: these are the counts of every row
        bars = _rows(_one(charts, f"histogram:{name}"))
        assert [b["count"] for b in bars] == hist["counts"]
        assert sum(hist["counts"]) == real.frame[name].notna().sum()
        assert bars[0]["start"] == real.frame[name].min() and bars[-1]["end"] == real.frame[name].max()


def test_heatmap_cells_are_the_correlations(real: RealEvidence) -> None:
    result = real.evidence.analytics
    assert result is not None
    cells = _rows(_one(charts_of(real.evidence), "correlation_heatmap"))
    by_pair = {(c["a"], c["b"]): c["r"] for c in cells}
    for pair in result.correlations:
        if math.isfinite(pair.pearson):
            assert by_pair[(pair.a, pair.b)] == pair.pearson == by_pair[(pair.b, pair.a)]
    assert all(by_pair[(c, c)] == 1.0 for c, _ in by_pair)


def test_missing_scores_clusters_drivers_segments_series_and_insights_draw_the_evidence(
    real: RealEvidence,
) -> None:
    ev, charts = real.evidence, charts_of(real.evidence)
    result = ev.analytics
    assert result is not None and ev.dataset is not None
    missing = {r["column"]: r["missing"] for r in _rows(_one(charts, "missing_values"))}
    assert missing == {c.name: c.null_count for c in ev.dataset.columns}
    scores = {(r["dimension"], r["version"]): r["score"] for r in _rows(_one(charts, "quality_scores"))}
    assert all(scores[(d, "before")] == s for d, s in ev.dimensions_before.items())
    assert all(scores[(d, "after")] == s for d, s in ev.dimensions_after.items())
    assert scores[("overall", "before")] == ev.score_before
    assert result.clustering is not None
    sizes = {r["cluster"]: r["size"] for r in _rows(_one(charts, "clusters"))}
    assert sizes == {str(c.cluster): c.size for c in result.clustering.clusters}
    assert result.drivers is not None
    bars = {r["column"]: r["importance"] for r in _rows(_one(charts, "drivers:temp_max"))}
    assert bars == {d.column: d.permutation_importance for d in result.drivers.drivers}
    segment = result.segments[0]
    points = _rows(_one(charts, f"segments:{segment.column}"))
    assert [p["mean"] for p in points] == [g.mean for g in segment.groups]
    assert all(p["low"] is None or p["low"] <= p["mean"] <= p["high"] for p in points)
    series = result.time_series
    assert series is not None
    line = _rows(_one(charts, f"time_series:{series.value}"))
    assert [p["value"] for p in line] == series.values
    assert [p["period"] for p in line] == [d.isoformat() for d in series.periods]
    scored = _rows(_one(charts, "insight_scores"))
    assert [r["score"] for r in scored] == sorted((i.score for i in ev.insights), reverse=True)[
        : insights.SHOWN
    ]


def test_trend_line_is_the_least_squares_fit_analytics_made(real: RealEvidence) -> None:
    from scipy import stats

    series = real.evidence.analytics.time_series  # type: ignore[union-attr]
    assert series is not None and series.trend_slope is not None
    fit = stats.linregress(range(len(series.values)), series.values)
    intercept, slope = analytics.trend_line(series.values, series.trend_slope)  # type: ignore[misc]
    assert intercept == pytest.approx(fit.intercept) and slope == pytest.approx(fit.slope)


def test_preview_histograms_count_the_values_before_and_after(real: RealEvidence) -> None:
    charts = preview_charts(real.preview)
    assert charts
    for chart in charts:
        column = chart.id.split(":", 1)[1]
        rows = _rows(chart)
        before = sum(r["count"] for r in rows if r["version"] == "before")
        after = sum(r["count"] for r in rows if r["version"] == "after")
        assert before == real.frame[column].notna().sum()
        assert after == real.preview["columns"][column]["after"]["count"]


def test_top_categories_mark_the_proposed_merges() -> None:
    col = ColumnStats(
        name="city",
        kind="categorical",
        count=9,
        missing=0,
        distinct=3,
        top=[("Paris", 5), ("paris", 3), ("Rome", 1)],
    )
    chart = quality.top_categories(col, {"paris": "Paris"})
    assert chart is not None
    marks = {r["value"]: r["merge"] for r in _rows(chart)}
    assert marks == {"Paris": "kept", "paris": "merge into 'Paris'", "Rome": "kept"}


def test_the_variants_the_weather_data_lacks_are_valid_too(validator: jsonschema.protocols.Validator) -> None:
    from datetime import date

    from lockflow.common.models import ChangePoint, TimeSeries

    periods = [date(2024, m, 1) for m in range(1, 13)]
    series = TimeSeries(
        date_column="day",
        value="sales",
        aggregate="mean",
        freq="MS",
        periods=periods,
        values=[1.0, 2.0, None, 2.5, 9.0, 9.5, 10.0, 9.0, 11.0, 10.5, 12.0, 11.0],
        trend_slope=0.9,
        change_points=[
            ChangePoint(
                at=date(2024, 5, 1),
                mean_before=1.8,
                mean_after=10.3,
                p_value=0.001,
                periods_before=4,
                periods_after=8,
            )
        ],
    )
    chart = analytics.time_series(series)
    assert chart is not None
    assert not list(validator.iter_errors(chart.spec))
    assert [r["at"] for r in _rows(chart, -1)] == ["2024-05-01"]
    merged = quality.top_categories(
        ColumnStats(name="c", kind="categorical", count=5, missing=0, distinct=2, top=[("A", 3), ("a", 2)]),
        {"a": "A"},
    )
    assert merged is not None and not list(validator.iter_errors(merged.spec))
