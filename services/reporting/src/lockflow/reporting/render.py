"""Stage 7: the final report of a run, as a JSON-safe dict and rendered as Markdown and HTML.

Every number is copied from the CompileReportPayload; nothing is recomputed here. Both renderers
walk the same list of sections, so the Markdown and the HTML always say the same thing.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockflow.common.events import CompileReportPayload
from lockflow.common.kinds import category_facts, category_label, insight_label, strategy_facts
from lockflow.common.models import AppliedResolution, CorrelationPair, DatasetRef, DecisionRecord
from lockflow.reporting.figures import SECTION_OF_STAGE, Figure

TOP_CORRELATIONS = 10
_NEWLINES = re.compile(r"\r\n|\r|\n")


def build_report(*, payload: CompileReportPayload, run_id: str, generated_at: datetime) -> dict[str, Any]:
    """The whole report as plain JSON-safe values, one key per section."""
    report = {
        "run": {
            "id": run_id,
            "name": payload.name,
            "requested_by": payload.requested_by,
            "generated_at": generated_at.isoformat(),
            "judged_as_of": payload.judged_as_of.isoformat() if payload.judged_as_of else None,
        },
        "source": payload.source.model_dump(mode="json"),
        "goal": payload.goal.model_dump(mode="json"),
        "dataset": {
            "ingested": {**_dataset(payload.dataset_ingested), "duplicate_rows": _duplicate_rows(payload)},
            "final": _dataset(payload.dataset_final),
        },
        "quality": _quality(payload),
        "analytics": _analytics(payload),
        "insights": _insights(payload),
        "plan": _plan(payload),
        "decisions": [_decision(d) for d in payload.decisions],
    }
    return _json_safe(report)  # type: ignore[no-any-return]


def _dataset(ref: DatasetRef) -> dict[str, Any]:
    return {
        "uri": ref.uri,
        "fingerprint": ref.fingerprint,
        "rows": ref.rows,
        "columns": [c.model_dump(mode="json") for c in ref.columns],
    }


def _duplicate_rows(payload: CompileReportPayload) -> int:
    """Exact repeats of an earlier row in the ingested data, as stage 3 counted them (0: no finding)."""
    return next((f.count for f in payload.findings if f.category == "duplicate_rows"), 0)


def _quality(payload: CompileReportPayload) -> dict[str, Any]:
    findings = [
        {
            "id": f.id,
            "category": f.category,
            "label": category_label(f.category),
            "dimension": f.dimension,
            "severity": f.severity,
            "columns": list(f.columns),
            "count": f.count,
            "share": f.share,
            "explanation": f.explanation,
        }
        for f in payload.findings
    ]
    return {
        "score_before": payload.score_before,
        "score_after": payload.score_after,
        "findings": findings,
        "applied": [_applied(a) for a in payload.applied],
    }


def _applied(applied: AppliedResolution) -> dict[str, Any]:
    """What a fix did, with what the fix is and how risky it was (from the strategies table)."""
    facts = strategy_facts(applied.strategy)
    return {**applied.model_dump(mode="json"), "description": facts.description, "risk": facts.risk}


def _analytics(payload: CompileReportPayload) -> dict[str, Any]:
    result = payload.analytics
    clustering = result.clustering
    return {
        "rows_total": result.rows_total,
        "rows_used": result.rows_used,
        "sampled": result.sampled,
        "seed": result.seed,
        "params": result.params.model_dump(mode="json"),
        "columns": [c.model_dump(mode="json") for c in result.columns],
        "top_correlations": [c.model_dump(mode="json") for c in top_correlations(result.correlations)],
        "clustering": None
        if clustering is None
        else {
            "k": clustering.k,
            "chosen_by": clustering.chosen_by,
            "silhouette": clustering.silhouette,
            "features": list(clustering.features),
            "clusters": [c.model_dump(mode="json") for c in clustering.clusters],
        },
    }


def top_correlations(pairs: list[CorrelationPair], limit: int = TOP_CORRELATIONS) -> list[CorrelationPair]:
    """The strongest pairs by |r|, ties broken by name so the order is stable; NaN never ranks."""
    finite = [p for p in pairs if math.isfinite(p.pearson)]
    return sorted(finite, key=lambda p: (-abs(p.pearson), p.a, p.b))[:limit]


def _insights(payload: CompileReportPayload) -> list[dict[str, Any]]:
    # Sorted by score, stable, so equal scores keep the order the insights stage chose.
    ranked = sorted(payload.insights, key=lambda i: -i.score)
    return [
        {
            "rank": rank,
            "id": i.id,
            "kind": i.kind,
            "label": insight_label(i.kind),
            "statement": i.statement,
            "columns": list(i.columns),
            "numbers": dict(i.numbers),
            "effect_size": i.effect_size,
            "p_value": i.p_value,
            "significant": i.significant,
            "score": i.score,
        }
        for rank, i in enumerate(ranked, start=1)
    ]


def _plan(payload: CompileReportPayload) -> list[dict[str, Any]]:
    return [
        {
            "rank": p.rank,
            "id": p.item.id,
            "title": p.item.title,
            "rationale": p.item.rationale,
            "origin": p.item.origin,
            "priority": p.item.priority,
            "impact": p.item.impact,
            "confidence": p.item.confidence,
            "effort": p.item.effort,
            "owner": p.owner,
            "due": p.due.isoformat() if p.due else None,
            "evidence": list(p.item.evidence),
        }
        for p in sorted(payload.plan, key=lambda p: p.rank)
    ]


def _decision(record: DecisionRecord) -> dict[str, Any]:
    return {
        "gate": record.gate,
        "option": record.option,
        "params": record.model_dump(mode="json")["params"],
        "decided_by": record.decided_by,
        "decided_at": record.decided_at.isoformat(),
        "rationale": record.rationale,
    }


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON; they become None (shown as a dash)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ---- sections shared by both renderers --------------------------------------------------------


@dataclass
class _Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class _Section:
    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[_Table] = field(default_factory=list)


def _sections(report: dict[str, Any]) -> list[_Section]:
    return [
        _run_section(report),
        _dataset_section(report["dataset"]),
        _quality_section(report["quality"]),
        _analytics_section(report["analytics"]),
        _insights_section(report["insights"]),
        _plan_section(report["plan"]),
        _decisions_section(report["decisions"]),
    ]


def _run_section(report: dict[str, Any]) -> _Section:
    run, source, goal = report["run"], report["source"], report["goal"]
    target = goal.get("target") or "none"
    lines = [
        f"Run: {run['id']}",
        f"Requested by: {run['requested_by']}",
        f"Generated at: {run['generated_at']}",
        f"Data judged as of: {run.get('judged_as_of') or 'the day it was assessed (not recorded)'}",
        f"Source: {source['path']} (format: {source.get('format') or 'detected'})",
        f"Goal: {goal['direction']} {target}"
        + (f": {goal['description']}" if goal.get("description") else ""),
    ]
    return _Section("Run", lines=lines)


def _dataset_section(dataset: dict[str, Any]) -> _Section:
    rows = [
        [label, _num(ref["rows"]), _num(len(ref["columns"])), ref["fingerprint"]]
        for label, ref in (("ingested", dataset["ingested"]), ("final", dataset["final"]))
    ]
    columns = [
        [c["name"], c["dtype"], _num(c["null_count"]), ", ".join(c["examples"])]
        for c in dataset["final"]["columns"]
    ]
    return _Section(
        "Dataset",
        tables=[
            _Table(["Version", "Rows", "Columns", "Fingerprint"], rows),
            _Table(["Column", "Type", "Nulls", "Examples"], columns, caption="Final columns"),
        ],
    )


def _quality_section(quality: dict[str, Any]) -> _Section:
    findings = [
        [
            f["id"],
            category_label(f["category"]),
            f.get("dimension") or category_facts(f["category"]).dimension,
            f["severity"],
            ", ".join(f["columns"]),
            _num(f["count"]),
            _pct(f["share"]),
            f.get("explanation") or "",
        ]
        for f in quality["findings"]
    ]
    applied = [
        [
            a["finding_id"],
            a["strategy"],
            strategy_facts(a["strategy"]).description,
            strategy_facts(a["strategy"]).risk,
            _num(a["rows_removed"]),
            _num(a["cells_changed"]),
            a["note"],
        ]
        for a in quality["applied"]
    ]
    finding_headers = ["Finding", "Category", "Dimension", "Severity", "Columns", "Count", "Share", "Why"]
    applied_headers = ["Finding", "Fix", "What it does", "Risk", "Rows removed", "Cells changed", "Note"]
    return _Section(
        "Data quality",
        lines=[f"Score before: {_num(quality['score_before'])}; after: {_num(quality['score_after'])}"],
        tables=[
            _Table(finding_headers, findings, "Findings"),
            _Table(applied_headers, applied, "Applied"),
        ],
    )


def _analytics_section(analytics: dict[str, Any]) -> _Section:
    stats = [
        [
            c["name"],
            c["kind"],
            _num(c["count"]),
            _num(c["missing"]),
            _num(c["distinct"]),
            _num(c["mean"]),
            _num(c["std"]),
            _num(c["min"]),
            _num(c["median"]),
            _num(c["max"]),
        ]
        for c in analytics["columns"]
    ]
    correlations = [[p["a"], p["b"], _num(p["pearson"]), _num(p["n"])] for p in analytics["top_correlations"]]
    sampled = "a sample" if analytics["sampled"] else "all rows"
    section = _Section(
        "Analytics",
        lines=[
            f"Rows used: {_num(analytics['rows_used'])} of {_num(analytics['rows_total'])} "
            f"({sampled}, seed {analytics['seed']})"
        ],
        tables=[
            _Table(
                ["Column", "Kind", "Count", "Missing", "Distinct", "Mean", "Std", "Min", "Median", "Max"],
                stats,
                "Columns",
            ),
            _Table(["Column A", "Column B", "Pearson r", "n"], correlations, "Strongest correlations"),
        ],
    )
    clustering = analytics["clustering"]
    if clustering is not None:
        section.lines.append(
            f"Clustering: k = {clustering['k']} (chosen by {clustering['chosen_by']}), "
            f"silhouette {_num(clustering['silhouette'])}, features: {', '.join(clustering['features'])}"
        )
        features = clustering["features"]
        rows = [
            [_num(c["cluster"]), _num(c["size"]), *(_num(c["centroid"].get(f)) for f in features)]
            for c in clustering["clusters"]
        ]
        section.tables.append(_Table(["Cluster", "Size", *features], rows, "Clusters (feature means)"))
    return section


def _insights_section(insights: list[dict[str, Any]]) -> _Section:
    rows = [
        [
            _num(i["rank"]),
            insight_label(i["kind"]),
            i["statement"],
            _num(i["effect_size"]),
            _num(i["p_value"]),
            "yes" if i["significant"] else "no",
            "; ".join(f"{k} = {_num(v)}" for k, v in i["numbers"].items()),
        ]
        for i in insights
    ]
    return _Section(
        "Insights",
        tables=[_Table(["#", "Kind", "Statement", "Effect size", "p-value", "Significant", "Numbers"], rows)],
    )


def _plan_section(plan: list[dict[str, Any]]) -> _Section:
    rows = [
        [
            _num(p["rank"]),
            p["title"],
            p["rationale"],
            _num(p["priority"]),
            _num(p["impact"]),
            _num(p["confidence"]),
            _num(p["effort"]),
            p["owner"] or "-",
            p["due"] or "-",
            ", ".join(p["evidence"]),
        ]
        for p in plan
    ]
    headers = ["Rank", "Action", "Rationale", "Priority", "Impact", "Confidence", "Effort"]
    return _Section("Action plan", tables=[_Table([*headers, "Owner", "Due", "Evidence"], rows)])


def _decisions_section(decisions: list[dict[str, Any]]) -> _Section:
    rows = [
        [
            _num(n),
            d["gate"],
            d["option"],
            d["decided_by"],
            d["decided_at"],
            d["rationale"],
            json.dumps(d["params"], sort_keys=True) if d["params"] else "-",
        ]
        for n, d in enumerate(decisions, start=1)
    ]
    headers = ["#", "Gate", "Option", "Decided by", "Decided at", "Rationale", "Parameters"]
    return _Section("Decisions", tables=[_Table(headers, rows)])


def _num(value: Any) -> str:
    """A number as people read it: integers whole, floats to four significant places."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if number != 0 and (abs(number) >= 1e6 or abs(number) < 1e-3):
        return f"{number:.3e}"
    return f"{number:.4g}" if abs(number) < 1000 else f"{number:.2f}"


def _pct(share: Any) -> str:
    if share is None:
        return "-"
    return f"{share * 100:.1f}%"


# ---- Markdown ---------------------------------------------------------------------------------


def _figures_of(figures: Sequence[Figure], section: _Section) -> list[Figure]:
    return [f for f in figures if SECTION_OF_STAGE.get(f.chart.stage) == section.title]


def render_markdown(report: dict[str, Any], figures: Sequence[Figure] = ()) -> str:
    """The report as Markdown: a heading per section, a table per list, its charts as linked PNGs."""
    out = [f"# Report: {_md_text(report['run']['name'])}", ""]
    for section in _sections(report):
        out += [f"## {section.title}", ""]
        out += [f"- {_md_text(line)}" for line in section.lines]
        if section.lines:
            out.append("")
        for table in section.tables:
            if table.caption:
                out += [f"### {table.caption}", ""]
            out += _md_table(table)
        for figure in _figures_of(figures, section):
            if figure.png_link:
                alt = _md_text(figure.chart.title).replace("[", "\\[").replace("]", "\\]")
                out += [f"![{alt}]({figure.png_link})", "", f"_{_md_text(figure.chart.description)}_", ""]
    return "\n".join(out).rstrip() + "\n"


def _md_table(table: _Table) -> list[str]:
    if not table.rows:
        return ["_None._", ""]
    lines = [_md_row(table.headers), "|" + "---|" * len(table.headers)]
    lines += [_md_row(row) for row in table.rows]
    return [*lines, ""]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(_md_cell(c) for c in cells) + " |"


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|")


def _md_text(text: str) -> str:
    # Markdown renderers pass raw HTML through, so data text is HTML-escaped here too;
    # a newline would end a table row (or a list item), so it becomes a <br>.
    return _NEWLINES.sub("<br>", html.escape(str(text), quote=False))


# ---- HTML -------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0 0 1rem; max-width: 100%; break-inside: avoid; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #444; max-width: 34rem; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9pt; }
  table { width: 100%; table-layout: fixed; font-size: 7.5pt; }
  th, td { overflow-wrap: anywhere; }
  .charts { display: block; }
}
"""


def render_html(report: dict[str, Any], figures: Sequence[Figure] = ()) -> str:
    """The report as one self-contained HTML page, its charts inline SVG; every data text is escaped."""
    title = html.escape(f"Report: {report['run']['name']}")
    body: list[str] = [f"<h1>{title}</h1>"]
    for section in _sections(report):
        body.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.lines:
            body.append("<ul>" + "".join(f"<li>{_html_text(line)}</li>" for line in section.lines) + "</ul>")
        body += [_html_table(table) for table in section.tables]
        shown = _figures_of(figures, section)
        if shown:
            body.append('<div class="charts">' + "".join(_html_figure(f) for f in shown) + "</div>")
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _html_figure(figure: Figure) -> str:
    # The SVG is vl-convert's (Vega's renderer escapes every text it draws); the words around it are ours.
    title, described = html.escape(figure.chart.title), html.escape(figure.chart.description)
    return (
        f'<figure role="img" aria-label="{title}" data-chart="{html.escape(figure.chart.id)}">{figure.svg}'
        f"<figcaption><strong>{title}</strong>. {described}</figcaption></figure>"
    )


def _html_table(table: _Table) -> str:
    caption = f"<h3>{html.escape(table.caption)}</h3>" if table.caption else ""
    if not table.rows:
        return caption + "<p><em>None.</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    rows = "".join("<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _html_text(text: str) -> str:
    return _NEWLINES.sub("<br>", html.escape(str(text)))
