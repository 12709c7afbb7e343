"""Composition root of the analytics service: its handler table on a stage worker, and nothing else.

`python -m lockflow.analytics.bootstrap` (or `lockflow worker analytics`) runs it as its own process;
`lockflow.bootstrap` starts the same handlers in the embedded process.
"""

from lockflow.analytics.handlers import HANDLERS
from lockflow.common.bus import Subscription
from lockflow.common.runtime import Adapters, run_service, start_stage
from lockflow.common.settings import CommonSettings

STAGE = "analytics"
__all__ = ["HANDLERS", "STAGE", "main", "start"]


async def start(adapters: Adapters) -> Subscription:
    """The analytics worker: this stage's consumer group, this stage's handlers."""
    return await start_stage(adapters, STAGE, HANDLERS)


def main() -> None:
    """Run the analytics service as its own process over Kafka (distributed mode)."""
    run_service(STAGE, CommonSettings, start)


if __name__ == "__main__":
    main()
