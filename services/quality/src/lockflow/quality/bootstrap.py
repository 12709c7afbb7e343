"""Composition root of the quality service: its stage's handlers and its requests' handlers, nothing else.

`python -m lockflow.quality.bootstrap` (or `lockflow worker quality`) runs it as its own process;
`lockflow.bootstrap` starts the same handlers in the embedded process.
"""

from lockflow.common.runtime import Adapters, Together, run_service, start_answering, start_stage
from lockflow.quality.handlers import HANDLERS, REQUESTS
from lockflow.quality.settings import QualitySettings

STAGE = "quality"
__all__ = ["HANDLERS", "REQUESTS", "STAGE", "main", "start"]


async def start(adapters: Adapters) -> Together:
    """The quality worker (its consumer group and handlers) and its answers (the gate-2 preview)."""
    return Together(
        [await start_stage(adapters, STAGE, HANDLERS), await start_answering(adapters, STAGE, REQUESTS)]
    )


def main() -> None:
    """Run the quality service as its own process over Kafka (distributed mode)."""
    run_service(STAGE, QualitySettings, start)


if __name__ == "__main__":
    main()
