"""The terminal at 80 and 160 columns: paths and ids on one line, tables that fit without slivers.

The gate contexts are the real ones of a `lockflow run --yes` on the bundled sample; each gate is
rendered again at both widths.
"""

import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lockflow.cli_run import show_context
from lockflow.common.db import Database
from lockflow.runstore import views

pytestmark = pytest.mark.e2e
BORDERS = re.compile(r"[│┃┏┓┗┛┡┩└┘┳┻╇╈┠┨━─┼┬┴╋]")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    home = tmp_path_factory.mktemp("terminal") / "home"
    done = subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "run", "--yes", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "80", "PATH": "/usr/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, home


def requests_of(home: Path) -> dict[str, dict[str, Any]]:
    db = Database(f"sqlite:///{home / 'lockflow.db'}", run_migrations=False)
    try:
        return {r["gate"]: r for r in views.list_decision_requests(db, status=None)}
    finally:
        db.dispose()


def rendered(request: dict[str, Any], width: int) -> str:
    console = Console(file=StringIO(), width=width)
    show_context(request, console)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def cell_words(text: str) -> set[str]:
    """Every whitespace-separated word inside the table cells."""
    return set(BORDERS.sub(" ", text).split())


def named_in(gate: str, ctx: dict[str, Any]) -> list[str]:
    """The ids or column names a gate's table must show whole."""
    if gate == "source_review":
        return [c["name"] for c in ctx["schema"]]
    if gate == "quality_review":
        return [f["id"] for f in ctx["findings"]]
    if gate == "analytics_review":
        return [c["name"] for c in ctx["analytics"]["columns"] if c["kind"] == "numeric"]
    if gate == "insight_review":
        return [i["id"] for i in ctx["insights"]]
    return [i["id"] for i in ctx["items"]]


def header_of(text: str) -> list[str]:
    """The header cells of the first table in the text."""
    line = next(line for line in text.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


def test_paths_and_the_run_id_print_whole_at_80_columns(
    finished: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, home = finished
    lines = done.stdout.splitlines()
    run_line = next(line for line in lines if line.startswith("run "))
    assert re.fullmatch(r"run [0-9a-f-]{36} on \S+sample_sales\.csv", run_line)
    for fmt in ("markdown", "json", "html"):
        line = next(line for line in lines if line.strip().startswith(fmt))
        path = Path(line.split()[-1])
        assert path.is_file() and path.parent.parent == home / "artifacts"
    too_long = [
        line for line in lines if len(line) > 80 and str(home) not in line and "sample_sales" not in line
    ]
    assert too_long == []


@pytest.mark.parametrize("width", [80, 160])
@pytest.mark.parametrize(
    "gate", ["source_review", "quality_review", "analytics_review", "insight_review", "action_selection"]
)
def test_every_gate_fits_the_width_without_slivers(
    finished: tuple[subprocess.CompletedProcess[str], Path], gate: str, width: int
) -> None:
    request = requests_of(finished[1])[gate]
    text = rendered(request, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text  # nothing cropped
    words = cell_words(text)
    ctx = request["context"]
    names = named_in(gate, ctx)
    assert names and all(name in words for name in names)  # ids and names whole, on one line
    statements = [i["statement"] for i in ctx.get("insights", [])] + [
        i["title"] for i in ctx.get("items", [])
    ]
    for statement in statements:
        assert set(statement.split()) <= words, statement  # wrapped between words, never inside one


def test_wide_terminals_show_more_columns(finished: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    requests = requests_of(finished[1])
    narrow = header_of(rendered(requests["insight_review"], 80))
    wide = header_of(rendered(requests["insight_review"], 160))
    assert {"id", "insight", "effect", "p"} <= set(narrow)
    assert {"id", "insight", "effect", "confidence", "95% interval", "relevance", "score"} <= set(wide)
    assert "p" not in wide  # the confidence column states p there
    actions_narrow = header_of(rendered(requests["action_selection"], 80))
    actions_wide = header_of(rendered(requests["action_selection"], 160))
    assert {"#", "id", "action", "priority"} <= set(actions_narrow)
    assert set(actions_narrow) < set(actions_wide) and "evidence" in actions_wide
