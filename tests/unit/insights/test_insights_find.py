"""Stage 5 on planted signals: drivers, segments and clusters checked against scipy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lockflow.analytics.compute import analyse
from lockflow.common.errors import InvalidInput
from lockflow.common.models import AnalyticsParams, AnalyticsResult, Goal, Insight, InsightParams
from lockflow.insights.find import find_insights
from lockflow.stats.effects import r_from_d
from lockflow.stats.pvalues import holm

NOISE = [f"noise{i}" for i in range(8)]


def _no_analytics(frame: pd.DataFrame) -> AnalyticsResult:
    return AnalyticsResult(
        rows_total=len(frame),
        rows_used=len(frame),
        sampled=False,
        seed=0,
        columns=[],
        correlations=[],
        clustering=None,
        params=AnalyticsParams(),
    )


def _params(target: str | None = "target", direction: str = "increase", **kwargs: float) -> InsightParams:
    return InsightParams(goal=Goal(target=target, direction=direction), **kwargs)  # type: ignore[arg-type]


def _drivers_frame(seed: int = 7, rows: int = 1_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows)})
    for name in NOISE:
        frame[name] = rng.normal(size=rows)
    frame["target"] = 3 * frame["x1"] - 2 * frame["x2"] + rng.normal(0, 1, rows)
    return frame


def _segment_frame(seed: int = 11, rows: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], rows)
    base = rng.normal(100, 10, rows)
    # Planted: the south sells 30% less than everyone else.
    sales = np.where(region == "south", base * 0.7, base)
    return pd.DataFrame({"region": region, "channel": rng.choice(["web", "shop"], rows), "sales": sales})


def _by_id(insights: list[Insight]) -> dict[str, Insight]:
    return {i.id: i for i in insights}


def _holm_reference(p: list[float]) -> list[float]:
    # Textbook definition, written independently: max over smaller-or-equal p of min(1, (m - rank) p).
    m = len(p)
    ranks = np.argsort(p)
    position = {int(index): rank for rank, index in enumerate(ranks)}
    return [
        max(min(1.0, (m - position[j]) * p[j]) for j in range(m) if position[j] <= position[i])
        for i in range(m)
    ]


def test_holm_on_known_example() -> None:
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> raised to 0.06 (monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
    p = list(np.random.default_rng(0).uniform(0, 0.2, 25))
    assert holm(p) == pytest.approx(_holm_reference(p))


def test_planted_drivers_rank_first_and_are_significant() -> None:
    frame = _drivers_frame()
    insights = find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(top_n=20))
    assert [i.id for i in insights[:2]] == ["driver:x1", "driver:x2"]
    found = _by_id(insights)
    assert found["driver:x1"].significant and found["driver:x2"].significant
    assert found["driver:x1"].effect_size > 0 > found["driver:x2"].effect_size
    assert "Higher `x2` goes with lower `target`" in found["driver:x2"].statement

    # Numbers against scipy, with Holm over the 10 driver tests.
    columns = ["x1", "x2", *NOISE]
    raw = [stats.pearsonr(frame[c], frame["target"]) for c in columns]
    corrected = _holm_reference([float(t.pvalue) for t in raw])
    for column, test, p_holm in zip(columns, raw, corrected, strict=True):
        insight = found[f"driver:{column}"]
        assert insight.numbers["r"] == pytest.approx(test.statistic)
        assert insight.p_value == pytest.approx(test.pvalue)
        assert insight.numbers["p_holm"] == pytest.approx(p_holm)
        assert insight.numbers["n"] == 1_000
        assert insight.score == pytest.approx(abs(test.statistic) * (1.0 if p_holm < 0.05 else 0.3))


def test_pure_noise_gives_no_significant_driver() -> None:
    frame = _drivers_frame(seed=2024)
    frame["target"] = np.random.default_rng(99).normal(size=len(frame))
    insights = find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(top_n=20))
    drivers = [i for i in insights if i.kind == "driver"]
    assert len(drivers) == 10
    assert not any(i.significant for i in drivers)


def test_pairwise_complete_rows_for_drivers() -> None:
    frame = _drivers_frame()
    frame.loc[:99, "x1"] = np.nan
    insight = _by_id(find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(top_n=20)))[
        "driver:x1"
    ]
    both = frame[["x1", "target"]].dropna()
    assert insight.numbers["n"] == 900
    assert insight.numbers["r"] == pytest.approx(stats.pearsonr(both["x1"], both["target"]).statistic)


def test_planted_under_performing_segment() -> None:
    frame = _segment_frame()
    insights = find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(target="sales"))
    top = insights[0]
    assert top.id == "segment:region=south"
    assert top.significant
    assert top.numbers["diff_pct"] == pytest.approx(-30, abs=3)
    assert top.relevance == 1.0
    assert "under-performs" in top.statement

    south = frame["region"] == "south"
    seg, rest = frame.loc[south, "sales"], frame.loc[~south, "sales"]
    welch = stats.ttest_ind(seg, rest, equal_var=False)
    n1, n2 = len(seg), len(rest)
    pooled = math.sqrt(((n1 - 1) * seg.var() + (n2 - 1) * rest.var()) / (n1 + n2 - 2))
    assert top.numbers["mean_segment"] == pytest.approx(seg.mean())
    assert top.numbers["mean_rest"] == pytest.approx(rest.mean())
    assert top.p_value == pytest.approx(welch.pvalue)
    assert top.effect_size == pytest.approx((seg.mean() - rest.mean()) / pooled)
    assert top.numbers["diff_pct"] == pytest.approx((seg.mean() - rest.mean()) / rest.mean() * 100)
    # Holm across all 6 segment tests (4 regions + 2 channels).
    assert {i.id for i in insights if i.kind == "segment"} == {
        "segment:region=north",
        "segment:region=south",
        "segment:region=east",
        "segment:region=west",
        "segment:channel=web",
        "segment:channel=shop",
    }
    assert top.numbers["p_holm"] == pytest.approx(min(1.0, 6 * welch.pvalue))
    assert not _by_id(insights)["segment:channel=web"].significant


def test_segment_relevance_follows_direction() -> None:
    frame = _segment_frame()
    params = _params(target="sales", direction="decrease")
    south = _by_id(find_insights(frame=frame, analytics=_no_analytics(frame), params=params))[
        "segment:region=south"
    ]
    # Selling less is "better" for a decrease goal: an out-performer, slightly less urgent.
    assert south.relevance == 0.8
    assert "out-performs" in south.statement
    assert south.score == pytest.approx(abs(r_from_d(south.effect_size)) * 0.8)


def test_small_segments_and_high_cardinality_are_skipped() -> None:
    frame = _segment_frame(rows=400)
    frame["id"] = [f"c{i}" for i in range(len(frame))]
    frame.loc[:9, "region"] = "tiny"
    params = _params(target="sales", min_segment_rows=30, top_n=50)
    ids = {i.id for i in find_insights(frame=frame, analytics=_no_analytics(frame), params=params)}
    assert "segment:region=tiny" not in ids
    assert not any(i.startswith("segment:id=") for i in ids)


def test_best_cluster_per_direction() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], [100, 80, 120])
    centres = np.array([[0.0, 0.0, 10.0], [8.0, 0.0, 50.0], [0.0, 8.0, 30.0]])
    frame = pd.DataFrame(centres[labels] + rng.normal(0, 1, (300, 3)), columns=["a", "b", "target"])
    analytics = analyse(frame=frame, params=AnalyticsParams(n_clusters=3))
    assert analytics.clustering is not None
    profiles = analytics.clustering.clusters
    top = max(profiles, key=lambda p: p.centroid["target"])
    bottom = min(profiles, key=lambda p: p.centroid["target"])

    up = _by_id(find_insights(frame=frame, analytics=analytics, params=_params()))[f"cluster:{top.cluster}"]
    assert up.numbers["mean_cluster"] == pytest.approx(frame.loc[labels == 1, "target"].mean())
    assert up.numbers["size"] == 80
    assert up.numbers["mean_all"] == pytest.approx(frame["target"].mean())
    assert up.effect_size == pytest.approx(
        (up.numbers["mean_cluster"] - frame["target"].mean()) / frame["target"].std()
    )
    assert (up.p_value, up.significant) == (None, False)

    down_ids = {
        i.id for i in find_insights(frame=frame, analytics=analytics, params=_params(direction="decrease"))
    }
    assert f"cluster:{bottom.cluster}" in down_ids
    assert f"cluster:{top.cluster}" not in down_ids


def test_top_n_and_stable_order() -> None:
    frame = _drivers_frame()
    first = find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(top_n=3))
    assert len(first) == 3
    assert [i.score for i in first] == sorted((i.score for i in first), reverse=True)
    assert find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(top_n=3)) == first


@pytest.mark.parametrize("target", ["missing", "label"])
def test_target_must_be_numeric(target: str) -> None:
    frame = _drivers_frame().assign(label="a")
    with pytest.raises(InvalidInput, match=r"numeric columns: `x1`, `x2`"):
        find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(target=target))


def test_no_target_finds_nothing_to_aim_at_instead_of_failing_the_stage() -> None:
    # A run starts without a target only when no column could be one (settle_goal says why).
    frame = _drivers_frame().assign(label="a")
    assert find_insights(frame=frame, analytics=_no_analytics(frame), params=_params(target=None)) == []


def test_r_from_d_puts_segments_on_the_correlation_scale() -> None:
    # d = 2r / sqrt(1 - r^2) for two equal groups, so the inverse must give r back.
    for r in (0.1, 0.5, -0.8):
        d = 2 * r / (1 - r * r) ** 0.5
        assert r_from_d(d) == pytest.approx(r)
    assert abs(r_from_d(50.0)) < 1.0
