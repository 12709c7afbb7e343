"""The report as PDF: the self-contained HTML report (charts as inline SVG) printed by weasyprint."""

import weasyprint


def render_pdf(page: str) -> bytes:
    """The HTML report printed to PDF (no network: the page refers to nothing outside itself)."""
    return bytes(weasyprint.HTML(string=page, url_fetcher=_refuse).write_pdf())


def _refuse(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    # The report has no outside resources; a URL in it (from data) must not make the printer fetch.
    raise ValueError(f"the report may not load {url[:80]}")
