"""The gateway's composition root: only what the API process needs.

The database (the run store and sources it reads, the intake it writes), the bus and the outbox
relay that publishes what the intake wrote (RunRequested, DecisionMade, RetryRequested), the cache,
the artifact store (reports) and the access verifier (the auth service's public keys, the shared
token state). No stage handler and no orchestrator: in distributed mode they are other processes.
In embedded mode the `lockflow` package's composition root hands the app its whole System instead
(everything in one process); the app needs only what `Runtime` names, so either serves.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Protocol

import redis

from lockflow.access.build import build_access
from lockflow.access.deps import Access
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.bus import Subscription
from lockflow.common.cache import Cache
from lockflow.common.clock import Clock
from lockflow.common.db import Database
from lockflow.common.logging import get_logger
from lockflow.common.outbox import OutboxRelay
from lockflow.common.reqreply import Requester
from lockflow.common.runtime import Adapters, build_adapters, ensure_topics
from lockflow.common.settings import CommonSettings
from lockflow.gateway.settings import GatewaySettings

log = get_logger(__name__)


class Runtime(Protocol):
    """What the gateway's routes and lifespan use of the process's adapters."""

    settings: CommonSettings
    db: Database
    artifacts: ArtifactStore
    cache: Cache
    requester: Requester  # asks the stage services (a fix preview, a health check, a file's pre-check)

    async def relay_outbox(self) -> int:
        """Publish what the intake just wrote to the outbox."""

    async def start(self) -> None:
        """Start the bus and the background work (the app's startup)."""

    async def close(self) -> None:
        """Stop it all (the app's shutdown)."""


@dataclass
class GatewaySystem(Adapters):
    """The built adapters of an API process, and the background tasks it started."""

    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _relay: OutboxRelay | None = field(default=None, init=False, repr=False)

    @property
    def relay(self) -> OutboxRelay:
        """This process's outbox relay (woken by the intake's commits; see lockflow.common.outbox)."""
        if self._relay is None:
            self._relay = OutboxRelay(
                self.db,
                self.bus,
                sweep_seconds=self.settings.outbox_sweep_seconds,
                wake_on_commit=self.settings.outbox_wake,
            )
        return self._relay

    async def relay_outbox(self) -> int:
        """Publish what the intake just wrote (serialised within this process); with LOCKFLOW_OUTBOX_WAKE
        off, nothing: the sweep publishes it."""
        if not self.settings.outbox_wake:
            return 0
        return await self.relay.publish()

    def start_relay_loop(self, *, interval: float | None = None) -> None:
        """Publish at each commit that wrote outbox rows, and sweep every `interval` (default
        LOCKFLOW_OUTBOX_SWEEP_SECONDS) what a crash may have left, outliving a transient broker or
        database error. (Overdue attempts are the orchestrator's to sweep, in its own process.)"""
        if interval is not None:
            self.relay.sweep_seconds = interval
        self.relay.start()

    async def start(self) -> None:
        """Serve the API: the topics exist, the bus is up, replies are listened for, the outbox relayed."""
        await ensure_topics(self)
        await self.bus.start()
        await self.requester.start()
        self.start_relay_loop()

    async def close(self) -> None:
        """Stop consumers, background tasks and connections."""
        await self.relay.stop()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        await self.requester.stop()
        await self.bus.stop()
        self.db.dispose()


def build_gateway(
    settings: CommonSettings,
    *,
    cache: Cache | None = None,
    clock: Clock | None = None,
    client_id: str = "gateway",
) -> GatewaySystem:
    """The gateway's adapters for the settings' mode; pass cache/clock to override (tests)."""
    return GatewaySystem(**vars(build_adapters(settings, cache=cache, clock=clock, client_id=client_id)))


def build_gateway_access(
    settings: GatewaySettings, *, db: Database, redis_client: "redis.Redis | None"
) -> Access:
    """The verifier of a gateway in its own process: the auth service's JWKS (LOCKFLOW_JWKS_URL)."""
    return build_access(settings, db=db, redis_client=redis_client)


def main() -> None:
    """Run the gateway as its own process (distributed mode): `python -m lockflow.gateway.bootstrap`."""
    import sys

    import uvicorn

    from lockflow.common.logging import configure_logging
    from lockflow.common.settings_check import settings_or_exit
    from lockflow.gateway.app import create_app
    from lockflow.gateway.serving import serve_workers, server_config

    settings = settings_or_exit(GatewaySettings)
    if not settings.jwks_url:
        print("error: LOCKFLOW_JWKS_URL must name the auth service's key set", file=sys.stderr, flush=True)
        raise SystemExit(2)
    configure_logging(service="gateway", level=settings.log_level)
    if settings.gateway_workers > 1:
        serve_workers(host=settings.host, port=settings.port, workers=settings.gateway_workers)
        return
    uvicorn.Server(server_config(create_app(settings), host=settings.host, port=settings.port)).run()


if __name__ == "__main__":
    main()
