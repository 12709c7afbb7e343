"""Stage 4 on synthetic data: statistics, correlations and clusters checked against pandas/scipy."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lockflow.analytics.compute import analyse
from lockflow.common.errors import InvalidInput
from lockflow.common.models import AnalyticsParams, AnalyticsResult, ColumnStats


def _mixed_frame(rows: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, rows)
    frame = pd.DataFrame(
        {
            "x": x,
            "y": 0.5 * x + rng.normal(0, 1, rows),
            "count": rng.integers(0, 50, rows),
            "constant": np.full(rows, 7.0),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kiev", "Rome", "Nice", "Bern"], rows),
            "flag": rng.random(rows) < 0.3,
            "when": pd.date_range("2024-01-01", periods=rows, freq="h"),
        }
    )
    # Planted gaps: every 10th x and every 7th city are missing.
    frame.loc[frame.index % 10 == 0, "x"] = np.nan
    frame.loc[frame.index % 7 == 0, "city"] = None
    return frame


def _stats(result: AnalyticsResult, name: str) -> ColumnStats:
    return next(c for c in result.columns if c.name == name)


def _three_blobs(seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 100.0], [10.0, 0.0, 200.0], [0.0, 10.0, 300.0]])
    sizes = [120, 90, 150]
    labels = np.repeat(np.arange(3), sizes)
    points = centres[labels] + rng.normal(0, [1.0, 1.0, 10.0], (len(labels), 3))
    return pd.DataFrame(points, columns=["a", "b", "c"]), labels


def test_numeric_stats_match_pandas() -> None:
    frame = _mixed_frame()
    result = analyse(frame=frame, params=AnalyticsParams(n_clusters=2))
    x = frame["x"].dropna()
    s = _stats(result, "x")
    assert s.kind == "numeric"
    assert (s.count, s.missing, s.distinct) == (360, 40, x.nunique())
    assert s.mean == pytest.approx(np.mean(x.to_numpy()))
    assert s.std == pytest.approx(np.std(x.to_numpy(), ddof=1))
    assert s.min == pytest.approx(x.min()) and s.max == pytest.approx(x.max())
    assert s.p25 == pytest.approx(np.percentile(x, 25))
    assert s.median == pytest.approx(np.median(x))
    assert s.p75 == pytest.approx(np.percentile(x, 75))
    assert _stats(result, "count").kind == "numeric"


def test_categorical_boolean_and_datetime_stats() -> None:
    frame = _mixed_frame()
    result = analyse(frame=frame, params=AnalyticsParams(n_clusters=2))
    city = _stats(result, "city")
    counts = frame["city"].dropna().value_counts()
    assert city.kind == "categorical"
    assert (city.count, city.missing, city.distinct) == (counts.sum(), frame["city"].isna().sum(), 7)
    assert len(city.top) == 5
    assert [n for _, n in city.top] == sorted(counts.to_numpy().tolist(), reverse=True)[:5]
    assert all(counts[value] == n for value, n in city.top)

    flag = _stats(result, "flag")
    assert flag.kind == "boolean"
    assert flag.mean == pytest.approx(frame["flag"].mean())
    assert dict(flag.top) == {"True": frame["flag"].sum(), "False": (~frame["flag"]).sum()}

    when = _stats(result, "when")
    assert when.kind == "datetime"
    assert when.min == pytest.approx(pd.Timestamp("2024-01-01").timestamp())
    assert when.max == pytest.approx(pd.Timestamp("2024-01-01").timestamp() + 3600 * 399)


def test_correlations_pairwise_complete_and_constant_skipped() -> None:
    frame = _mixed_frame()
    result = analyse(frame=frame, params=AnalyticsParams(n_clusters=2))
    pairs = {(p.a, p.b): p for p in result.correlations}
    assert set(pairs) == {("x", "y"), ("x", "count"), ("y", "count")}
    both = frame[["x", "y"]].dropna()
    expected = stats.pearsonr(both["x"], both["y"]).statistic
    assert pairs[("x", "y")].pearson == pytest.approx(expected)
    assert pairs[("x", "y")].n == len(both) == 360
    assert pairs[("y", "count")].n == 400
    assert pairs[("x", "y")].pearson > 0.5  # planted: y = 0.5 x + noise


def test_sampling_is_reported_and_reproducible() -> None:
    frame = _mixed_frame(rows=3_000)
    params = AnalyticsParams(sample_rows=1_000, random_state=42, n_clusters=2)
    result = analyse(frame=frame, params=params)
    assert (result.rows_total, result.rows_used, result.sampled, result.seed) == (3_000, 1_000, True, 42)
    sample = frame.iloc[np.random.default_rng(42).choice(3_000, size=1_000, replace=False)]
    assert _stats(result, "y").mean == pytest.approx(sample["y"].mean())
    assert analyse(frame=frame, params=params) == result

    small = analyse(frame=_mixed_frame(rows=500), params=params)
    assert (small.rows_used, small.sampled) == (500, False)


def test_three_blobs_recovered_by_silhouette() -> None:
    frame, planted = _three_blobs()
    result = analyse(frame=frame, params=AnalyticsParams(max_clusters=6, random_state=0))
    clustering = result.clustering
    assert clustering is not None
    assert (clustering.k, clustering.chosen_by) == (3, "silhouette")
    assert clustering.features == ["a", "b", "c"]
    assert clustering.silhouette is not None and clustering.silhouette > 0.7
    assert [p.cluster for p in clustering.clusters] == [0, 1, 2]
    # Centroids are in original units: they equal the planted groups' means.
    truth = frame.groupby(planted).mean()
    found = sorted((p.size, p.centroid["c"]) for p in clustering.clusters)
    expected = sorted((int((planted == g).sum()), truth.loc[g, "c"]) for g in range(3))
    assert [s for s, _ in found] == [s for s, _ in expected]
    assert [c for _, c in found] == pytest.approx([c for _, c in expected])


def test_user_k_and_features() -> None:
    frame, _ = _three_blobs()
    params = AnalyticsParams(n_clusters=2, features=["a", "b"])
    clustering = analyse(frame=frame, params=params).clustering
    assert clustering is not None
    assert (clustering.k, clustering.chosen_by, clustering.features) == (2, "user", ["a", "b"])
    assert sum(p.size for p in clustering.clusters) == len(frame)
    assert set(clustering.clusters[0].centroid) == {"a", "b"}


def test_no_clustering_when_too_little_data() -> None:
    frame, _ = _three_blobs()
    assert analyse(frame=frame.head(19), params=AnalyticsParams()).clustering is None
    one_feature = frame[["a"]].assign(k=1.0, label="x")
    assert analyse(frame=one_feature, params=AnalyticsParams()).clustering is None


def test_rows_with_missing_features_are_dropped_before_clustering() -> None:
    frame, _ = _three_blobs()
    frame.loc[:9, "a"] = np.nan
    clustering = analyse(frame=frame, params=AnalyticsParams(n_clusters=3)).clustering
    assert clustering is not None
    assert sum(p.size for p in clustering.clusters) == len(frame) - 10


def test_non_numeric_feature_is_refused() -> None:
    frame = _mixed_frame()
    with pytest.raises(InvalidInput, match="city"):
        analyse(frame=frame, params=AnalyticsParams(features=["x", "city"]))


def test_result_is_strict_json_without_nan_or_inf() -> None:
    frame = pd.DataFrame(
        {"empty": [np.nan] * 30, "inf": [np.inf] + [1.0] * 29, "one": [1.0] + [np.nan] * 29, "s": ["a"] * 30}
    )
    result = analyse(frame=frame, params=AnalyticsParams())

    def refuse(constant: str) -> float:
        raise ValueError(constant)

    json.loads(result.model_dump_json(), parse_constant=refuse)
    assert _stats(result, "empty").mean is None
    assert _stats(result, "inf").max is None
    assert _stats(result, "one").std is None
    assert all(
        v is None or math.isfinite(v)
        for v in _stats(result, "inf").model_dump().values()
        if isinstance(v, float)
    )
