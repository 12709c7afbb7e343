"""The whole embedded pipeline on the bundled sample, judged at a frozen date and two years later.

Time is an input: the same data must complete at both dates; the staleness finding is absent a
month after the newest row and present, with its age in days, two years on, and the report says
which date the data was judged at. The first run freezes the clock with LOCKFLOW_AS_OF (the
setting), the second with `lockflow run --as-of` in its own process (the option).
"""

import asyncio
import io
import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from lockflow.cli import SAMPLE
from lockflow.cli_run import run_embedded
from lockflow.common.db import Database
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.orchestrator.policy import default_policy
from lockflow.runstore import views

pytestmark = pytest.mark.e2e

NEWEST = pd.read_csv(SAMPLE, usecols=["order_date"])["order_date"].max()
MONTH_ON = date.fromisoformat(NEWEST) + timedelta(days=30)
TWO_YEARS_ON = MONTH_ON + timedelta(days=730)
AGE_TWO_YEARS_ON = (TWO_YEARS_ON - date.fromisoformat(NEWEST)).days


def report_paths(printed: str) -> dict[str, Path]:
    """The report files whose paths the run printed, by format."""
    found = re.findall(r"^\s+(markdown|json|html)\s+(\S+)$", printed, flags=re.MULTILINE)
    return {fmt: Path(path) for fmt, path in found}


def run_in_process(home: Path, monkeypatch: pytest.MonkeyPatch, as_of: date) -> tuple[str, str]:
    """`lockflow run --yes` on the sample in this process, the clock frozen by LOCKFLOW_AS_OF."""
    monkeypatch.setenv("LOCKFLOW_AS_OF", as_of.isoformat())
    settings = CommonSettings(mode="embedded", home=home)
    out = io.StringIO()
    status = _run(settings, Console(file=out, width=200, color_system=None))
    return status, out.getvalue()


def _run(settings: CommonSettings, console: Console) -> str:
    return asyncio.run(
        run_embedded(
            settings=settings,
            spec=SourceSpec(path=str(SAMPLE)),
            goal=Goal(target="revenue", direction="increase"),
            name="as-of",
            policy=default_policy(),
            console=console,
        )
    )


def run_cli(home: Path, as_of: date) -> subprocess.CompletedProcess[str]:
    """`lockflow run --yes --as-of DATE` as a user would type it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lockflow.cli",
            "run",
            "--yes",
            "--as-of",
            as_of.isoformat(),
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin"},
    )


def stored_findings(home: Path) -> list[dict[str, Any]]:
    """The findings the run's state holds (the detectors' own details, such as the age in days)."""
    db = Database(CommonSettings(home=home).resolved_database_url())
    try:
        (run,) = views.list_runs(db)
        return list(views.get_run(db, run_id=run["id"])["results"]["findings"])
    finally:
        db.dispose()


def test_the_same_data_judged_a_month_on_and_two_years_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_defaults: None
) -> None:
    status, printed = run_in_process(tmp_path / "month", monkeypatch, MONTH_ON)
    assert status == "completed", printed
    assert f"data judged as of {MONTH_ON}" in printed  # gate 2's table
    paths = report_paths(printed)
    report = json.loads(paths["json"].read_text())
    assert report["run"]["judged_as_of"] == MONTH_ON.isoformat()
    assert f"Data judged as of: {MONTH_ON}" in paths["markdown"].read_text()
    assert f"Data judged as of: {MONTH_ON}" in paths["html"].read_text()
    assert "staleness" not in {f["category"] for f in report["quality"]["findings"]}
    assert "staleness" not in {f["category"] for f in stored_findings(tmp_path / "month")}

    monkeypatch.delenv("LOCKFLOW_AS_OF")
    done = run_cli(tmp_path / "later", TWO_YEARS_ON)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"data judged as of {TWO_YEARS_ON}" in done.stdout
    paths = report_paths(done.stdout)
    report = json.loads(paths["json"].read_text())
    assert report["run"]["judged_as_of"] == TWO_YEARS_ON.isoformat()
    markdown = paths["markdown"].read_text()
    assert f"Data judged as of: {TWO_YEARS_ON}" in markdown
    (stale,) = [f for f in report["quality"]["findings"] if f["category"] == "staleness"]
    assert stale["label"] == "Staleness" and stale["dimension"] == "timeliness"
    assert f"{AGE_TWO_YEARS_ON} days before {TWO_YEARS_ON}" in stale["explanation"]
    assert f"| {stale['id']} | Staleness | timeliness |" in markdown
    (stored,) = [f for f in stored_findings(tmp_path / "later") if f["category"] == "staleness"]
    assert stored["details"] == {"newest": NEWEST, "age_days": AGE_TWO_YEARS_ON}
    # Everything but time is the same data: the other findings are the same ones.
    first = {f["id"] for f in stored_findings(tmp_path / "month")}
    assert {f["id"] for f in stored_findings(tmp_path / "later")} - first == {stale["id"]}
