"""The stage worker runtime: consume a stage's commands, run the pure handler, publish the result.

Handlers are synchronous functions (pandas and scikit-learn are CPU-bound) run in a thread. A
handler raising a LockflowError (bad data, bad parameters) ends the attempt with StageFailed and
the message at once; anything else is retried twice with backoff, then ends the attempt with
StageFailed too, so a run never waits on a command nobody will finish.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import structlog

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.bus import Bus, DeliveredEvent, Subscription
from lockflow.common.cache import Cache
from lockflow.common.clock import Clock, SystemClock
from lockflow.common.db import Database
from lockflow.common.errors import LockflowError
from lockflow.common.events import Command, Event, StageFailed, StageFailedPayload
from lockflow.common.logging import get_logger
from lockflow.common.settings import CommonSettings

log = get_logger(__name__)
UNEXPECTED_ERROR_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class StageDeps:
    """What stage handlers may use: the artifact store, the result cache and the clock."""

    artifacts: ArtifactStore
    cache: Cache
    # The database and settings, for stages that read registered configuration (ingest: sources).
    db: Database | None = None
    settings: CommonSettings | None = None
    # What data is judged against (staleness); the composition root passes the process's one clock.
    clock: Clock = field(default_factory=SystemClock)


StageHandler = Callable[[Command, StageDeps], Event]


@dataclass(frozen=True)
class StageWorker:
    """A stage's handler table bound to its dependencies."""

    stage: str
    handlers: dict[str, StageHandler]
    deps: StageDeps

    def commands_topic(self, prefix: str) -> str:
        """The topic this stage consumes."""
        return f"{prefix}.commands.{self.stage}"

    async def start(self, bus: Bus) -> Subscription:
        """Join the stage's consumer group and start handling commands."""
        return await bus.subscribe(
            topics=[self.commands_topic(bus.prefix)],
            group=f"{bus.prefix}-{self.stage}",
            handler=lambda delivered: self.handle(bus, delivered),
        )

    async def handle(self, bus: Bus, delivered: DeliveredEvent) -> None:
        """Run the handler for one command and publish its outcome."""
        command = delivered.event
        handler = self.handlers.get(command.type)
        if handler is None or not isinstance(command, Command):
            log.warning("command_not_handled", stage=self.stage, event_type=command.type)
            return
        with structlog.contextvars.bound_contextvars(run_id=command.run_id, stage=self.stage):
            log.info("stage_started", command=command.type)
            try:
                outcome = await self._run_with_retries(handler, command)
            except LockflowError as exc:
                log.info("stage_failed", error=str(exc))
                outcome = self._failed(command, str(exc))
            except Exception as exc:
                # A bug or a lasting outage: end the attempt visibly rather than leave the run hanging.
                log.exception("stage_crashed", error=repr(exc))
                outcome = self._failed(
                    command, f"unexpected error in {self.stage}: {type(exc).__name__}: {exc}"
                )
            await bus.publish(outcome)
            log.info("stage_finished", outcome=outcome.type)

    async def _run_with_retries(self, handler: StageHandler, command: Command) -> Event:
        for attempt in range(1, UNEXPECTED_ERROR_ATTEMPTS + 1):
            try:
                return await anyio.to_thread.run_sync(handler, command, self.deps)
            except LockflowError:
                raise
            except Exception as exc:
                if attempt == UNEXPECTED_ERROR_ATTEMPTS:
                    raise
                log.warning("stage_retrying", attempt=attempt, error=repr(exc))
                await anyio.sleep(RETRY_BACKOFF_SECONDS * attempt)
        raise AssertionError("unreachable")

    def _failed(self, command: Command, error: str) -> Event:
        payload = StageFailedPayload(
            attempt_id=command.payload.attempt_id,  # type: ignore[attr-defined]
            stage=self.stage,
            error=error,
        )
        return command.follow(StageFailed, payload, producer=self.stage)
