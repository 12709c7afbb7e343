"""Composition root of the reporting service: its handler table on a stage worker, and nothing else.

`python -m lockflow.reporting.bootstrap` (or `lockflow worker reporting`) runs it as its own process;
`lockflow.bootstrap` starts the same handlers in the embedded process.
"""

from lockflow.common.bus import Subscription
from lockflow.common.runtime import Adapters, run_service, start_stage
from lockflow.common.settings import CommonSettings
from lockflow.reporting.handlers import HANDLERS

STAGE = "reporting"
__all__ = ["HANDLERS", "STAGE", "main", "start"]


async def start(adapters: Adapters) -> Subscription:
    """The reporting worker: this stage's consumer group, this stage's handlers."""
    return await start_stage(adapters, STAGE, HANDLERS)


def main() -> None:
    """Run the reporting service as its own process over Kafka (distributed mode)."""
    run_service(STAGE, CommonSettings, start)


if __name__ == "__main__":
    main()
