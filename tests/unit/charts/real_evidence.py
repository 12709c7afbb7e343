"""Real evidence for the chart tests: a public dataset (vega_datasets' Seattle weather, shipped in the
package) through quality's assessment, a fix preview and analytics, as the stages compute them."""

import importlib.resources
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from lockflow.analytics.compute import analyse
from lockflow.charts.catalog import Evidence
from lockflow.common.models import AnalyticsParams, DatasetRef, Goal, InsightParams, ResolutionChoice
from lockflow.datasets.canonical import infer_schema
from lockflow.insights.find import find_insights
from lockflow.quality.detect import assess
from lockflow.quality.preview import preview


@dataclass
class RealEvidence:
    frame: pd.DataFrame
    evidence: Evidence
    preview: dict[str, Any]


def weather() -> pd.DataFrame:
    """Seattle's daily weather 2012-2015 (1,461 rows: dates, four numbers, a weather category)."""
    path = importlib.resources.files("vega_datasets") / "_data" / "seattle-weather.csv"
    with path.open() as handle:
        return pd.read_csv(handle, parse_dates=["date"])


@pytest.fixture(scope="session")
def real() -> RealEvidence:
    """The weather data's evidence: findings, scores, a preview of capping outliers, analytics, insights."""
    frame = weather()
    assessed = assess(frame=frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dataset = DatasetRef(
        uri="memory://weather", fingerprint="x", rows=len(frame), columns=infer_schema(table)
    )
    outliers = next(f for f in assessed.findings if f.category == "outliers")
    cap = next(r for r in outliers.resolutions if r.strategy == "cap_to_fences")
    choice = ResolutionChoice(finding_id=outliers.id, strategy=cap.strategy, params=cap.params)
    shown = preview(frame=frame, total_rows=len(frame), findings=assessed.findings, choices=[choice])
    params = AnalyticsParams(target="temp_max", date_column="date", resample="MS")
    result = analyse(frame=frame, params=params, target="temp_max")
    evidence = Evidence(
        dataset=dataset,
        findings=assessed.findings,
        dimensions_before=assessed.dimensions,
        dimensions_after={k: min(100.0, v + 1) for k, v in assessed.dimensions.items()},
        score_before=assessed.score,
        score_after=min(100.0, assessed.score + 1),
        analytics=result,
        quality_histograms=assessed.summary["histograms"],
        insights=find_insights(
            frame=frame, analytics=result, params=InsightParams(goal=Goal(target="temp_max"))
        ),
    )
    return RealEvidence(frame=frame, evidence=evidence, preview=shown)
