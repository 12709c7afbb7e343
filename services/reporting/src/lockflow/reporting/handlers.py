"""Stage 7 handlers: the final report in Markdown, JSON and HTML, stored as artifacts."""

import json

from lockflow.common.events import (
    Command,
    CompileReport,
    Event,
    ReportCompiled,
    ReportCompiledPayload,
    utcnow,
)
from lockflow.common.models import ReportRef
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.reporting.figures import draw
from lockflow.reporting.pdf import render_pdf
from lockflow.reporting.render import build_report, render_html, render_markdown

PRODUCER = "reporting"


def compile_report(command: Command, deps: StageDeps) -> Event:
    """Render the report (with its charts) from the run's results and decisions and store each format."""
    assert isinstance(command, CompileReport)
    report = build_report(payload=command.payload, run_id=command.run_id, generated_at=utcnow())
    figures = draw(command.payload, deps.artifacts)  # the PNGs the Markdown links are stored here
    report["charts"] = [
        {"id": f.chart.id, "stage": f.chart.stage, "title": f.chart.title, "png": f.png_link} for f in figures
    ]
    json_uri, _ = deps.artifacts.put_bytes(
        json.dumps(report, indent=2, sort_keys=True).encode(), suffix=".json"
    )
    md_uri, _ = deps.artifacts.put_bytes(render_markdown(report, figures).encode(), suffix=".md")
    page = render_html(report, figures)
    html_uri, _ = deps.artifacts.put_bytes(page.encode(), suffix=".html")
    pdf_uri, _ = deps.artifacts.put_bytes(render_pdf(page), suffix=".pdf")
    payload = ReportCompiledPayload(
        attempt_id=command.payload.attempt_id,
        report=ReportRef(markdown_uri=md_uri, json_uri=json_uri, html_uri=html_uri, pdf_uri=pdf_uri),
    )
    return command.follow(ReportCompiled, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"CompileReport": compile_report}
