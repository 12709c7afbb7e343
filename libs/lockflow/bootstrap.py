"""Composition root: builds the adapters once, for embedded or distributed mode.

Handlers are the same in both modes; only the bus, database, cache and artifact store differ.
Tests call `build_system` with their own adapters (e.g. an InMemoryBus) instead of mocks.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import timedelta

import anyio

from lockflow.analytics.handlers import HANDLERS as ANALYTICS
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.bus import Bus, DeliveredEvent, ErrorPolicy, Subscription
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.cache import Cache, MemoryCache, RedisCache
from lockflow.common.clock import Clock
from lockflow.common.db import Database, is_database_outage
from lockflow.common.logging import get_logger
from lockflow.common.outbox import publish_pending
from lockflow.common.pipeline import STAGES
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageHandler, StageWorker
from lockflow.ingest.handlers import HANDLERS as INGEST
from lockflow.insights.handlers import HANDLERS as INSIGHTS
from lockflow.orchestrator.liveness import LivenessPolicy
from lockflow.orchestrator.service import handle_event, sweep_attempts
from lockflow.quality.handlers import HANDLERS as QUALITY
from lockflow.recommendations.handlers import HANDLERS as RECOMMENDATIONS
from lockflow.reporting.handlers import HANDLERS as REPORTING

log = get_logger(__name__)

STAGE_HANDLERS: dict[str, dict[str, StageHandler]] = {
    "ingest": INGEST,
    "quality": QUALITY,
    "analytics": ANALYTICS,
    "insights": INSIGHTS,
    "recommendations": RECOMMENDATIONS,
    "reporting": REPORTING,
}
assert set(STAGE_HANDLERS) == set(STAGES)
WORKER_NAMES = ("orchestrator", *STAGES)


@dataclass
class System:
    """The built adapters of one process, and what it started."""

    settings: CommonSettings
    db: Database
    bus: Bus
    artifacts: ArtifactStore
    cache: Cache
    clock: Clock  # the one clock data is judged by (LOCKFLOW_AS_OF, else the system's)
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    relay_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Each stage's handler table; tests pass their own (e.g. one that fails first) to build_system.
    handlers: dict[str, dict[str, StageHandler]] = field(default_factory=lambda: dict(STAGE_HANDLERS))

    @property
    def deps(self) -> StageDeps:
        """What stage handlers may use."""
        return StageDeps(
            artifacts=self.artifacts, cache=self.cache, db=self.db, settings=self.settings, clock=self.clock
        )

    def events_topic(self) -> str:
        """The shared topic of facts."""
        return f"{self.bus.prefix}.events"

    async def relay_outbox(self) -> int:
        """Publish whatever the outbox holds (serialised within this process)."""
        async with self.relay_lock:
            return await publish_pending(self.db, self.bus)

    async def start_orchestrator(self) -> None:
        """Consume the events topic and apply each event to its run."""

        async def on_event(delivered: DeliveredEvent) -> None:
            await anyio.to_thread.run_sync(handle_event, self.db, delivered.event)
            await self.relay_outbox()

        self.subscriptions.append(
            await self.bus.subscribe(
                topics=[self.events_topic()], group=f"{self.bus.prefix}-orchestrator", handler=on_event
            )
        )

    async def start_worker(self, stage: str) -> None:
        """Start one stage's worker."""
        worker = StageWorker(stage=stage, handlers=self.handlers[stage], deps=self.deps)
        self.subscriptions.append(await worker.start(self.bus))

    def liveness_policy(self) -> LivenessPolicy:
        """How long an attempt may be silent or pending, and how often it is sent (from settings)."""
        return LivenessPolicy(
            heartbeat_timeout=timedelta(seconds=self.settings.heartbeat_timeout_seconds),
            stage_timeout=timedelta(seconds=self.settings.stage_timeout_seconds),
            max_dispatches=self.settings.max_dispatches,
        )

    async def sweep_attempts(self) -> int:
        """Send again or fail every overdue attempt (its worker died or never came); returns how many."""
        done = await anyio.to_thread.run_sync(sweep_attempts, self.db, self.liveness_policy())
        if done:
            await self.relay_outbox()
        return len(done)

    def start_relay_loop(self, *, interval: float = 1.0) -> None:
        """Sweep the outbox periodically, so an event left by a crash is still published, and the
        pending attempts every heartbeat interval, so an attempt whose worker died is noticed."""

        async def loop() -> None:
            swept = 0.0
            while True:
                try:
                    await self.relay_outbox()
                    if time.monotonic() - swept >= self.settings.heartbeat_seconds:
                        swept = time.monotonic()
                        await self.sweep_attempts()
                except Exception as exc:  # the sweep must outlive a transient broker or DB error
                    log.warning("outbox_relay_failed", error=repr(exc))
                await asyncio.sleep(interval)

        self.tasks.append(asyncio.create_task(loop()))

    async def start_everything(self) -> None:
        """Embedded mode: the orchestrator, every stage and the relay in this process."""
        await self.bus.start()
        await self.start_orchestrator()
        for stage in STAGES:
            await self.start_worker(stage)
        self.start_relay_loop(interval=0.5)

    async def close(self) -> None:
        """Stop consumers, background tasks and connections."""
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        await self.bus.stop()
        self.db.dispose()


def all_topics(prefix: str) -> list[str]:
    """Every topic lockflow uses (DLQs are added by ensure_topics)."""
    return [f"{prefix}.events", *[f"{prefix}.commands.{s}" for s in STAGES]]


def build_system(
    settings: CommonSettings,
    *,
    bus: Bus | None = None,
    cache: Cache | None = None,
    clock: Clock | None = None,
    client_id: str = "lockflow",
    handlers: dict[str, dict[str, StageHandler]] | None = None,
) -> System:
    """Build adapters for the settings' mode; pass bus/cache/clock/handlers to override (tests)."""
    distributed = settings.mode == "distributed"
    # An event whose handler meets the database away waits for it rather than being dead-lettered.
    policy = ErrorPolicy(transient=is_database_outage)
    if bus is None:
        bus = (
            KafkaBus(
                bootstrap=settings.kafka_bootstrap,
                client_id=client_id,
                session_timeout_seconds=settings.kafka_session_timeout_seconds,
                prefix=settings.topic_prefix,
                error_policy=policy,
            )
            if distributed
            else InMemoryBus(prefix=settings.topic_prefix, error_policy=policy)
        )
    if cache is None:
        cache = RedisCache(settings.redis_url) if settings.redis_url else MemoryCache()
    return System(
        settings=settings,
        db=Database(settings.resolved_database_url()),
        bus=bus,
        artifacts=ArtifactStore(settings.resolved_artifact_dir()),
        cache=cache,
        clock=clock or settings.clock(),
        handlers={**STAGE_HANDLERS, **(handlers or {})},
    )
