"""Stage 1 handlers: read the source into a content-addressed Parquet artifact."""

from lockflow.common.events import Command, Event, IngestSource, SourceIngested, SourceIngestedPayload
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.ingest.ingest import ingest
from lockflow.ingest.settings import source_settings

PRODUCER = "ingest"


def ingest_source(command: Command, deps: StageDeps) -> Event:
    """Check and read the source in chunks, infer its schema, store it, and report what was read."""
    assert isinstance(command, IngestSource)
    spec = command.payload.source
    result = ingest(
        spec, artifacts=deps.artifacts, cache=deps.cache, db=deps.db, settings=source_settings(deps.settings)
    )
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


HANDLERS: dict[str, StageHandler] = {"IngestSource": ingest_source}
