"""The stage worker runtime: consume a stage's commands, run the pure handler, publish the result.

Handlers are synchronous functions (pandas and scikit-learn are CPU-bound) run in a thread. A
handler raising a LockflowError (bad data, bad parameters) ends the attempt with StageFailed and
the message at once; anything else is retried twice with backoff, then ends the attempt with
StageFailed too, so a run never waits on a command nobody will finish.

Budgets are checked, not hoped: while a handler runs, the worker marks its attempt alive in the
database every `heartbeat_seconds` (the orchestrator's sweep re-sends an attempt whose heartbeat
stops: the worker died), polls the process's resident memory, and stops the attempt with a clear
StageFailed when it passes `memory_budget_mb` or runs longer than `stage_timeout_seconds`. The
stopped handler's thread is interrupted (an exception raised in it at its next Python step), so
it stops allocating; an attempt that was superseded before the worker started it is skipped.
"""

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import anyio
import structlog
from sqlalchemy import update
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_incrementing,
)

from lockflow.common import metrics
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.bus import Bus, DeliveredEvent, Subscription
from lockflow.common.cache import Cache
from lockflow.common.clock import Clock, SystemClock
from lockflow.common.db import Database, StageAttemptRow, utcnow
from lockflow.common.errors import LockflowError, StageError
from lockflow.common.events import Command, Event, StageFailed, StageFailedPayload
from lockflow.common.logging import get_logger
from lockflow.common.settings import CommonSettings

log = get_logger(__name__)
UNEXPECTED_ERROR_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = 0.5
MEMORY_POLL_SECONDS = 0.1


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


def _log_retry(state: RetryCallState) -> None:
    """Log an attempt that failed unexpectedly and is about to be tried again."""
    failure = state.outcome.exception() if state.outcome is not None else None
    log.warning("stage_retrying", attempt=state.attempt_number, error=repr(failure))


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
        await anyio.to_thread.run_sync(self._warm_up)
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
            attempt_id = str(getattr(command.payload, "attempt_id", ""))
            metrics.STAGE_QUEUE_WAIT.labels(stage=self.stage).observe(
                metrics.seconds_since(command.occurred_at)
            )
            if not await anyio.to_thread.run_sync(self._mark_started, attempt_id):
                log.info("superseded_attempt_skipped", attempt_id=attempt_id)
                metrics.STAGE_MESSAGES.labels(stage=self.stage, outcome="skipped").inc()
                return
            log.info("stage_started", command=command.type)
            started = time.perf_counter()
            error_type = ""
            try:
                outcome = await self._run_with_retries(handler, command)
            except LockflowError as exc:
                log.info("stage_failed", error=str(exc))
                outcome, error_type = self._failed(command, str(exc)), error_type_of(exc)
            except Exception as exc:
                # A bug or a lasting outage: end the attempt visibly rather than leave the run hanging.
                log.exception("stage_crashed", error=repr(exc))
                outcome, error_type = (
                    self._failed(command, f"unexpected error in {self.stage}: {type(exc).__name__}: {exc}"),
                    "unexpected",
                )
            self._observe(started, error_type)
            await bus.publish(outcome)
            log.info("stage_finished", outcome=outcome.type)

    def _observe(self, started: float, error_type: str) -> None:
        """Count the attempt's outcome and time (an empty error type: it succeeded)."""
        metrics.STAGE_DURATION.labels(stage=self.stage).observe(time.perf_counter() - started)
        if error_type:
            metrics.STAGE_MESSAGES.labels(stage=self.stage, outcome="failed").inc()
            metrics.STAGE_FAILURES.labels(stage=self.stage, error_type=error_type).inc()
        else:
            metrics.STAGE_MESSAGES.labels(stage=self.stage, outcome="succeeded").inc()
            metrics.STAGE_LAST_SUCCESS.labels(stage=self.stage).set(metrics.now_seconds())

    async def _run_with_retries(self, handler: StageHandler, command: Command) -> Event:
        # The stage timeout covers the whole attempt, retries included (the sweep's deadline does).
        settings = self.deps.settings or CommonSettings()
        ends_at = anyio.current_time() + settings.stage_timeout_seconds
        # A LockflowError is the data's or the parameters' fault: the same again would fail the same.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(UNEXPECTED_ERROR_ATTEMPTS),
            wait=wait_incrementing(start=RETRY_BACKOFF_SECONDS, increment=RETRY_BACKOFF_SECONDS),
            retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(LockflowError),
            sleep=anyio.sleep,
            before_sleep=self._retrying,
            reraise=True,
        )
        outcome: Event = await retrying(self._run_within_budget, handler, command, ends_at=ends_at)
        return outcome

    async def _run_within_budget(self, handler: StageHandler, command: Command, *, ends_at: float) -> Event:
        """The handler's outcome, unless it passes the memory budget or the stage timeout first."""
        settings = self.deps.settings or CommonSettings()
        attempt_id = str(getattr(command.payload, "attempt_id", ""))
        call = _InterruptibleCall(handler, command, self.deps)
        stopped: list[str] = []

        async def watch(scope: anyio.CancelScope) -> None:
            beaten = anyio.current_time()
            while True:
                await anyio.sleep(MEMORY_POLL_SECONDS)
                used = resident_mb()
                if settings.memory_budget_mb and used is not None and used > settings.memory_budget_mb:
                    stopped.append(
                        f"{self.stage} stopped: the worker used {used:,} MB, more than its memory budget "
                        f"of {settings.memory_budget_mb:,} MB (LOCKFLOW_MEMORY_BUDGET_MB)"
                    )
                    scope.cancel()
                    return
                if anyio.current_time() - beaten >= settings.heartbeat_seconds:
                    beaten = anyio.current_time()
                    await anyio.to_thread.run_sync(self._beat, attempt_id)

        with anyio.move_on_after(max(0.0, ends_at - anyio.current_time())) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, scope)
                await anyio.to_thread.run_sync(call.run, abandon_on_cancel=True)
                group.cancel_scope.cancel()
        if call.finished:
            return call.outcome()
        call.interrupt()
        raise StageError(
            stopped[0]
            if stopped
            else f"{self.stage} stopped: the attempt ran longer than its budget of "
            f"{settings.stage_timeout_seconds:g}s (LOCKFLOW_STAGE_TIMEOUT_SECONDS)"
        )

    def _retrying(self, state: RetryCallState) -> None:
        metrics.STAGE_RETRIES.labels(stage=self.stage).inc()
        _log_retry(state)

    def _warm_up(self) -> None:
        """Open a pooled connection and configure the mappers now, not on the first command."""
        # Otherwise the first attempt's start waits for both (hundreds of ms on a busy machine).
        if self.deps.db is None:
            return
        try:
            with self.deps.db.transaction() as session:
                session.get(StageAttemptRow, "")
        except Exception as exc:  # the database away at start: the first command connects instead
            log.warning("worker_warm_up_failed", error=repr(exc))

    def _mark_started(self, attempt_id: str) -> bool:
        """Record the start (heartbeat, deadline); False if the attempt was superseded or settled."""
        if self.deps.db is None or not attempt_id:
            return True
        settings = self.deps.settings or CommonSettings()
        # The sweep acts on a deadline only if this worker did not stop the attempt itself.
        grace = settings.stage_timeout_seconds + settings.heartbeat_timeout_seconds
        try:
            with self.deps.db.transaction() as session:
                row = session.get(StageAttemptRow, attempt_id)
                if row is None:  # a command sent without the orchestrator (tools, tests)
                    return True
                if row.status != "requested":
                    return False
                row.heartbeat_at = now = utcnow()
                row.deadline_at = now + timedelta(seconds=grace)
        except Exception as exc:  # a database hiccup must not stop the work itself
            log.warning("attempt_start_not_recorded", error=repr(exc))
        return True

    def _beat(self, attempt_id: str) -> None:
        if self.deps.db is None or not attempt_id:
            return
        try:
            with self.deps.db.transaction() as session:
                session.execute(
                    update(StageAttemptRow)
                    .where(StageAttemptRow.id == attempt_id, StageAttemptRow.status == "requested")
                    .values(heartbeat_at=utcnow())
                )
        except Exception as exc:  # a missed beat is retried at the next one
            log.warning("heartbeat_not_recorded", error=repr(exc))

    def _failed(self, command: Command, error: str) -> Event:
        payload = StageFailedPayload(
            attempt_id=command.payload.attempt_id,  # type: ignore[attr-defined]
            stage=self.stage,
            error=error,
        )
        return command.follow(StageFailed, payload, producer=self.stage)


def error_type_of(exc: LockflowError) -> str:
    """The failure's kind as a bounded label: a stopped budget, an unreachable dependency, or bad input."""
    message = str(exc)
    if "LOCKFLOW_STAGE_TIMEOUT_SECONDS" in message:
        return "timeout"
    if "LOCKFLOW_MEMORY_BUDGET_MB" in message:
        return "memory_budget"
    if "Unavailable" in type(exc).__name__:
        return "unavailable"
    return "invalid_input"


class AttemptStopped(BaseException):
    """Raised inside a handler's thread that passed its budget; a BaseException so no
    `except Exception` in a handler swallows it."""


class _InterruptibleCall:
    """A handler call run in a worker thread that can be interrupted from outside."""

    def __init__(self, handler: StageHandler, command: Command, deps: StageDeps) -> None:
        self._handler, self._command, self._deps = handler, command, deps
        self._thread_id: int | None = None
        self._result: Event | None = None
        self._error: BaseException | None = None
        self.finished = False

    def run(self) -> None:
        """Call the handler, keeping its outcome (or error) for `outcome`."""
        self._thread_id = threading.get_ident()
        try:
            self._result = self._handler(self._command, self._deps)
        except AttemptStopped:
            return
        except BaseException as exc:
            self._error = exc
        self.finished = True

    def outcome(self) -> Event:
        """The handler's event, or its error raised again."""
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def interrupt(self) -> None:
        """Raise AttemptStopped in the handler's thread at its next Python step."""
        if self._thread_id is not None and not self.finished:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread_id), ctypes.py_object(AttemptStopped)
            )


def resident_mb(status: Path = Path("/proc/self/status")) -> int | None:
    """This process's resident memory in MB (VmRSS), or None where /proc is not available."""
    try:
        text = status.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return None
