"""The questions the gateway (and `lockflow run`) ask the stage services, one typed call each.

Each call builds its request from the published contract, asks through a `Requester` and returns
the reply's content; errors are the service's own (`InvalidInput`, `NotFound`, ...), `TimedOut`
or `Unavailable`. What the service needs from the run's state travels in the request: the caller
reads it through its own views, so no service reads another's tables.
"""

from typing import Any

from lockflow.common.errors import InvalidInput
from lockflow.common.events import (
    CheckFile,
    CheckFilePayload,
    DescribeFile,
    DescribeFilePayload,
    FileChecked,
    FileCheckedPayload,
    FileDescribed,
    PreviewResolutions,
    PreviewResolutionsPayload,
    ResolutionsPreviewed,
    SourceTested,
    TestSource,
    TestSourcePayload,
)
from lockflow.common.models import ColumnSchema, DatasetRef, Finding, Goal, SourceHealth, SourceSpec
from lockflow.common.pipeline import DecisionContext, check_quality_choices
from lockflow.common.reqreply import Requester


async def preview_fixes(
    requester: Requester,
    *,
    run_id: str,
    request_id: str,
    dataset: DatasetRef | None,
    findings: list[Finding],
    context: DecisionContext,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Gate 2's dry run by the quality service: the choices are checked here first, as for a decision."""
    choices = check_quality_choices(params, context)
    if dataset is None:
        raise InvalidInput(f"decision request {request_id} has no dataset to preview")
    payload = PreviewResolutionsPayload(
        request_id=request_id, dataset=dataset, findings=findings, choices=choices.choices
    )
    reply = await requester.ask(PreviewResolutions, payload, expect=ResolutionsPreviewed, run_id=run_id)
    return reply.payload.preview


async def source_health(requester: Requester, *, ref: str) -> SourceHealth:
    """A registered source's health check, run (and stored) by the ingest service."""
    reply = await requester.ask(TestSource, TestSourcePayload(ref=ref), expect=SourceTested)
    return reply.payload.health


async def check_file(requester: Requester, *, spec: SourceSpec, goal: Goal) -> FileCheckedPayload:
    """The ingest service's pre-check of a file before a run exists, with the goal's target settled."""
    reply = await requester.ask(CheckFile, CheckFilePayload(source=spec, goal=goal), expect=FileChecked)
    return reply.payload


async def describe_file(requester: Requester, *, spec: SourceSpec) -> list[ColumnSchema]:
    """The schema the ingest service infers from a file's head (refusing unreadable files)."""
    reply = await requester.ask(DescribeFile, DescribeFilePayload(source=spec), expect=FileDescribed)
    return reply.payload.columns
