"""Composition root of the ingest service: its handler table on a stage worker, and nothing else.
Its settings are the source settings (size limits, network policy, secrets key), checked at start
rather than per command.

`python -m lockflow.ingest.bootstrap` (or `lockflow worker ingest`) runs it as its own process;
`lockflow.bootstrap` starts the same handlers in the embedded process.
"""

from lockflow.common.bus import Subscription
from lockflow.common.runtime import Adapters, run_service, start_stage
from lockflow.ingest.handlers import HANDLERS
from lockflow.ingest.settings import SourceSettings

STAGE = "ingest"
__all__ = ["HANDLERS", "STAGE", "main", "start"]


async def start(adapters: Adapters) -> Subscription:
    """The ingest worker: this stage's consumer group, this stage's handlers."""
    return await start_stage(adapters, STAGE, HANDLERS)


def main() -> None:
    """Run the ingest service as its own process over Kafka (distributed mode)."""
    run_service(STAGE, SourceSettings, start)


if __name__ == "__main__":
    main()
