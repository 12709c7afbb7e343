"""What every service's composition root builds: the adapters for the settings' mode, and the process.

A service's `bootstrap` module names what it runs (a stage's handler table, or the orchestrator)
and calls `run_service`; everything else (bus, database, cache, artifact store, clock, the Kafka
topics, signals, the "ready" line) is the same for every service and lives here. The embedded
composition root (`lockflow.bootstrap`) builds the same adapters once and starts every service on
them in one process.
"""

import asyncio
import faulthandler
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from lockflow.common.artifacts import ArtifactStore, store_for
from lockflow.common.bus import Bus, ErrorPolicy, Subscription
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.bus.port import requests_topic
from lockflow.common.cache import Cache, MemoryCache, RedisCache
from lockflow.common.clock import Clock
from lockflow.common.db import Database, is_database_outage
from lockflow.common.health import readiness
from lockflow.common.logging import configure_logging
from lockflow.common.metrics import serve_metrics, set_build_info
from lockflow.common.pipeline import STAGES, all_topics
from lockflow.common.reqreply import Requester, RequestHandler, RequestWorker, replies_topic
from lockflow.common.settings import CommonSettings
from lockflow.common.settings_check import settings_or_exit
from lockflow.common.telemetry import setup_tracing
from lockflow.common.worker import StageDeps, StageHandler, StageWorker

EXIT_UNREACHABLE = 1
# One process each in distributed mode, each from its service's `lockflow.<name>.bootstrap`.
WORKER_NAMES = ("orchestrator", *STAGES, "streams")
# Requests and replies matter only while someone waits (seconds); Kafka drops them after an hour.
SHORT_LIVED = {"retention.ms": "3600000"}


@dataclass
class Adapters:
    """The adapters of one process: bus, database, artifact store, cache and the one clock."""

    settings: CommonSettings
    db: Database
    bus: Bus
    artifacts: ArtifactStore
    cache: Cache
    clock: Clock  # the one clock data is judged by (LOCKFLOW_AS_OF, else the system's)
    requester: Requester  # asks other services (a fix preview, a health check, a file's pre-check)

    @property
    def deps(self) -> StageDeps:
        """What stage handlers may use."""
        return StageDeps(
            artifacts=self.artifacts, cache=self.cache, db=self.db, settings=self.settings, clock=self.clock
        )

    def events_topic(self) -> str:
        """The shared topic of facts."""
        return f"{self.bus.prefix}.events"


def build_adapters(
    settings: CommonSettings,
    *,
    bus: Bus | None = None,
    cache: Cache | None = None,
    clock: Clock | None = None,
    client_id: str = "lockflow",
) -> Adapters:
    """The adapters for the settings' mode; pass bus/cache/clock to override them (tests)."""
    # An event whose handler meets the database away waits for it rather than being dead-lettered.
    policy = ErrorPolicy(transient=is_database_outage)
    if bus is None:
        bus = (
            KafkaBus(
                bootstrap=settings.kafka_bootstrap,
                client_id=client_id,
                session_timeout_seconds=settings.kafka_session_timeout_seconds,
                fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                prefix=settings.topic_prefix,
                error_policy=policy,
            )
            if settings.mode == "distributed"
            else InMemoryBus(prefix=settings.topic_prefix, error_policy=policy)
        )
    if cache is None:
        cache = RedisCache(settings.redis_url) if settings.redis_url else MemoryCache()
    return Adapters(
        settings=settings,
        db=Database(settings.resolved_database_url()),
        bus=bus,
        artifacts=store_for(settings),
        cache=cache,
        clock=clock or settings.clock(),
        requester=Requester(bus, timeout_seconds=settings.request_timeout_seconds, producer=client_id),
    )


def request_topics(prefix: str) -> list[str]:
    """The request/reply topics: one per stage service (some stay empty) and the shared replies."""
    return [*[requests_topic(prefix, s) for s in STAGES], replies_topic(prefix)]


async def ensure_topics(adapters: Adapters) -> None:
    """Create every topic on Kafka if missing (nothing to do on the in-memory bus)."""
    if isinstance(adapters.bus, KafkaBus):
        await adapters.bus.ensure_topics(all_topics(adapters.bus.prefix))
        short = request_topics(adapters.bus.prefix)
        await adapters.bus.ensure_topics(short, configs={t: SHORT_LIVED for t in short})


async def start_answering(
    adapters: Adapters, service: str, handlers: dict[str, RequestHandler]
) -> Subscription:
    """Answer one service's requests on the adapters (its own topic, apart from its stage's commands)."""
    worker = RequestWorker(service=service, handlers=handlers, deps=adapters.deps)
    return await worker.start(adapters.bus)


@dataclass
class Together:
    """Several started consumers stopped as one (a stage worker and its request worker)."""

    parts: list[Subscription]

    async def stop(self) -> None:
        """Stop each part."""
        for part in self.parts:
            await part.stop()


async def start_stage(adapters: Adapters, stage: str, handlers: dict[str, StageHandler]) -> Subscription:
    """Start one stage's worker on the adapters: its consumer group, its handler table."""
    worker = StageWorker(stage=stage, handlers=handlers, deps=adapters.deps)
    return await worker.start(adapters.bus)


class Running(Protocol):
    """What a service's start returns: something to stop at shutdown."""

    async def stop(self) -> None: ...


Start = Callable[[Adapters], Awaitable[Running]]


async def serve(name: str, settings: CommonSettings, start: Start) -> None:
    """Build the adapters, start the service, say it is ready, and run until SIGTERM or SIGINT."""
    adapters = build_adapters(settings, client_id=name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running: Running | None = None
    set_build_info(name)
    metrics = (
        serve_metrics(
            settings.metrics_port,
            readiness(settings, adapters.db, adapters.artifacts),
            host=settings.metrics_host,
        )
        if settings.metrics_port
        else None
    )
    try:
        await ensure_topics(adapters)
        await adapters.bus.start()
        running = await start(adapters)
        print(f"lockflow worker {name} ready", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        # A stop that hangs (a client blocked on a closing connection) must not outlive the grace period:
        # past it every thread's stack goes to stderr, for whoever finds out why, and the process exits 1.
        # Left armed to the end: the interpreter's exit also joins threads (executors, non-daemon ones).
        faulthandler.dump_traceback_later(settings.shutdown_seconds, exit=True)
        if running is not None:
            await running.stop()
        await adapters.bus.stop()
        adapters.db.dispose()
        if metrics is not None:
            metrics.shutdown()


def run_service(name: str, settings_kind: type[CommonSettings], start: Start) -> None:
    """A service's process: its settings (a bad one exits 2 naming it), logs, traces, then `serve`."""
    settings = settings_or_exit(settings_kind)
    configure_logging(service=name, level=settings.log_level)
    setup_tracing(service=name, otlp_endpoint=settings.otlp_endpoint)
    from aiokafka.errors import KafkaConnectionError

    try:
        asyncio.run(serve(name, settings, start))
    except KafkaConnectionError as exc:  # the broker is down or the address wrong: say so, no traceback
        print(
            f"error: cannot reach Kafka at {settings.kafka_bootstrap} (LOCKFLOW_KAFKA_BOOTSTRAP): {exc}",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(EXIT_UNREACHABLE) from None
