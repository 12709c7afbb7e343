"""Composition root of every worker and of embedded mode: builds the adapters once, for either mode.

Handlers are the same in both modes; only the bus, database, cache and artifact store differ. The
adapters are the gateway's (lockflow.gateway.bootstrap), plus the orchestrator and the stage
handlers; this package may import every service, no service imports it.
Tests call `build_system` with their own adapters (e.g. an InMemoryBus) instead of mocks.
"""

import time
from dataclasses import dataclass, field
from datetime import timedelta

import anyio

from lockflow.analytics.handlers import HANDLERS as ANALYTICS
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.bus import Bus, DeliveredEvent
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.cache import Cache
from lockflow.common.clock import Clock
from lockflow.common.db import Database
from lockflow.common.logging import get_logger
from lockflow.common.pipeline import STAGES, all_topics
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageHandler, StageWorker
from lockflow.gateway.bootstrap import GatewaySystem, build_bus, build_cache
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
__all__ = ["WORKER_NAMES", "System", "all_topics", "build_system"]


@dataclass
class System(GatewaySystem):
    """The built adapters of one process, and what it started: the gateway's, plus the pipeline."""

    # Each stage's handler table; tests pass their own (e.g. one that fails first) to build_system.
    handlers: dict[str, dict[str, StageHandler]] = field(default_factory=lambda: dict(STAGE_HANDLERS))
    _swept: float = field(default=0.0, init=False, repr=False)

    @property
    def deps(self) -> StageDeps:
        """What stage handlers may use."""
        return StageDeps(
            artifacts=self.artifacts, cache=self.cache, db=self.db, settings=self.settings, clock=self.clock
        )

    def events_topic(self) -> str:
        """The shared topic of facts."""
        return f"{self.bus.prefix}.events"

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

    async def relay_tick(self) -> None:
        """Publish the outbox, and every heartbeat interval sweep the pending attempts, so an attempt
        whose worker died is noticed."""
        await self.relay_outbox()
        if time.monotonic() - self._swept >= self.settings.heartbeat_seconds:
            self._swept = time.monotonic()
            await self.sweep_attempts()

    async def start(self) -> None:
        """Embedded mode: everything in this process (the gateway's lifespan calls this)."""
        if isinstance(self.bus, KafkaBus):
            await self.bus.ensure_topics(all_topics(self.bus.prefix))
        await self.start_everything()

    async def start_everything(self) -> None:
        """Embedded mode: the orchestrator, every stage and the relay in this process."""
        await self.bus.start()
        await self.start_orchestrator()
        for stage in STAGES:
            await self.start_worker(stage)
        self.start_relay_loop(interval=0.5)


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
    return System(
        settings=settings,
        db=Database(settings.resolved_database_url()),
        bus=bus or build_bus(settings, client_id=client_id),
        artifacts=ArtifactStore(settings.resolved_artifact_dir()),
        cache=cache or build_cache(settings),
        clock=clock or settings.clock(),
        handlers={**STAGE_HANDLERS, **(handlers or {})},
    )
