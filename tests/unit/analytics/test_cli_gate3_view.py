"""Gate 3 at the terminal: every analysis part a person needs to decide is printed, from the data."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import stats

from lockflow.analytics.compute import analyse
from lockflow.common.models import AnalyticsParams
from lockflow.gate_views import fmt, parse_analytics_params, show_analytics

ROWS, SAMPLE, SEED = 3_000, 1_000, 7
BREAK = dt.date(2024, 3, 1)


def _planted() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x1": rng.normal(size=ROWS), "x2": rng.normal(size=ROWS)})
    frame["region"] = rng.choice(["north", "south"], ROWS)
    frame["tier"] = np.where(frame["region"] == "south", "b", rng.choice(["a", "b"], ROWS))
    frame["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 120, ROWS), unit="D")
    level = np.where(frame["day"] >= pd.Timestamp(BREAK), 40.0, 0.0)
    frame["sales"] = 100 + 10 * frame["x1"] + level + rng.normal(0, 3, ROWS)
    return frame


def _printed(ctx: dict) -> str:  # type: ignore[type-arg]
    console = Console(record=True, width=220)
    show_analytics(ctx, console)
    return console.export_text()


def test_gate3_prints_sampling_cache_correlations_clusters_anomalies_drivers_and_breaks() -> None:
    frame = _planted()
    params = AnalyticsParams(sample_rows=SAMPLE, random_state=SEED, resample="W")
    result = analyse(frame=frame, params=params, target="sales")
    ctx = {
        "analytics": result.model_dump(mode="json"),
        "cached": False,
        "parts_cached": ["describe", "correlations"],
    }
    text = _printed(ctx)
    assert f"{SAMPLE:,} of {ROWS:,} rows" in text and f"seed {SEED}" in text
    assert "from cache: describe, correlations; computed now: associations" in text
    # The strongest pair, checked against scipy on the very rows that were sampled.
    used = frame.iloc[np.sort(np.random.default_rng(SEED).choice(ROWS, size=SAMPLE, replace=False))]
    r = stats.pearsonr(used["x1"], used["sales"]).statistic
    rho = stats.spearmanr(used["x1"], used["sales"]).statistic
    assert any(
        fmt(float(r)) in line and fmt(float(rho)) in line for line in text.splitlines() if "x1" in line
    )
    assert "Cramér's V" in text or "correlation ratio" in text
    assert result.clustering is not None and f"clusters: k={result.clustering.k}" in text
    assert result.anomalies is not None
    assert f"anomalies: {result.anomalies.count} of {SAMPLE} rows" in text
    assert "drivers of sales" in text
    top_driver = result.drivers.drivers[0].column if result.drivers else None
    assert top_driver in {"x1", "day"}
    assert result.time_series is not None and result.time_series.change_points
    assert f"trend break at {result.time_series.change_points[0].at}" in text
    assert "segments" in text and "region" in text


def test_gate3_says_when_everything_came_from_cache() -> None:
    result = analyse(frame=_planted().head(200), params=AnalyticsParams(steps=[]), target="sales")
    ctx = {"analytics": result.model_dump(mode="json"), "cached": True, "parts_cached": result.parts}
    text = _printed(ctx)
    assert "served from cache: all 3 parts (describe, correlations, associations)" in text
    assert "All 200 rows were used" in text


def test_modify_answers_are_checked_with_a_message_naming_the_parameter() -> None:
    assert parse_analytics_params("3") == {"n_clusters": 3}
    assert parse_analytics_params("contamination=0.05 features=x1+x2 target=sales") == {
        "contamination": 0.05,
        "features": ["x1", "x2"],
        "target": "sales",
    }
    with pytest.raises(ValueError, match="n_clusters: Input should be greater than or equal to 2"):
        parse_analytics_params("0")
    with pytest.raises(ValueError, match=r"contamination: Input should be less than or equal to 0\.5"):
        parse_analytics_params("contamination=2")
    with pytest.raises(ValueError, match="unknown parameter clusters"):
        parse_analytics_params("clusters=3")
    with pytest.raises(ValueError, match="'k' is not key=value"):
        parse_analytics_params("k")
