"""Data text at the terminal is shown as it is: brackets in column names are not rich markup.

A column named `[/x]` made rich raise MarkupError (a traceback at the gate) and `weight [kg]` lost
its unit silently. Every gate view and the preview print the data's own names here, from stages'
real results on such a frame.
"""

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from rich.console import Console

from lockflow import cli_run
from lockflow.analytics.compute import analyse
from lockflow.common.models import AnalyticsParams, Goal, InsightParams, ResolutionChoice
from lockflow.datasets.canonical import infer_schema
from lockflow.gate_views import show_actions, show_analytics, show_insights, show_quality
from lockflow.insights.find import find_insights
from lockflow.orchestrator.gate_context import quality_finding
from lockflow.quality.detect import assess
from lockflow.quality.preview import preview
from lockflow.recommendations.plan import recommend

CLOSING = "[/x]spend"
UNIT = "weight [kg]"
STYLE = "[bold]region"


def bracketed(rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({CLOSING: rng.normal(100, 20, rows), UNIT: rng.normal(70, 10, rows)})
    frame[STYLE] = rng.choice(["[red]north", "south"], rows)
    frame["day"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 200, rows), unit="D")
    frame["sales"] = 5 * frame[CLOSING] - 40 * (frame[STYLE] == "south") + rng.normal(0, 10, rows)
    frame.loc[rng.choice(rows, 200, replace=False), UNIT] = np.nan
    return frame


def printed(show: Any, *args: Any) -> str:
    out = io.StringIO()
    show(*args, Console(file=out, width=400, color_system=None))
    return out.getvalue()


def test_every_gate_shows_bracketed_names_as_they_are() -> None:
    frame = bracketed()
    schema = infer_schema(pa.Table.from_pandas(frame, preserve_index=False))
    gate1 = printed(
        cli_run.show_context,
        {
            "gate": "source_review",
            "context": {"rows": len(frame), "schema": [c.model_dump() for c in schema]},
        },
    )
    assert CLOSING in gate1 and UNIT in gate1 and STYLE in gate1

    findings = assess(frame=frame).findings
    assert any(f.columns == [UNIT] for f in findings)
    gate2 = printed(show_quality, {"score": 90.0, "findings": [quality_finding(f) for f in findings]})
    assert f"missing_values:{UNIT}" in gate2

    analytics = analyse(frame=frame, params=AnalyticsParams(), target="sales")
    gate3 = printed(show_analytics, {"analytics": analytics.model_dump(mode="json")})
    assert CLOSING in gate3 and UNIT in gate3

    insights = find_insights(
        frame=frame, analytics=analytics, params=InsightParams(goal=Goal(target="sales"))
    )
    gate4 = printed(show_insights, {"params": {}, "insights": [i.model_dump(mode="json") for i in insights]})
    assert f"driver:{CLOSING}" in gate4

    items = recommend(goal=Goal(target="sales"), unresolved_findings=findings, insights=insights)
    gate5 = printed(show_actions, {"items": [i.model_dump(mode="json") for i in items]})
    assert f"`{CLOSING}`" in gate5 and f"`{UNIT}`" in gate5


def test_the_preview_shows_bracketed_names_and_values_as_they_are() -> None:
    frame = bracketed()
    findings = assess(frame=frame).findings
    missing = next(f for f in findings if f.id == f"missing_values:{UNIT}")
    choices = [ResolutionChoice(finding_id=missing.id, strategy="impute_median")]
    result = preview(frame=frame, total_rows=len(frame), findings=findings, choices=choices)

    def show(request: dict[str, Any], console: Console) -> None:
        assert cli_run._show_preview(request, {}, lambda **_: result, console)

    text = printed(show, {"id": "req-1"})
    assert f"{missing.id} (Missing values): impute_median" in text and f"{UNIT} " in text
