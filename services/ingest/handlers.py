"""Stage 1 handlers: read the source into a content-addressed Parquet artifact."""

from lockflow.common.events import Command, Event, IngestSource, SourceIngested, SourceIngestedPayload
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.ingest.read import load_source

PRODUCER = "ingest"


def ingest_source(command: Command, deps: StageDeps) -> Event:
    """Read the file in chunks, infer its schema, store it, and report what was read."""
    assert isinstance(command, IngestSource)
    loaded = load_source(spec=command.payload.source)
    dataset = deps.artifacts.put_table(loaded.table, columns=loaded.columns)
    payload = SourceIngestedPayload(
        attempt_id=command.payload.attempt_id,
        source=command.payload.source,
        dataset=dataset,
        sample=loaded.sample,
        bytes_read=loaded.bytes_read,
    )
    return command.follow(SourceIngested, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"IngestSource": ingest_source}
