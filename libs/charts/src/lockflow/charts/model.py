"""A chart: one Vega-Lite spec with the words a person (and a screen reader) needs around it."""

from dataclasses import dataclass
from typing import Any, Literal

import altair as alt

Stage = Literal["quality", "analytics", "insights"]

# Every chart kind lockflow draws; each consumer (API, HTML, Markdown, PDF) must handle each one.
KINDS: tuple[str, ...] = (
    "histogram",
    "top_categories",
    "missing_values",
    "preview_histogram",
    "quality_scores",
    "correlation_heatmap",
    "clusters",
    "drivers",
    "segments",
    "time_series",
    "insight_scores",
)
WIDTH = 360
HEIGHT = 220


@dataclass(frozen=True)
class Chart:
    """One chart of a run: its id (`kind:subject`), stage, title, description and Vega-Lite spec."""

    id: str
    kind: str
    stage: Stage
    title: str
    description: str
    spec: dict[str, Any]

    def as_item(self) -> dict[str, Any]:
        """The API's item: id, kind, stage, title, description, spec."""
        return {
            "id": self.id,
            "kind": self.kind,
            "stage": self.stage,
            "title": self.title,
            "description": self.description,
            "spec": self.spec,
        }


def make(
    chart: alt.TopLevelMixin, *, kind: str, subject: str, stage: Stage, title: str, description: str
) -> Chart:
    """Freeze an altair chart into a Chart, its title and description inside the spec too."""
    assert kind in KINDS, kind
    # Not validated here (it costs more than drawing): the tests validate every kind against the schema.
    spec = chart.properties(title=title, description=description).to_dict(validate=False)
    return Chart(
        id=f"{kind}:{subject}" if subject else kind,
        kind=kind,
        stage=stage,
        title=title,
        description=description,
        spec=spec,
    )


def values(rows: list[dict[str, Any]]) -> alt.Data:
    """Inline data: the aggregated rows a chart draws (never a dataset's raw rows)."""
    return alt.Data(values=rows)


def data_rows(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The rows of each data block of a spec, top level first, then each layer in order."""
    named = spec.get("datasets", {})
    found: list[list[dict[str, Any]]] = []

    def walk(node: dict[str, Any]) -> None:
        data = node.get("data")
        if isinstance(data, dict):
            rows = data["values"] if "values" in data else named.get(data.get("name"))
            if rows is not None:
                found.append(list(rows))
        for layer in node.get("layer", []):
            walk(layer)
        if isinstance(node.get("spec"), dict):
            walk(node["spec"])

    walk(spec)
    return found
