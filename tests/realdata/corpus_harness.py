"""Runs a real dataset through every stage in embedded mode, in this process, and reads the report back.

In process (`lockflow.cli_run.run_embedded`, what `lockflow run` calls) rather than one subprocess per
run, so the corpus fits in a few minutes of CI; `cli_run` runs the real CLI as a user would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from lockflow.cli import _parse_goal
from lockflow.cli_run import run_embedded
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.db import Database
from lockflow.common.models import SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.orchestrator.policy import Policy, default_policy, load_policy
from lockflow.runstore import views

POLICIES = ("yes", "second")
DEADLINE_SECONDS = 600.0  # per run; the slowest CI run takes well under a minute on a quiet machine


def second_policy_yaml(goal: str | None) -> str:
    """The options --yes does not take: accept as is, modify then accept, refine then accept, top 3."""
    target, _, _ = (goal or "").partition(":")
    refine: dict[str, Any] = {"alpha": 0.01}
    if target:
        refine["goal"] = {"target": target, "direction": "decrease"}
    return (
        "source_review: {option: approve, rationale: columns look right}\n"
        "quality_review: {option: accept_as_is, rationale: keep the data as it came}\n"
        "analytics_review:\n"
        "  - {option: modify, params: {n_clusters: 3}, rationale: three groups}\n"
        "  - {option: accept}\n"
        "insight_review:\n"
        f"  - {{option: refine, params: {json.dumps(refine)}, rationale: stricter}}\n"
        "  - {option: accept}\n"
        "action_selection: {option: choose, params: {selected: {top: 3}}}\n"
    )


def policy_for(name: str, goal: str | None, folder: Path) -> Policy:
    """`--yes` (the default policy) or the second policy, read from a YAML file as the CLI would."""
    if name == "yes":
        return default_policy()
    path = folder / "second-policy.yaml"
    path.write_text(second_policy_yaml(goal))
    return load_policy(path)


@dataclass
class RunOutcome:
    """What a run ended as: status, the failing step and its error, the JSON report if it completed."""

    status: str
    seconds: float
    error: str | None = None
    failed_step: str | None = None
    report: dict[str, Any] | None = None
    output: str = ""
    decisions: list[str] = field(default_factory=list)
    formats: dict[str, bytes] = field(default_factory=dict)  # every stored format of the report


def embedded_settings(home: Path) -> CommonSettings:
    """Embedded mode under a temp home; SQLite and memory only, whatever LOCKFLOW_* says."""
    return CommonSettings(
        mode="embedded", environment="test", home=home, database_url=None, redis_url=None, artifact_dir=None
    )


class RunHung(AssertionError):
    """The run did not return within its deadline; the message holds every asyncio task's stack."""


async def _within(coroutine: Coroutine[Any, Any, str], seconds: float) -> str:
    """The coroutine's result, or RunHung naming where each task waits (a hang must not stall CI)."""
    task = asyncio.ensure_future(coroutine)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        return task.result()
    stacks = StringIO()
    for other in asyncio.all_tasks():
        if other is not asyncio.current_task():
            print(f"--- {other!r}", file=stacks)
            other.print_stack(file=stacks)
    task.cancel()
    await asyncio.wait({task}, timeout=10)
    raise RunHung(f"the run did not return within {seconds:.0f}s; tasks:\n{stacks.getvalue()}")


def _run_loop(coroutine: Coroutine[Any, Any, str]) -> str:
    """Like asyncio.run, but the tasks left at the end get a bounded wait (after a hang they may not end)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=10))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_in_process(
    path: Path, *, goal: str | None, policy: Policy, home: Path, deadline: float = DEADLINE_SECONDS
) -> RunOutcome:
    """One embedded run of the file through every stage, answered by the policy."""
    settings = embedded_settings(home)
    console = Console(file=StringIO(), width=100)
    started = time.perf_counter()
    run = run_embedded(
        settings=settings,
        spec=SourceSpec(path=str(path.resolve())),
        goal=_parse_goal(goal),
        name=path.name,
        policy=policy,
        console=console,
    )
    status = _run_loop(_within(run, deadline))
    seconds = time.perf_counter() - started
    output = console.file.getvalue()  # type: ignore[attr-defined]
    db = Database(settings.resolved_database_url())
    try:
        run = views.list_runs(db, limit=1)[0]
        detail = views.get_run(db, run_id=run["id"])
        failed = [a for a in detail["attempts"] if a["status"] == "failed"]
        outcome = RunOutcome(
            status=status,
            seconds=seconds,
            error=detail["error"],
            failed_step=failed[-1]["step"] if failed else None,
            output=output,
            decisions=[d["option"] for d in detail["decisions"]],
        )
        if status == "completed":
            uris = views.report_uris(db, run_id=run["id"])
            store = LocalArtifactStore(settings.resolved_artifact_dir())
            outcome.formats = {fmt: store.path_of(uri).read_bytes() for fmt, uri in uris.items()}
            outcome.report = json.loads(outcome.formats["json"])
    finally:
        db.dispose()
    return outcome


def check_formats(outcome: RunOutcome, artifact_dir: Path) -> None:
    """Every report format rendered with the report's charts: inline SVG, linked PNGs, a PDF."""
    assert outcome.report is not None
    charts = outcome.report["charts"]
    assert set(outcome.formats) == {"markdown", "json", "html", "pdf"}
    assert outcome.formats["html"].decode().count("<svg") == len(charts)
    markdown = outcome.formats["markdown"].decode()
    for chart in charts:
        assert f"]({chart['png']})" in markdown
        name = Path(chart["png"]).name
        assert (artifact_dir / name[:2] / name).read_bytes()[:4] == b"\x89PNG"
    assert outcome.formats["pdf"].startswith(b"%PDF-")


def run_cli(
    path: Path, *, goal: str | None, home: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m lockflow.cli run FILE --yes [--goal G] --home HOME`, as a user would type it."""
    args = [sys.executable, "-m", "lockflow.cli", "run", str(path), "--yes", "--home", str(home)]
    if goal:
        args += ["--goal", goal]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "200", "PATH": "/usr/bin"},
    )


def printed_path(done: subprocess.CompletedProcess[str], fmt: str) -> Path:
    """The path of the report in one format, as the CLI printed it."""
    line = next(line for line in done.stdout.splitlines() if line.strip().startswith(fmt))
    return Path(line.split()[-1])


def report_printed_by(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report whose path the CLI printed."""
    return json.loads(printed_path(done, "json").read_text())  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SourceFacts:
    """Rows, nulls per column and exact duplicate rows of a dataset as ingested."""

    rows: int
    nulls: dict[str, int]
    duplicate_rows: int


def facts_of_frame(frame: pd.DataFrame) -> SourceFacts:
    """The facts as pandas counts them: `isna()` per column, `duplicated()` (NaN equal to NaN)."""
    return SourceFacts(
        rows=len(frame),
        nulls={str(c): int(n) for c, n in frame.isna().sum().items()},
        duplicate_rows=int(frame.duplicated().sum()),
    )


def facts_of_report(report: dict[str, Any]) -> SourceFacts:
    """The same facts from the report's ingested dataset block."""
    ingested = report["dataset"]["ingested"]
    return SourceFacts(
        rows=ingested["rows"],
        nulls={c["name"]: c["null_count"] for c in ingested["columns"]},
        duplicate_rows=ingested["duplicate_rows"],
    )
