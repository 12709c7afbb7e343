"""Stage 4-5 on data where the truth is planted: drivers, a weak segment, a trend break, 3 clusters,
1% anomalies, and pure noise. Numbers are checked against pandas/scipy computed here."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lockflow.analytics.anomalies import detect
from lockflow.analytics.compute import analyse
from lockflow.analytics.timeseries import time_series
from lockflow.common.models import AnalyticsParams, Goal, InsightParams
from lockflow.insights.find import find_insights

NOISE = [f"n{i}" for i in range(8)]


def _drivers(seed: int = 4, rows: int = 3_000, noise_only: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in ["x1", "x2", *NOISE]})
    signal = 0.0 if noise_only else 3 * frame["x1"] - 2 * frame["x2"]
    frame["target"] = signal + rng.normal(0, 1, rows)
    return frame


def test_two_true_drivers_of_ten_rank_first_by_importance_and_mutual_information() -> None:
    result = analyse(frame=_drivers(), params=AnalyticsParams(steps=["drivers"]), target="target")
    assert result.drivers is not None and result.drivers.target == "target"
    ranked = [d.column for d in result.drivers.drivers]
    assert set(ranked[:2]) == {"x1", "x2"} and len(ranked) == 10
    by_mi = sorted(result.drivers.drivers, key=lambda d: -d.mutual_info)
    assert {d.column for d in by_mi[:2]} == {"x1", "x2"}
    assert result.drivers.holdout_r2 is not None and result.drivers.holdout_r2 > 0.8
    # Heavy parts not asked for are not computed.
    assert result.clustering is None and result.anomalies is None and result.parts[-1] == "drivers"


def test_pure_noise_has_no_important_driver_and_no_significant_insight() -> None:
    frame = _drivers(seed=8, noise_only=True)
    result = analyse(frame=frame, params=AnalyticsParams(steps=["drivers"]), target="target")
    assert result.drivers is not None
    assert max(d.permutation_importance for d in result.drivers.drivers) < 0.05
    insights = find_insights(frame=frame, analytics=result, params=InsightParams(goal=Goal(target="target")))
    assert not any(i.significant for i in insights if i.kind == "driver")


def test_segment_thirty_percent_below_with_effect_sizes_against_pandas() -> None:
    rng = np.random.default_rng(11)
    region = rng.choice(["north", "south", "east", "west"], 2_000)
    sales = rng.normal(100, 10, 2_000) * np.where(region == "south", 0.7, 1.0)
    frame = pd.DataFrame({"region": region, "sales": sales})
    result = analyse(frame=frame, params=AnalyticsParams(steps=["segments"]), target="sales")
    comparison = result.segments[0]
    south = next(g for g in comparison.groups if g.value == "south")
    inside = frame["region"] == "south"
    assert south.mean == pytest.approx(frame.loc[inside, "sales"].mean())
    assert south.diff_pct == pytest.approx(
        (frame.loc[inside, "sales"].mean() / frame.loc[~inside, "sales"].mean() - 1) * 100
    )
    assert south.diff_pct == pytest.approx(-30, abs=3)
    groups = [frame.loc[frame["region"] == v, "sales"] for v in sorted(set(region))]
    assert comparison.p_value == pytest.approx(stats.f_oneway(*groups).pvalue, abs=1e-12)
    grand = frame["sales"].mean()
    eta2 = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / ((frame["sales"] - grand) ** 2).sum()
    assert comparison.eta_squared == pytest.approx(eta2)
    insight = find_insights(frame=frame, analytics=result, params=InsightParams(goal=Goal(target="sales")))[0]
    assert insight.id == "segment:region=south" and insight.significant
    # The Welch interval of the difference, in the goal's unit, contains the planted -30 units.
    assert insight.ci_low is not None and insight.ci_high is not None
    assert insight.ci_low < -30 * 1.0 + 5 and insight.ci_low < insight.numbers["diff"] < insight.ci_high


def _daily(break_at: dt.date | None, days: int = 200, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D").repeat(20)
    level = 100 + 0.02 * np.arange(len(dates)) / 20
    if break_at is not None:
        level = level - 15 * (dates >= pd.Timestamp(break_at))
    return pd.DataFrame({"day": dates, "sales": level + rng.normal(0, 10, len(dates))})


def test_trend_break_found_at_the_planted_date_and_not_on_a_smooth_trend() -> None:
    planted = dt.date(2024, 4, 15)
    series = time_series(frame=_daily(planted), target="sales", column=None, freq=None)
    assert series is not None and series.freq == "W" and series.date_column == "day"
    assert len(series.change_points) >= 1
    found = series.change_points[0]
    assert abs((found.at - planted).days) <= 7
    assert found.mean_after < found.mean_before and found.p_value < 0.01
    weekly = _daily(planted).set_index("day")["sales"].resample("W").mean()
    assert series.values == pytest.approx(list(weekly))
    smooth = time_series(frame=_daily(None), target="sales", column=None, freq=None)
    assert smooth is not None and smooth.change_points == []
    assert smooth.trend_slope is not None and smooth.trend_slope > 0


def test_trend_break_becomes_an_insight() -> None:
    frame = _daily(dt.date(2024, 4, 15))
    result = analyse(frame=frame, params=AnalyticsParams(steps=["time_series"]), target="sales")
    insights = find_insights(frame=frame, analytics=result, params=InsightParams(goal=Goal(target="sales")))
    breaks = [i for i in insights if i.kind == "trend_break"]
    assert breaks and breaks[0].significant and "dropped" in breaks[0].statement


def test_three_clusters_recovered() -> None:
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    labels = np.repeat([0, 1, 2], [300, 200, 250])
    frame = pd.DataFrame(centres[labels] + rng.normal(0, 1, (750, 2)), columns=["a", "b"])
    result = analyse(frame=frame, params=AnalyticsParams(steps=["clustering"]))
    assert result.clustering is not None and result.clustering.k == 3
    assert sorted(c.size for c in result.clustering.clusters) == pytest.approx([200, 250, 300], abs=5)


def test_one_percent_anomalies_caught_with_stated_precision_and_recall() -> None:
    rng = np.random.default_rng(21)
    rows = 5_000
    frame = pd.DataFrame(rng.normal(0, 1, (rows, 4)), columns=["a", "b", "c", "d"])
    planted = rng.choice(rows, size=rows // 100, replace=False)
    frame.loc[planted, ["a", "c"]] += rng.choice([-6.0, 6.0], size=(len(planted), 2))
    found, mask = detect(frame=frame, features=None, contamination=0.01, seed=0)
    truth = pd.Series(False, index=frame.index)
    truth[planted] = True
    tp = int((mask & truth).sum())
    precision, recall = tp / int(mask.sum()), tp / len(planted)
    print(f"anomalies: precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.8 and recall >= 0.8
    assert found is not None and found.count == int(mask.sum())
    assert set(list(found.feature_shift)[:2]) == {"a", "c"}


def test_spearman_cramers_v_correlation_ratio_and_histograms_against_scipy() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=500)
    colour = rng.choice(["red", "blue", "green"], 500)
    size = np.where(colour == "red", rng.choice(["S", "M"], 500), rng.choice(["M", "L"], 500))
    frame = pd.DataFrame({"x": x, "y": np.exp(x) + rng.normal(0, 0.1, 500), "colour": colour, "size": size})
    result = analyse(frame=frame, params=AnalyticsParams(histogram_bins=7, steps=[]))
    pair = result.correlations[0]
    assert pair.spearman == pytest.approx(stats.spearmanr(frame["x"], frame["y"]).statistic)
    v = next(a for a in result.associations if a.measure == "cramers_v")
    table = pd.crosstab(frame["colour"], frame["size"]).to_numpy()
    assert v.value == pytest.approx(stats.contingency.association(table, method="cramer"))
    eta = next(a for a in result.associations if a.a == "colour" and a.b == "x")
    groups = [frame.loc[frame["colour"] == c, "x"] for c in ["red", "blue", "green"]]
    assert eta.p_value == pytest.approx(stats.f_oneway(*groups).pvalue)
    counts, edges = np.histogram(frame["x"], bins=7)
    col = next(c for c in result.columns if c.name == "x")
    assert col.histogram_counts == list(counts) and col.histogram_edges == pytest.approx(list(edges))


def _precision_recall(mask: pd.Series, planted: np.ndarray) -> tuple[float, float]:
    truth = pd.Series(False, index=mask.index)
    truth[planted] = True
    tp = int((mask & truth).sum())
    return tp / max(1, int(mask.sum())), tp / len(planted)


def test_anomalies_on_two_of_many_mixed_features_are_still_caught() -> None:
    # Blobs, a skewed column and a target built from other columns dilute IsolationForest's splits;
    # the Mahalanobis detector sees the joint shape, and the larger robust z of the two wins.
    rng = np.random.default_rng(6)
    rows = 20_000
    frame = pd.DataFrame(rng.normal(size=(rows, 8)), columns=[f"x{i}" for i in range(8)])
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    frame[["c1", "c2"]] = centres[rng.integers(0, 3, rows)] + rng.normal(0, 1, (rows, 2))
    frame["spend"] = rng.lognormal(3, 0.5, rows)
    frame["y"] = 3 * frame["x0"] - 2 * frame["x1"] + rng.normal(0, 1, rows)
    planted = rng.choice(rows, size=rows // 100, replace=False)
    frame.loc[planted, ["x5", "x6"]] += rng.choice([-8.0, 8.0], size=(len(planted), 2))
    _, mask = detect(frame=frame, features=None, contamination=0.01, seed=0)
    precision, recall = _precision_recall(mask, planted)
    print(f"mixed anomalies: precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.9 and recall >= 0.9


def test_anomalies_between_clusters_are_caught_by_the_isolation_part() -> None:
    # Rows in the empty space between three blobs sit near the overall mean: no distance from the
    # centre finds them, IsolationForest does.
    rng = np.random.default_rng(4)
    rows = 20_000
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    frame = pd.DataFrame(centres[rng.integers(0, 3, rows)] + rng.normal(0, 1, (rows, 2)), columns=["p", "q"])
    planted = rng.choice(rows, size=rows // 100, replace=False)
    frame.loc[planted, ["p", "q"]] = rng.uniform(2.5, 5.5, (len(planted), 2))
    _, mask = detect(frame=frame, features=None, contamination=0.01, seed=0)
    precision, recall = _precision_recall(mask, planted)
    print(f"between-cluster anomalies: precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.4 and recall >= 0.4
