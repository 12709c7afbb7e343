"""Plan export: Markdown, JSON and CSV with spreadsheet formula injection escaped."""

import csv
import datetime as dt
import io
import json

from lockflow.common.models import ActionItem, PlannedAction
from lockflow.plans.export import csv_cell, plan_csv, plan_json, plan_markdown


def _plan() -> list[PlannedAction]:
    def item(i: str, title: str) -> ActionItem:
        return ActionItem(
            id=i, title=title, rationale="why | because", origin="insight", evidence=["driver:x"],
            impact=0.5, confidence=0.9, effort=3, priority=0.15,
            expected_impact=12.5, impact_unit="`sales` per row",
            evidence_statements=["driver:x: higher x goes with higher sales"],
        )  # fmt: skip

    return [
        PlannedAction(rank=2, item=item("act-2", '=HYPERLINK("http://evil")'), owner="@bob"),
        PlannedAction(rank=1, item=item("act-1", "Raise x"), owner="Ana", due=dt.date(2025, 3, 1)),
    ]


def test_csv_escapes_formula_cells_and_keeps_user_order() -> None:
    assert [csv_cell(v) for v in ["=1+1", "+3", "-2", "@SUM(A1)", "ok", None, 1.5]] == [
        "'=1+1", "'+3", "'-2", "'@SUM(A1)", "ok", "", "1.5"
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(plan_csv(_plan()))))
    assert [r["id"] for r in rows] == ["act-1", "act-2"]
    assert rows[1]["title"] == '\'=HYPERLINK("http://evil")' and rows[1]["owner"] == "'@bob"
    assert rows[0]["due"] == "2025-03-01" and rows[0]["expected_impact"] == "12.5"


def test_json_and_markdown() -> None:
    doc = json.loads(plan_json(_plan()))
    assert [a["rank"] for a in doc["actions"]] == [1, 2] and doc["actions"][0]["owner"] == "Ana"
    text = plan_markdown(_plan())
    assert "| 1 | Raise x | Ana | 2025-03-01 | 0.1500 | 12.5 `sales` per row | driver:x |" in text
    assert "why \\| because" in text and "- driver:x: higher x goes with higher sales" in text
    assert "No actions were selected." in plan_markdown([])
