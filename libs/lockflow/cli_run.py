"""Drives one run in this process for `lockflow run`: progress, gates at the prompt or by policy."""

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from lockflow import gate_views
from lockflow.bootstrap import build_system
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.clock import Clock, SystemClock
from lockflow.common.errors import LockflowError
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.ingest.preflight import preflight
from lockflow.orchestrator import service, views
from lockflow.orchestrator.policy import Policy, PolicyDecision, resolve
from lockflow.quality.preview import preview_for_request

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
) -> str:
    """Run a file through every stage; return the run's final status."""
    await anyio.to_thread.run_sync(lambda: preflight(spec=spec, goal=goal))
    system = build_system(settings)
    await system.start_everything()
    started = time.perf_counter()
    try:
        run_id = await anyio.to_thread.run_sync(
            lambda: service.request_run(
                system.db,
                name=name,
                source=spec,
                goal=goal,
                requested_by="local",
                quality_rules=quality_rules,
            )
        )
        await system.relay_outbox()
        console.print(f"run [bold]{run_id}[/] on {escape(spec.path)}")
        status = await _drive(system, run_id, policy, console)
    finally:
        await system.close()
    elapsed = time.perf_counter() - started
    run = views.get_run(system.db, run_id=run_id)
    if status == "completed":
        uris = views.report_uris(system.db, run_id=run_id)
        store = ArtifactStore(settings.resolved_artifact_dir())
        console.print(f"[bold green]completed[/] in {elapsed:.1f}s. Report:")
        for fmt, uri in uris.items():
            console.print(f"  {fmt:8} {escape(str(store.path_of(uri)))}")
    else:
        console.print(f"[bold red]{status}[/]: {escape(str(run['error']))}")
    return status


async def _drive(system: Any, run_id: str, policy: Policy | None, console: Console) -> str:
    visits: Counter[str] = Counter()
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
                preview = functools.partial(preview_for_request, db=system.db, artifacts=system.artifacts)
                decision = await _decide(
                    request, policy, visits[request["gate"]], console, preview, clock=system.clock
                )
                visits[request["gate"]] += 1
                try:
                    await anyio.to_thread.run_sync(
                        functools.partial(
                            service.record_decision,
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
        table = Table("column", "type", "nullable", "nulls", "examples", title=f"{ctx['rows']} rows")
        for c in ctx["schema"]:
            cells = [
                c["name"],
                c["dtype"],
                str(c["nullable"]),
                str(c["null_count"]),
                ", ".join(c["examples"]),
            ]
            table.add_row(*(Text(cell) for cell in cells))  # data text: brackets are shown, not markup
        console.print(table)
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
    _say(
        console,
        f"preview ({result['method']}): {result['rows_removed']} rows removed, {result['rows_changed']} rows "
        f"and {result['cells_changed']} cells changed"
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
