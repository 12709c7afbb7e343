"""Stage 1 handlers: read the source into a content-addressed Parquet artifact; answer the gateway's
questions about sources and files (health check, pre-check, head schema)."""

from pathlib import Path

from lockflow.common.errors import InvalidInput, LockflowError
from lockflow.common.events import (
    CheckFile,
    Command,
    DescribeFile,
    Event,
    FileChecked,
    FileCheckedPayload,
    FileDescribed,
    FileDescribedPayload,
    IngestSource,
    PickedTarget,
    Reply,
    Request,
    SourceIngested,
    SourceIngestedPayload,
    SourceTested,
    SourceTestedPayload,
    TestSource,
)
from lockflow.common.models import DatasetRef, SourceSpec
from lockflow.common.reqreply import RequestHandler
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.ingest.connections import test_source
from lockflow.ingest.ingest import ingest
from lockflow.ingest.preflight import preflight, preflight_columns, settle_goal
from lockflow.ingest.uploaded import Spool
from lockflow.sources.settings import source_settings

PRODUCER = "ingest"


def ingest_source(command: Command, deps: StageDeps) -> Event:
    """Check and read the source in chunks, infer its schema, store it, and report what was read."""
    assert isinstance(command, IngestSource)
    spec = command.payload.source
    result = ingest(
        spec, artifacts=deps.artifacts, cache=deps.cache, db=deps.db, settings=source_settings(deps.settings)
    )
    refuse_too_wide(result.dataset, deps.settings or CommonSettings())
    payload = SourceIngestedPayload(
        attempt_id=command.payload.attempt_id,
        source=spec,
        dataset=result.dataset,
        sample=result.sample,
        bytes_read=result.bytes_read,
        config=result.config,
        health=result.health,
        drift=result.drift,
        schema_cached=result.cached,
        contract=result.contract,
    )
    return command.follow(SourceIngested, payload, producer=PRODUCER)


def refuse_too_wide(dataset: DatasetRef, settings: CommonSettings) -> None:
    """Stop the run at gate 1 when the data has more columns than later stages may work on."""
    if len(dataset.columns) > settings.max_columns:
        raise InvalidInput(
            f"the data has {len(dataset.columns):,} columns, more than the limit of {settings.max_columns:,} "
            "(LOCKFLOW_MAX_COLUMNS); select fewer columns, or raise the limit if this server has the memory"
        )


HANDLERS: dict[str, StageHandler] = {"IngestSource": ingest_source}


def health_check(request: Request, deps: StageDeps) -> Reply:
    """Run a registered source's health check (reachable, authorised, readable), store and return it."""
    assert isinstance(request, TestSource)
    if deps.db is None:
        raise LockflowError("the ingest service has no database to read sources from")
    health = test_source(
        deps.db, ref=request.payload.ref, settings=source_settings(deps.settings), artifacts=deps.artifacts
    )
    return request.follow(SourceTested, SourceTestedPayload(health=health), producer=PRODUCER)


def check_file(request: Request, deps: StageDeps) -> Reply:
    """Check a file's head before a run exists and settle the goal's target (given, picked, or none)."""
    assert isinstance(request, CheckFile)
    spec, goal = request.payload.source, request.payload.goal
    with Spool(deps.artifacts) as spool:
        checked = preflight(spec=spec, goal=goal, local=_local(spec, spool))
    settled, choice = settle_goal(goal, checked, source=Path(spec.path).name)
    payload = FileCheckedPayload(
        columns=checked.columns,
        goal=settled,
        picked=PickedTarget(target=choice.target, reason=choice.reason) if choice else None,
        numeric_columns=checked.numeric_columns(),
    )
    return request.follow(FileChecked, payload, producer=PRODUCER)


def describe_file(request: Request, deps: StageDeps) -> Reply:
    """The schema inferred from a file's head (at most 1,000 rows); refuses unreadable files."""
    assert isinstance(request, DescribeFile)
    spec = request.payload.source
    with Spool(deps.artifacts) as spool:
        columns = preflight_columns(spec=spec, local=_local(spec, spool))
    return request.follow(FileDescribed, FileDescribedPayload(columns=columns), producer=PRODUCER)


def _local(spec: SourceSpec, spool: Spool) -> Path | None:
    """An upload's local copy, fetched from the artifact store (None for a file the spec names by path)."""
    return spool.local(spec.uri, name=spec.path) if spec.uri is not None else None


# What the ingest service answers on lockflow.requests.ingest (request/reply; see lockflow.common.reqreply).
REQUESTS: dict[str, RequestHandler] = {
    "TestSource": health_check,
    "CheckFile": check_file,
    "DescribeFile": describe_file,
}
