"""Embedded composition root: every service on one process's adapters, with the same handlers.

This package may import every service; no service imports it. The gateway has its own root
(`lockflow.gateway.bootstrap`); a System here serves it too in embedded mode (`lockflow.embedded`).
Each service has its own composition root (`lockflow.<service>.bootstrap`) that builds only what it
needs and runs it as its own process (distributed mode). This one composes all of them in one
process for `lockflow up` and `lockflow run`: the adapters once (`lockflow.common.runtime`), the
orchestrator (`lockflow.orchestrator.bootstrap.Orchestrator`) and each stage's handler table from
its service's bootstrap. Tests call `build_system` with their own adapters (e.g. an InMemoryBus)
or handler tables instead of mocks.
"""

from dataclasses import dataclass, field

from lockflow.analytics import bootstrap as analytics
from lockflow.common.bus import Bus, Subscription
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.cache import Cache
from lockflow.common.clock import Clock
from lockflow.common.pipeline import STAGES, all_topics
from lockflow.common.reqreply import RequestHandler
from lockflow.common.runtime import (
    WORKER_NAMES,
    Adapters,
    build_adapters,
    ensure_topics,
    start_answering,
    start_stage,
)
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageHandler
from lockflow.ingest import bootstrap as ingest
from lockflow.insights import bootstrap as insights
from lockflow.orchestrator.bootstrap import Orchestrator
from lockflow.orchestrator.liveness import LivenessPolicy
from lockflow.quality import bootstrap as quality
from lockflow.recommendations import bootstrap as recommendations
from lockflow.reporting import bootstrap as reporting

__all__ = ["REQUEST_HANDLERS", "STAGE_HANDLERS", "WORKER_NAMES", "System", "all_topics", "build_system"]

STAGE_HANDLERS: dict[str, dict[str, StageHandler]] = {
    service.STAGE: service.HANDLERS
    for service in (ingest, quality, analytics, insights, recommendations, reporting)
}
assert set(STAGE_HANDLERS) == set(STAGES)
# The questions each service answers (request/reply), beside its stage's commands.
REQUEST_HANDLERS: dict[str, dict[str, RequestHandler]] = {
    service.STAGE: service.REQUESTS for service in (ingest, quality)
}


@dataclass
class System(Adapters):
    """The built adapters of one process, and what it started."""

    subscriptions: list[Subscription] = field(default_factory=list)  # the stage workers started
    # Each stage's handler table; tests pass their own (e.g. one that fails first) to build_system.
    handlers: dict[str, dict[str, StageHandler]] = field(default_factory=lambda: dict(STAGE_HANDLERS))
    orchestrator: Orchestrator = field(init=False)
    # What `start` runs when the gateway's app starts this System: the whole pipeline (`lockflow up`),
    # or only the API's part with the services' answers (an embedded app whose runs are driven by hand).
    run_pipeline: bool = True

    def __post_init__(self) -> None:
        # Built even when this process does not consume events: the relay loop and the gateway's
        # outbox relay are the orchestrator's, and every process publishes what its outbox holds.
        self.orchestrator = Orchestrator(self)

    async def relay_outbox(self) -> int:
        """Publish whatever the outbox holds (serialised within this process)."""
        return await self.orchestrator.relay_outbox()

    async def start_orchestrator(self) -> None:
        """Consume the events topic and apply each event to its run."""
        await self.orchestrator.start()

    async def start_worker(self, stage: str) -> None:
        """Start one stage's worker with this system's handler table for it."""
        self.subscriptions.append(await start_stage(self, stage, self.handlers[stage]))

    async def start_answering(self, service: str) -> None:
        """Answer one service's requests (if it has any) from this process."""
        table = REQUEST_HANDLERS.get(service)
        if table:
            self.subscriptions.append(await start_answering(self, service, table))

    async def ensure_topics(self) -> None:
        """Create every topic on Kafka if missing (nothing to do on the in-memory bus)."""
        await ensure_topics(self)

    def liveness_policy(self) -> LivenessPolicy:
        """How long an attempt may be silent or pending, and how often it is sent (from settings)."""
        return self.orchestrator.liveness_policy()

    async def sweep_attempts(self) -> int:
        """Send again or fail every overdue attempt (its worker died or never came); returns how many."""
        return await self.orchestrator.sweep_attempts()

    def start_relay_loop(self, *, interval: float = 1.0) -> None:
        """The orchestrator's outbox relay and attempt sweep, on a timer (see Orchestrator)."""
        self.orchestrator.start_relay_loop(interval=interval)

    async def start(self) -> None:
        """As the gateway's app starts it: the topics, then the pipeline (or only the API's part) here."""
        await self.ensure_topics()
        if self.run_pipeline:
            await self.start_everything()
            return
        await self.bus.start()
        await self.requester.start()
        if isinstance(self.bus, InMemoryBus):  # no other process can answer on this bus
            for service in REQUEST_HANDLERS:
                await self.start_answering(service)
        self.start_relay_loop()

    async def start_everything(self) -> None:
        """Embedded mode: the orchestrator, every stage and the relay in this process."""
        await self.bus.start()
        await self.requester.start()
        await self.start_orchestrator()
        for stage in STAGES:
            await self.start_worker(stage)
            await self.start_answering(stage)
        self.start_relay_loop(interval=0.5)

    async def close(self) -> None:
        """Stop consumers, background tasks and connections."""
        await self.orchestrator.stop()
        for subscription in self.subscriptions:
            await subscription.stop()
        await self.requester.stop()
        await self.bus.stop()
        self.db.dispose()


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
    adapters = build_adapters(settings, bus=bus, cache=cache, clock=clock, client_id=client_id)
    return System(**vars(adapters), handlers={**STAGE_HANDLERS, **(handlers or {})})
