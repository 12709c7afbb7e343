"""Drives one run in this process for `lockflow run`: progress, gates at the prompt or by policy."""

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import structlog
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from lockflow import gate_views
from lockflow.bootstrap import build_system
from lockflow.common.clock import Clock, SystemClock
from lockflow.common.errors import Conflict, LockflowError
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.pipeline import STAGE_OF_STEP, Step
from lockflow.common.service_requests import preview_fixes
from lockflow.common.settings import CommonSettings
from lockflow.ingest.preflight import Preflight, preflight, settle_goal
from lockflow.orchestrator.policy import Policy, PolicyDecision, resolve
from lockflow.runstore import intake, views
from lockflow.tables import Col, print_fitted

STEPS_IN_A_RUN = 7
TERMINAL = ("completed", "failed", "aborted")


async def run_embedded(
    *,
    settings: CommonSettings,
    spec: SourceSpec,
    goal: Goal,
    name: str,
    policy: Policy | None,
    console: Console,
    quality_rules: dict[str, Any] | None = None,
    log_path: Path | None = None,
) -> str:
    """Run a file through every stage; return the run's final status."""
    checked = await anyio.to_thread.run_sync(lambda: preflight(spec=spec, goal=goal))
    goal = settle_goal_at_terminal(
        goal, checked, source=spec.path, ask_person=policy is None, console=console
    )
    system = build_system(settings)
    await system.start_everything()
    started = time.perf_counter()
    run_id: str | None = None
    try:
        run_id = created = await anyio.to_thread.run_sync(
            lambda: intake.request_run(
                system.db,
                name=name,
                source=spec,
                goal=goal,
                requested_by="local",
                quality_rules=quality_rules,
            )
        )
        await system.relay_outbox()
        console.print(f"run [bold]{run_id}[/] on {escape(spec.path)}", soft_wrap=True)
        with _named_run(created), _interrupted(created):
            status = await _drive(system, created, policy, console)
    finally:
        await system.close()
    show_outcome(system, run_id, status, time.perf_counter() - started, console, log_path=log_path)
    return status


async def resume_embedded(
    *, settings: CommonSettings, run_id: str, policy: Policy | None, console: Console, log_path: Path | None
) -> str:
    """Re-run a failed run's failed step (or pick up a run left at a gate), then drive the gates after it."""
    system = build_system(settings)
    await system.start_everything()
    started = time.perf_counter()
    try:
        run = await anyio.to_thread.run_sync(lambda: views.get_run(system.db, run_id=run_id))
        if run["status"] == "completed":
            console.print(f"run [bold]{run_id}[/] has already completed.", soft_wrap=True)
            status = "completed"
        elif run["status"] == "aborted":
            raise Conflict(f"run {run_id} was aborted ({run['error']}); start a new run instead")
        else:
            if run["status"] == "failed":
                await anyio.to_thread.run_sync(
                    lambda: intake.retry_run(system.db, run_id=run_id, requested_by="local")
                )
                console.print(
                    f"retrying step {run['current_step']} of run [bold]{run_id}[/] (it failed with: "
                    f"{run['error']}); the {len(run['decisions'])} decisions made so far are kept",
                    soft_wrap=True,
                )
            else:
                console.print(f"continuing run [bold]{run_id}[/] ({run['status']})", soft_wrap=True)
            await system.relay_outbox()
            visits = Counter(str(d["gate"]) for d in run["decisions"])
            with _named_run(run_id), _interrupted(run_id):
                status = await _drive(system, run_id, policy, console, visits=visits)
    finally:
        await system.close()
    show_outcome(system, run_id, status, time.perf_counter() - started, console, log_path=log_path)
    return status


class DrivingInterrupted(Exception):
    """An error while this process drove a run; the run itself is kept where it was (its cause says why)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"driving run {run_id} was interrupted")
        self.run_id = run_id


@contextlib.contextmanager
def _interrupted(run_id: str) -> Iterator[None]:
    """Name the run in any error that stops driving it (e.g. a policy with no answer for a gate)."""
    try:
        yield
    except Exception as exc:
        raise DrivingInterrupted(run_id) from exc


@contextlib.contextmanager
def _named_run(run_id: str) -> Iterator[None]:
    """Every log line written while this run is driven carries its id."""
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        yield


def show_outcome(
    system: Any, run_id: str | None, status: str, elapsed: float, console: Console, *, log_path: Path | None
) -> None:
    """The run's end in a few unwrapped lines: the report's paths, or what failed and what to do next."""
    if run_id is None:
        return
    run = views.get_run(system.db, run_id=run_id)
    if status == "completed":
        uris = views.report_uris(system.db, run_id=run_id)
        console.print(f"[bold green]completed[/] in {elapsed:.1f}s. Report:")
        for fmt, uri in uris.items():
            console.print(f"  {fmt:8} {escape(system.artifacts.location(uri))}", soft_wrap=True, crop=False)
        return
    if status == "aborted":
        console.print(f"[bold red]aborted[/]: {escape(str(run['error']))}", soft_wrap=True)
        return
    for line in failure_lines(run, home=system.settings.home, log_path=log_path):
        console.print(line, soft_wrap=True, crop=False, markup=False, highlight=False)


def failure_lines(run: dict[str, Any], *, home: Path, log_path: Path | None) -> list[str]:
    """What failed, in which stage, the run id, where the full log is and what to do next."""
    step = run.get("current_step")
    stage = STAGE_OF_STEP[Step(step)] if step in {s.value for s in Step} else step
    error = str(run.get("error") or "no reason recorded").removeprefix(f"{stage}: ")
    where = f" at stage {stage} (step {step})" if step else ""
    lines = [f"failed{where}: run {run['id']}", f"  reason: {error}"]
    if log_path is not None:
        lines.append(f'  full log: {log_path} (lines with "run_id": "{run["id"]}")')
    kept = len(run.get("decisions") or [])
    lines.append(
        f"  next: fix the cause, then `lockflow resume {run['id']} --home {home}` re-runs {step or 'it'}"
        f" and keeps the {kept} decisions made so far"
    )
    return lines


def settle_goal_at_terminal(
    goal: Goal, checked: Preflight, *, source: str, ask_person: bool, console: Console
) -> Goal:
    """The run's goal before any stage: the given one, else asked (suggested target as default) or picked."""
    if goal.target is not None:
        return goal
    if checked.suggested_target() is None:
        settled, _ = settle_goal(goal, checked, source=source)
        console.print(f"goal: none ({settled.description}); the data is still checked", soft_wrap=True)
        return settled
    if not ask_person:
        settled, choice = settle_goal(goal, checked, source=source)
        assert choice is not None
        console.print(
            f"goal: {choice.target} ({settled.direction}), picked by lockflow: {choice.reason}. "
            "Pass --goal COLUMN[:increase|decrease] to choose another.",
            soft_wrap=True,
        )
        return settled
    suggestion = checked.suggested_target()
    assert suggestion is not None
    numeric = checked.numeric_columns()
    console.print(
        f"no --goal given; suggested target: {suggestion.target} ({suggestion.reason})", soft_wrap=True
    )
    while True:
        target = Prompt.ask("goal: the column to improve", default=suggestion.target, console=console)
        if target in numeric:
            break
        console.print(
            f"[bold red]not accepted:[/] {target!r} is not a numeric column; choose one of: "
            f"{', '.join(numeric)}",
            soft_wrap=True,
        )
    direction = Prompt.ask(
        "direction", choices=["increase", "decrease"], default=goal.direction, console=console
    )
    return goal.model_copy(update={"target": target, "direction": direction})


async def _drive(
    system: Any,
    run_id: str,
    policy: Policy | None,
    console: Console,
    *,
    visits: Counter[str] | None = None,
) -> str:
    visits = visits if visits is not None else Counter()
    seen = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=False
    ) as progress:
        task = progress.add_task("starting", total=STEPS_IN_A_RUN)
        while True:
            entries = views.timeline(system.db, run_id=run_id, after=seen)
            for entry in entries:
                seen = entry["seq"]
                _show_progress(progress, task, entry)
            run = views.get_run(system.db, run_id=run_id)
            if run["status"] in TERMINAL:
                progress.update(task, completed=STEPS_IN_A_RUN if run["status"] == "completed" else None)
                return str(run["status"])
            open_requests = views.list_decision_requests(system.db, status="open", run_id=run_id)
            if open_requests:
                progress.stop()
                request = open_requests[0]
                preview = _previewer(system, run_id)
                decision = await _decide(
                    request, policy, visits[request["gate"]], console, preview, clock=system.clock
                )
                visits[request["gate"]] += 1
                try:
                    await anyio.to_thread.run_sync(
                        functools.partial(
                            intake.record_decision,
                            system.db,
                            request_id=request["id"],
                            option=decision.option,
                            params=decision.params,
                            rationale=decision.rationale,
                            decided_by="local",
                        )
                    )
                except LockflowError as exc:
                    console.print(f"[bold red]not accepted:[/] {escape(str(exc))}")
                    if policy is not None:
                        raise
                await system.relay_outbox()
                progress.start()
                continue
            await asyncio.sleep(0.05)


def _previewer(system: Any, run_id: str) -> Callable[..., dict[str, Any]]:
    """Gate 2's preview, asked of the quality service over the bus (as the API does) from the prompt's
    thread; the run's findings and dataset go with the request."""

    def preview(*, request_id: str, params: dict[str, Any]) -> dict[str, Any]:
        state, context = views.quality_gate_inputs(system.db, request_id=request_id)
        ask = functools.partial(
            preview_fixes,
            system.requester,
            run_id=run_id,
            request_id=request_id,
            dataset=state.dataset_current,
            findings=state.findings,
            context=context,
            params=params,
        )
        return anyio.from_thread.run(ask)

    return preview


STEP_DONE = {
    "SourceIngested",
    "QualityAssessed",
    "ResolutionsApplied",
    "AnalyticsCompleted",
    "InsightsGenerated",
    "ActionsRecommended",
    "ReportCompiled",
}


def _show_progress(progress: Progress, task: Any, entry: dict[str, Any]) -> None:
    kind = entry["type"]
    if entry.get("stage"):
        progress.update(task, description=f"{entry['stage']} working")
    if kind in STEP_DONE:
        progress.advance(task)
        details = ", ".join(
            f"{k}={v}"
            for k, v in entry.items()
            if k not in ("seq", "event_id", "type", "occurred_at", "producer")
        )
        progress.console.print(f"  [green]✓[/] {kind} {escape(details)}")
    elif kind == "DecisionMade":
        progress.console.print(
            f"  [cyan]◆[/] {entry['gate']}: {entry['option']} by {escape(str(entry['decided_by']))}"
        )


async def _decide(
    request: dict[str, Any],
    policy: Policy | None,
    visit: int,
    console: Console,
    preview: Any = None,
    *,
    clock: Clock | None = None,
) -> PolicyDecision:
    console.rule(f"gate: {request['title']}")
    show_context(request, console)
    if policy is not None:
        decision = resolve(policy, request=request, visit=visit)
        if decision is None:
            raise LockflowError(f"the policy has no answer for gate {request['gate']}")
        console.print(f"policy: [bold]{decision.option}[/] {escape(str(decision.params or ''))}")
        if decision.option == "apply" and preview is not None:
            await anyio.to_thread.run_sync(lambda: _show_preview(request, decision.params, preview, console))
        return decision
    return await anyio.to_thread.run_sync(lambda: ask(request, console, preview, clock=clock))


def show_context(request: dict[str, Any], console: Console) -> None:
    """Print what the gate is about as tables."""
    ctx = request["context"]
    gate = request["gate"]
    if gate == "source_review":
        rows = [
            [c["name"], c["dtype"], str(c["nullable"]), str(c["null_count"]), ", ".join(c["examples"])]
            for c in ctx["schema"]
        ]
        columns = [
            Col("column"),
            Col("type"),
            Col("nullable", 2),
            Col("nulls", 1),
            Col("examples", wrap=True),
        ]
        print_fitted(console, columns, rows, title=f"{ctx['rows']} rows")
    elif gate == "quality_review":
        gate_views.show_quality(ctx, console)
    elif gate == "analytics_review" and ctx["analytics"]:
        gate_views.show_analytics(ctx, console)
    elif gate == "insight_review":
        gate_views.show_insights(ctx, console)
    elif gate == "action_selection":
        gate_views.show_actions(ctx, console)


def _show_preview(request: dict[str, Any], params: dict[str, Any], preview: Any, console: Console) -> bool:
    """Print what the chosen fixes would change; False (with the reason) if they cannot be applied."""
    try:
        result = preview(request_id=request["id"], params=params)
    except LockflowError as exc:
        console.print(f"[bold red]not accepted:[/] {escape(str(exc))}")
        return False
    margin = result.get("margin") or {}

    def count(key: str) -> str:  # "≈ estimate ± margin" for a first answer from a sample
        if result.get("exact", True) or key not in margin:
            return str(result[key])
        return f"≈ {result[key]} ± {margin[key]}"

    _say(
        console,
        f"preview ({result['method']}): {count('rows_removed')} rows removed, {count('rows_changed')} rows "
        f"and {count('cells_changed')} cells changed"
        + (f", columns added: {', '.join(result['columns_added'])}" if result["columns_added"] else ""),
    )
    for step in result["steps"]:
        _say(
            console,
            f"  {step['finding_id']} ({step['category']}): {step['strategy']}: {step['description']} "
            f"(risk: {step['risk']}); {step['note'] or 'done'}",
        )
    table = Table("column", "stat", "before", "after", title="affected columns")
    for column, stats in result["columns"].items():
        before, after = stats["before"] or {}, stats["after"] or {}
        for key in ("count", "missing", "distinct", "mean", "median", "top"):
            if key in before or key in after:
                table.add_row(*(Text(v) for v in (column, key, _fmt(before.get(key)), _fmt(after.get(key)))))
    console.print(table)
    for row in result["changed_rows"][:5]:
        cells = ", ".join(f"{c}: {_fmt(v['before'])} -> {_fmt(v['after'])}" for c, v in row["cells"].items())
        _say(console, f"  row {row['row']} {row['change']}: {cells[:200]}")
    return True


def ask(
    request: dict[str, Any], console: Console, preview: Any = None, *, clock: Clock | None = None
) -> PolicyDecision:
    """Ask a person at the terminal for a decision; due dates are checked against `clock`'s today."""
    names = [o["name"] for o in request["options"]]
    option = Prompt.ask("decision", choices=names, default=names[0], console=console)
    params: dict[str, Any] = {}
    ctx = request["context"]
    if option == "apply":
        params["choices"] = _ask_choices(request, console, preview)
    elif option == "modify":
        params = _ask_until_valid(
            "number of clusters, or parameters as key=value (e.g. contamination=0.02 "
            "target=revenue features=a+b)",
            "3",
            gate_views.parse_analytics_params,
            console,
        )
    elif option == "refine":
        params = _ask_refinement(ctx, console)
    elif option == "choose":
        today = (clock or SystemClock()).today()
        params = _ask_until_valid(
            gate_views.SELECTION_HELP,
            "all",
            lambda text: gate_views.parse_selection(text, ctx["items"], today=today),
            console,
        )
    elif option == "reconfigure":
        delimiter = Prompt.ask("delimiter", default=",", console=console)
        params["options"] = {"delimiter": delimiter}
    rationale = Prompt.ask("why (optional)", default="", console=console)
    return PolicyDecision(option=option, params=params, rationale=rationale)


def _ask_until_valid(
    question: str, default: str, parse: Callable[[str], dict[str, Any]], console: Console
) -> dict[str, Any]:
    """Ask until the answer parses; say what was wrong each time."""
    while True:
        answer = Prompt.ask(question, default=default, console=console)
        try:
            return parse(answer)
        except ValueError as exc:
            console.print(f"[bold red]not accepted:[/] {escape(str(exc))}")


def _ask_refinement(ctx: dict[str, Any], console: Console) -> dict[str, Any]:
    """Gate 4 'refine': the goal (current one by default) and any thresholds, checked before sending."""
    goal = (ctx.get("params") or {}).get("goal") or {}
    target = Prompt.ask("goal target column", default=goal.get("target") or "", console=console)
    direction = Prompt.ask(
        "direction",
        choices=["increase", "decrease"],
        default=goal.get("direction", "increase"),
        console=console,
    )
    return _ask_until_valid(
        "other thresholds as key=value, or empty (e.g. alpha=0.01 top_n=5 segment_of_interest=region=south)",
        "",
        lambda extra: gate_views.parse_refinement(target=target, direction=direction, extra=extra),
        console,
    )


def _ask_choices(request: dict[str, Any], console: Console, preview: Any) -> list[dict[str, Any]]:
    """Pick findings (top fix, or 'N=strategy'); '?' before a pick previews it and asks again."""
    findings = request["context"]["findings"]
    while True:
        picked = Prompt.ask(
            "findings to fix (numbers, 'all', or N=strategy, e.g. 1,2=drop_rows; '?1,2' to preview first)",
            default="all",
            console=console,
        )
        only_preview = picked.startswith("?")
        try:
            choices = _parse_picks(picked.removeprefix("?"), findings)
        except (ValueError, IndexError):
            console.print(
                f"[bold red]not understood:[/] {escape(repr(picked))}; give finding numbers 1-{len(findings)}"
            )
            continue
        if preview is None or not choices:
            return choices
        accepted = _show_preview(request, {"choices": choices}, preview, console)
        if accepted and not only_preview:
            return choices


def _parse_picks(picked: str, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if picked.strip() == "all":
        # A finding with no fix offered is left as it is (as the policy's "top" does), not an error.
        return [
            {"finding_id": f["id"], "strategy": f["resolutions"][0]["strategy"]}
            for f in findings
            if f["resolutions"]
        ]
    choices = []
    for part in picked.split(","):
        number, _, strategy = part.strip().partition("=")
        index = int(number) - 1
        if index < 0:
            raise IndexError(number)
        finding = findings[index]
        choices.append(
            {"finding_id": finding["id"], "strategy": strategy or finding["resolutions"][0]["strategy"]}
        )
    return choices


def _say(console: Console, line: str) -> None:
    """A line of data text, printed as it is: a '[/x]' in a column name must not raise MarkupError."""
    console.print(line, markup=False, highlight=False)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
