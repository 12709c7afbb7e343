"""What the CLI prints when a run fails, and how it reads --goal."""

import pytest
import typer

from lockflow.cli import _parse_goal
from lockflow.cli_run import failure_lines
from lockflow.common.models import Goal


@pytest.mark.parametrize(
    ("text", "goal"),
    [
        ("revenue", Goal(target="revenue")),
        ("revenue:max", Goal(target="revenue", direction="increase")),
        ("cost:min", Goal(target="cost", direction="decrease")),
        ("cost:decrease", Goal(target="cost", direction="decrease")),
    ],
)
def test_goal_directions_include_max_and_min(text: str, goal: Goal) -> None:
    assert _parse_goal(text) == goal


def test_an_unknown_direction_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter, match="increase, decrease, max, min"):
        _parse_goal("revenue:up")


def test_a_failed_run_names_the_stage_the_run_the_log_and_the_next_step(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = {
        "id": "r-1",
        "current_step": "generate_insights",
        "error": "insights: unexpected error in insights: ValueError: bad",
        "decisions": [{"gate": "source_review"}, {"gate": "quality_review"}, {"gate": "analytics_review"}],
    }
    lines = failure_lines(run, home=tmp_path, log_path=tmp_path / "logs" / "cli.log")
    assert lines[0] == "failed at stage insights (step generate_insights): run r-1"
    assert lines[1] == "  reason: unexpected error in insights: ValueError: bad"
    assert str(tmp_path / "logs" / "cli.log") in lines[2] and "r-1" in lines[2]
    assert f"`lockflow resume r-1 --home {tmp_path}`" in lines[3] and "keeps the 3 decisions" in lines[3]
