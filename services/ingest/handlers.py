"""Stage 1 handlers: read the source into a content-addressed Parquet artifact."""

from lockflow.common.errors import InvalidInput
from lockflow.common.events import Command, Event, IngestSource, SourceIngested, SourceIngestedPayload
from lockflow.common.models import DatasetRef
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.ingest.ingest import ingest
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
