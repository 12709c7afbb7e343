"""Composition root of the ingest service: its stage's handlers and its requests' handlers, nothing else.
Its settings are the source settings (size limits, network policy, secrets key), checked at start
rather than per command.

`python -m lockflow.ingest.bootstrap` (or `lockflow worker ingest`) runs it as its own process;
`lockflow.bootstrap` starts the same handlers in the embedded process.
"""

from lockflow.common.runtime import Adapters, Together, run_service, start_answering, start_stage
from lockflow.ingest.handlers import HANDLERS, REQUESTS
from lockflow.sources.settings import SourceSettings

STAGE = "ingest"
__all__ = ["HANDLERS", "REQUESTS", "STAGE", "main", "start"]


async def start(adapters: Adapters) -> Together:
    """The ingest worker (its consumer group and handlers) and its answers (health checks, pre-checks)."""
    return Together(
        [await start_stage(adapters, STAGE, HANDLERS), await start_answering(adapters, STAGE, REQUESTS)]
    )


def main() -> None:
    """Run the ingest service as its own process over Kafka (distributed mode)."""
    run_service(STAGE, SourceSettings, start)


if __name__ == "__main__":
    main()
