"""Gate 4 at the terminal: effect, confidence with its interval, relevance, and the change since a refine."""

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from lockflow.analytics.compute import analyse
from lockflow.common.models import AnalyticsParams, Goal, InsightParams
from lockflow.gate_views import comparison_text, fmt, parse_refinement, show_insights
from lockflow.insights.find import find_insights


def _insights(top_n: int = 10) -> list[dict]:  # type: ignore[type-arg]
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x1": rng.normal(size=800), "x2": rng.normal(size=800)})
    frame["region"] = rng.choice(["north", "south"], 800)
    frame["sales"] = (
        50 + 4 * frame["x1"] - 2 * frame["x2"] - 8 * (frame["region"] == "south") + rng.normal(0, 2, 800)
    )
    analytics = analyse(frame=frame, params=AnalyticsParams(steps=[]), target="sales")
    params = InsightParams(goal=Goal(target="sales"), top_n=top_n)
    return [i.model_dump(mode="json") for i in find_insights(frame=frame, analytics=analytics, params=params)]


def _printed(ctx: dict) -> str:  # type: ignore[type-arg]
    console = Console(record=True, width=400)
    show_insights(ctx, console)
    return console.export_text()


def test_gate4_prints_effect_confidence_interval_and_relevance() -> None:
    insights = _insights()
    ctx = {
        "params": {"goal": {"target": "sales", "direction": "increase"}, "alpha": 0.05},
        "insights": insights,
    }
    text = _printed(ctx)
    assert "insights toward sales (increase), alpha 0.05" in text
    driver = next(i for i in insights if i["id"] == "driver:x1")
    row = next(line for line in text.splitlines() if " driver:x1 " in line)
    assert fmt(driver["effect_size"]) in row and f"{driver['confidence']:.1%}" in row
    assert f"[{fmt(driver['ci_low'])}, {fmt(driver['ci_high'])}]" in row and fmt(driver["relevance"]) in row
    assert "compared with the previous" not in text


def test_gate4_after_a_refine_names_what_was_added_dropped_and_reranked() -> None:
    comparison = {
        "added": ["segment:region=south"],
        "dropped": ["correlation:x1~x2"],
        "reranked": ["driver:x2"],
        "moves": {"driver:x2": [1, 3], "driver:x1": [2, 2]},
    }
    text = _printed({"params": {}, "insights": _insights(top_n=3), "comparison": comparison})
    assert comparison_text(comparison) in text.replace("\n", " ") or "added: segment:region=south" in text
    assert "dropped: correlation:x1~x2" in text and "re-ranked: driver:x2 #1->#3" in text


def test_refine_answers_are_checked() -> None:
    assert parse_refinement(target="sales", direction="decrease", extra="alpha=0.01 top_n=5") == {
        "goal": {"target": "sales", "direction": "decrease", "description": ""},
        "alpha": 0.01,
        "top_n": 5,
    }
    assert (
        parse_refinement(target="sales", direction="increase", extra="segment_of_interest=region=south")[
            "segment_of_interest"
        ]
        == "region=south"
    )
    with pytest.raises(ValueError, match=r"alpha: Input should be less than 0\.5"):
        parse_refinement(target="sales", direction="increase", extra="alpha=0.9")
    with pytest.raises(ValueError, match="unknown parameter topn"):
        parse_refinement(target="sales", direction="increase", extra="topn=3")
