"""The final action plan (gate 5's selection) as Markdown, JSON or CSV.

CSV cells that start with = + - @ (or a tab / carriage return) would run as formulas in a
spreadsheet; they are prefixed with a single quote, the OWASP-recommended escape.
"""

import csv
import io
import json
from typing import Any

from lockflow.common.models import PlannedAction

COLUMNS = (
    "rank",
    "id",
    "title",
    "owner",
    "due",
    "priority",
    "impact",
    "confidence",
    "effort",
    "expected_impact",
    "impact_unit",
    "origin",
    "evidence",
    "rationale",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plan_rows(plan: list[PlannedAction]) -> list[dict[str, Any]]:
    """One flat row per planned action, in the user's order."""
    return [
        {
            "rank": p.rank,
            "id": p.item.id,
            "title": p.item.title,
            "owner": p.owner or "",
            "due": p.due.isoformat() if p.due else "",
            "priority": p.item.priority,
            "impact": p.item.impact,
            "confidence": p.item.confidence,
            "effort": p.item.effort,
            "expected_impact": p.item.expected_impact,
            "impact_unit": p.item.impact_unit or "",
            "origin": p.item.origin,
            "evidence": "; ".join(p.item.evidence),
            "rationale": p.item.rationale,
        }
        for p in sorted(plan, key=lambda p: p.rank)
    ]


def plan_json(plan: list[PlannedAction]) -> str:
    """The plan as a JSON document with every item's full evidence."""
    items = [p.model_dump(mode="json") for p in sorted(plan, key=lambda p: p.rank)]
    return json.dumps({"actions": items}, indent=2, sort_keys=True)


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def plan_csv(plan: list[PlannedAction]) -> str:
    """The plan as CSV, one row per action, formula-looking cells escaped."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in plan_rows(plan):
        writer.writerow([csv_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def plan_markdown(plan: list[PlannedAction]) -> str:
    """The plan as a Markdown table plus each action's evidence."""
    lines = ["# Action plan", ""]
    if not plan:
        return "\n".join([*lines, "No actions were selected.", ""])
    lines += [
        "| # | Action | Owner | Due | Priority | Expected impact | Evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in plan_rows(plan):
        impact = (
            f"{row['expected_impact']:.4g} {row['impact_unit']}" if row["expected_impact"] is not None else ""
        )
        cells = [
            row["rank"],
            row["title"],
            row["owner"],
            row["due"],
            f"{row['priority']:.4f}",
            impact,
            row["evidence"],
        ]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines.append("")
    for p in sorted(plan, key=lambda p: p.rank):
        lines += [f"## {p.rank}. {_md(p.item.title)}", "", _md(p.item.rationale), ""]
        lines += [f"- {_md(s)}" for s in p.item.evidence_statements or p.item.evidence]
        lines.append("")
    return "\n".join(lines)


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
