"""The report's charts: lockflow.charts' specs from the report's payload, drawn without a browser.

The HTML report carries each chart as inline SVG (readable offline, no script, no fetch); the Markdown
report links a PNG stored beside it in the artifact store; the PDF is the HTML printed by weasyprint.
"""

import re
from dataclasses import dataclass

from lockflow.charts.catalog import Evidence, charts_of
from lockflow.charts.model import Chart
from lockflow.charts.render import svg_to_png, to_svg
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.events import CompileReportPayload

# Which report section shows a stage's charts (the section titles of render._sections).
SECTION_OF_STAGE = {"quality": "Data quality", "analytics": "Analytics", "insights": "Insights"}
_IDS = re.compile(r'\bid="([^"]+)"')


@dataclass(frozen=True)
class Figure:
    """A chart as the reports show it: inline SVG for HTML/PDF, a relative PNG link for Markdown."""

    chart: Chart
    svg: str
    png_link: str | None = None


def evidence_of(payload: CompileReportPayload) -> Evidence:
    """The evidence a report payload carries, as the charts library reads it."""
    return Evidence(
        dataset=payload.dataset_ingested,
        findings=payload.findings,
        dimensions_before=payload.dimensions_before,
        dimensions_after=payload.dimensions_after,
        score_before=payload.score_before,
        score_after=payload.score_after if payload.applied else None,
        analytics=payload.analytics,
        insights=payload.insights,
    )


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG fit to sit inline among others: its ids (gradients, clips) prefixed so none collide."""
    ids = set(_IDS.findall(svg))
    for name in sorted(ids, key=len, reverse=True):
        svg = svg.replace(f'id="{name}"', f'id="{prefix}-{name}"').replace(f"#{name})", f"#{prefix}-{name})")
    return svg


def beside(digest: str, suffix: str) -> str:
    """The link from one artifact to another in the same store: both lie at <root>/<sha[:2]>/<sha><suffix>."""
    return f"../{digest[:2]}/{digest}{suffix}"


def draw(payload: CompileReportPayload, artifacts: ArtifactStore | None = None) -> list[Figure]:
    """Every chart the payload supports, as SVG; with a store, each PNG stored too (for Markdown)."""
    figures = []
    for n, chart in enumerate(charts_of(evidence_of(payload))):
        svg = to_svg(chart.spec)
        link = None
        if artifacts is not None:
            _, digest = artifacts.put_bytes(svg_to_png(svg), suffix=".png")
            link = beside(digest, ".png")
        figures.append(Figure(chart=chart, svg=inline_svg(svg, f"c{n}"), png_link=link))
    return figures
