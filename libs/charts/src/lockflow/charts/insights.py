"""Insight charts: the insights ranked by score, significant ones marked, intervals in the tooltip."""

import altair as alt

from lockflow.charts.model import WIDTH, Chart, make, values
from lockflow.common.kinds import insight_label
from lockflow.common.models import Insight

SHOWN = 15


def insight_scores(insights: list[Insight]) -> Chart | None:
    """The top insights by score; colour says whether each is statistically significant."""
    if not insights:
        return None
    ranked = sorted(insights, key=lambda i: -i.score)[:SHOWN]
    rows = [
        {
            "insight": f"{n}. {insight_label(i.kind)}: {', '.join(i.columns)}"[:80],
            "statement": i.statement[:300],
            "score": i.score,
            "effect_size": i.effect_size,
            "significant": "significant" if i.significant else "not significant",
            "ci": f"[{i.ci_low:.4g}, {i.ci_high:.4g}] of {i.ci_of}"
            if i.ci_low is not None and i.ci_high is not None
            else "-",
        }
        for n, i in enumerate(ranked, start=1)
    ]
    bars = (
        alt.Chart(values(rows))
        .mark_bar()
        .encode(
            y=alt.Y("insight:N", sort=[str(r["insight"]) for r in rows], title=None),
            x=alt.X("score:Q", title="score"),
            color=alt.Color(
                "significant:N",
                scale=alt.Scale(domain=["significant", "not significant"], range=["#4c78a8", "#bab0ac"]),
                title=None,
            ),
            tooltip=["statement:N", "score:Q", "effect_size:Q", "ci:N"],
        )
        .properties(width=WIDTH, height=max(80, 20 * len(rows)))
    )
    return make(
        bars,
        kind="insight_scores",
        subject="",
        stage="insights",
        title="Insights by score",
        description=f"The {len(rows)} highest-scoring of {len(insights)} insights; grey ones are not "
        "statistically significant.",
    )
