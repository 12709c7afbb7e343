"""The reports embed every chart: HTML inline SVG (offline, nothing fetched), Markdown linked PNGs
stored beside it, a PDF printed from the HTML; every chart kind handled by every consumer.

The real report of the weather evidence is kept in tests/artifacts/charts/ (gitignored) to look at.
"""

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from real_evidence import RealEvidence

from lockflow.charts.catalog import charts_of
from lockflow.charts.model import KINDS
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.events import CompileReportPayload
from lockflow.common.models import Goal, SourceSpec
from lockflow.gateway.charts import ChartItem
from lockflow.reporting.figures import SECTION_OF_STAGE, Figure, draw
from lockflow.reporting.pdf import render_pdf
from lockflow.reporting.render import build_report, render_html, render_markdown

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "charts"


def payload_of(real: RealEvidence) -> CompileReportPayload:
    ev = real.evidence
    assert ev.dataset is not None and ev.analytics is not None
    return CompileReportPayload(
        attempt_id="a1",
        name="Seattle weather",
        source=SourceSpec(path="seattle-weather.csv", format="csv"),
        goal=Goal(target="temp_max"),
        dataset_ingested=ev.dataset,
        dataset_final=ev.dataset,
        findings=ev.findings,
        applied=[],
        score_before=ev.score_before or 0.0,
        score_after=ev.score_after or 0.0,
        analytics=ev.analytics,
        insights=ev.insights,
        plan=[],
        decisions=[],
        requested_by="ana",
        dimensions_before=ev.dimensions_before,
        dimensions_after=ev.dimensions_after,
    )


@pytest.fixture(scope="module")
def rendered(real: RealEvidence, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    store = LocalArtifactStore(tmp_path_factory.mktemp("store"))
    payload = payload_of(real)
    started = time.perf_counter()
    figures = draw(payload, store)
    report = build_report(payload=payload, run_id="run-1", generated_at=datetime(2026, 1, 1, tzinfo=UTC))
    page = render_html(report, figures)
    markdown = render_markdown(report, figures)
    md_uri, _ = store.put_bytes(markdown.encode(), suffix=".md")
    pdf = render_pdf(page)
    seconds = time.perf_counter() - started
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.html").write_text(page)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    # Beside its PNGs, which test_markdown_links_pngs_stored_beside_it copies there.
    (ARTIFACTS / "report.md").write_text(re.sub(r"\.\./[0-9a-f]{2}/", "", markdown))
    return {
        "figures": figures,
        "page": page,
        "markdown": markdown,
        "md_path": store.path_of(md_uri),
        "pdf": pdf,
        "seconds": seconds,
    }


def test_every_kind_is_handled_by_every_consumer(real: RealEvidence, rendered: dict[str, object]) -> None:
    figures: list[Figure] = rendered["figures"]  # type: ignore[assignment]
    assert {f.chart.kind for f in figures} | {"preview_histogram"} == set(KINDS)
    assert {f.chart.stage for f in figures} <= set(SECTION_OF_STAGE)
    page, markdown = str(rendered["page"]), str(rendered["markdown"])
    for figure in figures:
        ChartItem(**figure.chart.as_item())  # the API's item
        assert f'data-chart="{figure.chart.id}"' in page
        assert f"({figure.png_link})" in markdown
    assert page.count("<svg") == len(figures) == len(charts_of(real.evidence))


def test_html_report_is_self_contained_and_readable_offline(rendered: dict[str, object]) -> None:
    page = str(rendered["page"])
    assert "<script" not in page and "src=" not in page and "<link" not in page
    # The gateway serves the page with a CSP that allows only its hashed <style> block: no style="".
    assert "style=" not in page
    refs = re.findall(r'(?:xlink:)?href="([^"]*)"', page)
    assert all(r.startswith("#") for r in refs), refs
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the charts' gradients and clips do not collide


def test_markdown_links_pngs_stored_beside_it(rendered: dict[str, object]) -> None:
    md_path: Path = rendered["md_path"]  # type: ignore[assignment]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", str(rendered["markdown"]))
    assert links
    for link in links:
        png = (md_path.parent / link).resolve()
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
        (ARTIFACTS / png.name).write_bytes(png.read_bytes())


def test_pdf_export_prints_the_charts(rendered: dict[str, object]) -> None:
    pdf: bytes = rendered["pdf"]  # type: ignore[assignment]
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) > 50_000  # the vector charts are in it, not only the tables
    print(f"report with {len(rendered['figures'])} charts drawn and rendered in {rendered['seconds']:.1f}s")  # type: ignore[arg-type]
