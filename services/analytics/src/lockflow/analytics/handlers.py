"""Stage 4 handlers: analytics part by part, each cached by dataset + the parameters it depends on.

The data is read (sampled above `sample_rows`, one row group at a time) only if some part is not
in the cache, so a repeated run never touches the dataset, and changing one parameter recomputes
only the parts that depend on it.
"""

import json
from typing import Any

import pandas as pd

from lockflow.analytics.budget import AnalysisBudget
from lockflow.analytics.compute import assemble, compute_part, part_key_params, parts_to_run, resolve_target
from lockflow.common.cache import Cache, cache_key
from lockflow.common.events import AnalyticsCompleted, AnalyticsCompletedPayload, Command, Event, RunAnalytics
from lockflow.common.models import AnalyticsParams, DatasetRef
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.datasets.sampling import read_sampled

PRODUCER = "analytics"


def run_analytics(command: Command, deps: StageDeps) -> Event:
    """Serve each part from cache when the same data and parameters were analysed before."""
    assert isinstance(command, RunAnalytics)
    p = command.payload
    frame = _LazyFrame(deps, p.dataset, p.params)
    target = p.params.target or (p.goal.target if p.goal else None)
    plan_key = _key("plan", p.dataset, p.params, {"target": target})
    planned = _cached_json(deps.cache, plan_key)
    if planned is None:
        resolved = resolve_target(frame.get(), target, strict=p.params.target is not None)
        planned = {"target": resolved, "parts": parts_to_run(frame.get(), p.params, resolved)}
        deps.cache.set(plan_key, json.dumps(planned))
    resolved = planned["target"]
    budget = budget_of(deps.settings or CommonSettings())
    parts: dict[str, dict[str, Any]] = {}
    hits: list[str] = []
    for name in planned["parts"]:
        depends = part_key_params(name, p.params, resolved)
        if name != "describe":  # what the budget lets a part use changes its result
            depends = {**depends, "budget": budget.key()}
        key = _key(name, p.dataset, p.params, depends)
        value = _cached_json(deps.cache, key)
        if value is None:
            value = compute_part(name, frame=frame.get(), params=p.params, target=resolved, budget=budget)
            deps.cache.set(key, json.dumps(value))
        else:
            hits.append(name)
        parts[name] = value
    result = assemble(
        parts=parts,
        params=p.params,
        target=resolved,
        rows_total=p.dataset.rows,
        rows_used=min(p.dataset.rows, p.params.sample_rows),
    )
    cached = bool(parts) and len(hits) == len(parts)
    payload = AnalyticsCompletedPayload(
        attempt_id=p.attempt_id, dataset=p.dataset, result=result, cached=cached, parts_cached=hits
    )
    return command.follow(AnalyticsCompleted, payload, producer=PRODUCER)


def budget_of(settings: CommonSettings) -> AnalysisBudget:
    """The pairs and cells each part may use, from the worker's settings."""
    return AnalysisBudget(max_pairs=settings.max_pairs, max_cells=settings.max_cells)


def _key(part: str, dataset: DatasetRef, params: AnalyticsParams, depends: dict[str, Any]) -> str:
    # Every part also depends on which rows were used: the sample only exists above sample_rows.
    rows = (params.sample_rows, params.random_state) if dataset.rows > params.sample_rows else None
    return cache_key(f"analytics:{part}", dataset.fingerprint, rows, depends)


def _cached_json(cache: Cache, key: str) -> Any:
    hit = cache.get(key)
    return None if hit is None else json.loads(hit)


class _LazyFrame:
    """Reads the (sampled) dataset the first time a part needs it, at most once."""

    def __init__(self, deps: StageDeps, dataset: DatasetRef, params: AnalyticsParams) -> None:
        self._deps, self._dataset, self._params = deps, dataset, params
        self._frame: pd.DataFrame | None = None

    def get(self) -> pd.DataFrame:
        """The frame, read on first use."""
        if self._frame is None:
            with self._deps.artifacts.open_input(self._dataset.uri) as source:
                self._frame, _ = read_sampled(
                    source, size=self._params.sample_rows, seed=self._params.random_state
                )
        return self._frame


HANDLERS: dict[str, StageHandler] = {"RunAnalytics": run_analytics}
