"""A run's charts: the stages' evidence as Vega-Lite specs (lockflow.charts), the ones the UI draws."""

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from lockflow.access.deps import Authorized
from lockflow.charts.catalog import Evidence, charts_of, preview_charts
from lockflow.gateway.access import auth_of, check_run
from lockflow.gateway.deps import SystemDep
from lockflow.gateway.schemas import ErrorBody
from lockflow.runstore import views
from lockflow.runstore.state import RunState

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid or revoked access token"},
    403: {"model": ErrorBody, "description": "the caller's roles may not do this"},
    404: {"model": ErrorBody, "description": "no such run, or not the caller's to see"},
    422: {"model": ErrorBody, "description": "an unknown stage"},
}
StageName = Literal["quality", "analytics", "insights"]


class ChartItem(BaseModel):
    """One chart: a Vega-Lite v6 spec with its data inline (aggregated), drawn as it is (vega-embed)."""

    id: str = Field(description="kind:subject, e.g. histogram:dep_delay; stable across calls")
    kind: str
    stage: StageName
    title: str
    description: str = Field(description="What the chart shows, in words (its accessible description)")
    spec: dict[str, Any]


class ChartList(BaseModel):
    """The run's charts so far (those its stored evidence supports), in a stable order."""

    items: list[ChartItem]
    total: int


router = APIRouter(prefix="/runs", tags=["runs"])


def evidence_of(state: RunState) -> Evidence:
    """What the run's stages stored, as the charts library reads it."""
    return Evidence(
        dataset=state.dataset_ingested,
        findings=state.findings,
        dimensions_before=state.quality_dimensions,
        dimensions_after=state.quality_dimensions_after,
        score_before=state.score_before,
        score_after=state.score_after,
        analytics=state.analytics,
        insights=state.insights,
        quality_histograms=state.quality_histograms,
    )


@router.get("/{run_id}/charts", response_model=ChartList, responses=ERRORS)
async def list_charts(
    run_id: str,
    request: Request,
    system: SystemDep,
    principal: Authorized,
    stage: Annotated[StageName | None, Query(description="Only this stage's charts")] = None,
) -> ChartList:
    """The run's charts as Vega-Lite specs: those its evidence so far supports (404 for a run not yours)."""

    def build() -> ChartList:
        state, owner = views.run_state(system.db, run_id=run_id)
        check_run(auth_of(request), principal, run_id=run_id, owner=owner)
        items = [ChartItem(**c.as_item()) for c in charts_of(evidence_of(state), stage=stage)]
        return ChartList(items=items, total=len(items))

    return await anyio.to_thread.run_sync(build)


def with_preview_charts(answer: dict[str, Any]) -> dict[str, Any]:
    """Gate 2's preview answer with its before/after histograms as chart items (`charts`)."""
    return {**answer, "charts": [c.as_item() for c in preview_charts(answer)]}
