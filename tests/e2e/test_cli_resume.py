"""A run that fails after gate 5 says so in one clear message, and `lockflow resume` completes it.

The failure is real: while the person is at gate 5, the artifact folder is moved away and a file
takes its place, so the reporting stage cannot store the report (as with a lost or full disk).
"""

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.exc import OperationalError

from lockflow.common.db import Database
from lockflow.runstore import views

pytestmark = pytest.mark.e2e
ENV = {"COLUMNS": "80", "PATH": "/usr/bin"}


class Reader:
    """Collects a pipe's text in a thread, so the child never blocks on a full pipe."""

    def __init__(self, pipe) -> None:  # type: ignore[no-untyped-def]
        self.parts: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:  # type: ignore[no-untyped-def]
        for chunk in iter(lambda: pipe.read(1), ""):
            self.parts.append(chunk)

    def text(self) -> str:
        return "".join(self.parts)


def wait_for_gate(db: Database, gate: str, process: subprocess.Popen[str], out: Reader) -> str:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, out.text()
        try:
            runs = views.list_runs(db)
        except OperationalError:  # the CLI has not created (or migrated) its database yet
            runs = []
        if runs:
            open_requests = views.list_decision_requests(db, status="open", run_id=runs[0]["id"])
            if open_requests and open_requests[0]["gate"] == gate:
                return str(runs[0]["id"])
        time.sleep(0.2)
    raise AssertionError(f"gate {gate} never opened:\n{out.text()}")


def test_a_failed_report_step_is_one_clear_message_and_resume_completes_the_run(
    tmp_path: Path, sales: pd.DataFrame
) -> None:
    source = tmp_path / "sales.csv"
    sales.to_csv(source, index=False)
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "lockflow.cli", "run", str(source), "--home", str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    out, err = Reader(process.stdout), Reader(process.stderr)
    assert process.stdin is not None
    # No --goal: the suggested target (revenue) is taken as the default; then gates 1-4.
    gates_1_to_4 = ["", "", "approve", "checked the schema", "apply", "all", "", "accept", "", "accept", ""]
    process.stdin.write("\n".join(gates_1_to_4) + "\n")
    process.stdin.flush()
    home.mkdir()
    db = Database(f"sqlite:///{home / 'lockflow.db'}", run_migrations=False)
    run_id = wait_for_gate(db, "action_selection", process, out)

    artifacts = home / "artifacts"
    away = home / "artifacts-away"
    artifacts.rename(away)
    artifacts.write_text("not a folder")
    process.stdin.write("choose\n1,2\nship these two\n")
    process.stdin.close()
    assert process.wait(timeout=120) == 1, out.text() + err.text()
    out.thread.join(5)
    err.thread.join(5)
    printed, errors = out.text(), err.text()

    assert "suggested target: revenue" in printed
    assert "Traceback" not in printed + errors and '"event"' not in printed + errors
    assert f"failed at stage reporting (step report): run {run_id}" in printed
    lines = printed.splitlines()
    resume_hint = f"`lockflow resume {run_id} --home {home}`"
    assert any(resume_hint in line for line in lines), printed  # the whole command on one line
    log = home / "logs" / "cli.log"
    assert any(f"full log: {log}" in line for line in lines)
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    crashed = [e for e in logged if e["event"] == "stage_crashed"]
    assert crashed and crashed[0]["run_id"] == run_id and "Traceback" in crashed[0]["exception"]
    assert all("trace_id" in e for e in crashed)

    artifacts.unlink()
    away.rename(artifacts)
    resumed = subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "resume", run_id, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert f"retrying step report of run {run_id}" in resumed.stdout
    json_line = next(line for line in resumed.stdout.splitlines() if line.strip().startswith("json"))
    report_path = Path(json_line.split()[-1])
    assert re.fullmatch(r"[0-9a-f]{64}\.json", report_path.name)  # printed whole, not wrapped
    report = json.loads(report_path.read_text())
    assert [d["option"] for d in report["decisions"]] == ["approve", "apply", "accept", "accept", "choose"]
    assert report["decisions"][0]["rationale"] == "checked the schema"
    assert report["decisions"][-1]["rationale"] == "ship these two"
    assert report["goal"]["target"] == "revenue"
    assert len(report["plan"]) == 2
    run = views.get_run(db, run_id=run_id)
    assert run["status"] == "completed"
    assert [a["status"] for a in run["attempts"] if a["step"] == "report"] == ["failed", "succeeded"]
    db.dispose()
    shutil.rmtree(home / "artifacts", ignore_errors=True)


def test_resume_of_an_unknown_run_is_a_clear_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "resume", "no-such-run", "--home", str(tmp_path / "h")],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert done.returncode == 2 and "no run no-such-run" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_run_stopped_at_a_gate_is_picked_up_there_by_resume(tmp_path: Path) -> None:
    policy = tmp_path / "gate1.yaml"
    policy.write_text("source_review: {option: approve, rationale: looks right}\n")
    home = tmp_path / "home"
    stopped = subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "run", "--decisions", str(policy), "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
    )
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    assert "error: the policy has no answer for gate quality_review" in stopped.stdout
    run_id = re.search(r"lockflow resume (\S+) --home", stopped.stdout).group(1)  # type: ignore[union-attr]
    assert "Traceback" not in stopped.stdout + stopped.stderr
    resumed = subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "resume", run_id, "--yes", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"continuing run {run_id} (waiting)" in resumed.stdout
    db = Database(f"sqlite:///{home / 'lockflow.db'}", run_migrations=False)
    decisions = views.get_run(db, run_id=run_id)["decisions"]
    db.dispose()
    assert [(d["gate"], d["rationale"].split(":")[0]) for d in decisions][:2] == [
        ("source_review", "looks right"),
        ("quality_review", "--yes"),  # followed by what --yes fixed and what it left
    ]
    assert len(decisions) == 5
