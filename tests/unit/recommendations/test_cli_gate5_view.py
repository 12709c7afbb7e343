"""Gate 5 at the terminal: impact in the goal's unit, confidence, effort, priority; owners and due dates."""

import datetime as dt

import pytest
from rich.console import Console

from lockflow.common.models import ActionItem, ActionSelection
from lockflow.gate_views import parse_selection, show_actions

TODAY = dt.date(2026, 11, 26)


def _items() -> list[dict]:  # type: ignore[type-arg]
    items = [
        ActionItem(
            id="act-1",
            title="Lift x1",
            rationale="x1 drives sales",
            origin="insight",
            evidence=["driver:x1"],
            impact=0.8,
            confidence=0.99,
            effort=3,
            priority=0.264,
            expected_impact=1234.5,
            impact_unit="sales per row",
        ),
        ActionItem(
            id="act-2",
            title="Fill gaps in age",
            rationale="12% missing",
            origin="quality",
            evidence=["missing_values:age"],
            impact=0.12,
            confidence=0.9,
            effort=1,
            priority=0.108,
        ),
    ]
    return [i.model_dump(mode="json") for i in items]


def test_gate5_prints_expected_impact_confidence_effort_and_priority() -> None:
    console = Console(record=True, width=240)
    show_actions({"items": _items()}, console)
    text = console.export_text()
    assert "priority = impact x confidence / effort" in text
    first = next(line for line in text.splitlines() if "act-1" in line)
    assert "1,234 sales per row" in first or "1,235 sales per row" in first
    assert "99%" in first and "3/5" in first and "0.264" in first and "driver:x1" in first
    second = next(line for line in text.splitlines() if "act-2" in line)
    assert "0.12 (0..1 scale)" in second and "90%" in second and "1/5" in second


def test_owners_and_due_dates_at_the_prompt() -> None:
    items = _items()
    parsed = parse_selection("2=ana@2027-01-31, act-1=bob", items, today=TODAY)
    assert parsed == {
        "selected": ["act-2", "act-1"],
        "owners": {"act-2": "ana", "act-1": "bob"},
        "due": {"act-2": "2027-01-31"},
    }
    ActionSelection.model_validate(parsed)  # what the gate checks accepts it
    assert parse_selection("all", items, today=TODAY) == {"selected": ["act-1", "act-2"]}
    assert parse_selection("1=@2026-12-01", items, today=TODAY)["due"] == {"act-1": "2026-12-01"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("3", "'3' is not an action; give numbers 1-2 or ids like act-1"),
        ("act-9", "'act-9' is not an action"),
        ("1,1", "act-1 is picked twice"),
        ("1=ana@31/01/2027", "act-1: due date '31/01/2027' is not a date like 2027-01-31"),
        ("1=ana@2020-01-01", "act-1: due date 2020-01-01 is in the past"),
        ("1=", "act-1: write owner@YYYY-MM-DD"),
    ],
)
def test_bad_selections_say_what_is_wrong(answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_selection(answer, _items(), today=TODAY)
