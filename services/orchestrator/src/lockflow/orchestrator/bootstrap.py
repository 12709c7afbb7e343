"""Composition root of the orchestrator: consume the facts, apply each to its run, relay the outbox and
sweep overdue attempts. Builds nothing a stage needs (no handler tables, no pandas).

`python -m lockflow.orchestrator.bootstrap` (or `lockflow worker orchestrator`) runs it as its own
process; `lockflow.bootstrap` starts the same `Orchestrator` in the embedded process.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import timedelta

import anyio
import httpx

from lockflow.common import metrics
from lockflow.common.bus import DeliveredEvent, Subscription
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.logging import get_logger
from lockflow.common.outbox import OutboxRelay
from lockflow.common.runtime import Adapters, run_service
from lockflow.orchestrator.alerts import deliver_pending, raise_for_event, rules_of, sweep_overdue_gates
from lockflow.orchestrator.liveness import LivenessPolicy
from lockflow.orchestrator.observe import lag_loop, observe
from lockflow.orchestrator.service import handle_event, sweep_attempts
from lockflow.orchestrator.settings import OrchestratorSettings
from lockflow.runstore.streams import run_due_snapshots

NAME = "orchestrator"
ALERT_DELIVERY_SECONDS = 1.0
GATE_SWEEP_SECONDS = 30.0
ALERT_DELIVERY_TIMEOUT = 10.0
log = get_logger(__name__)


@dataclass
class Orchestrator:
    """The orchestrator on a process's adapters: its consumer, the outbox relay and the attempt sweep."""

    adapters: Adapters
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _relay: OutboxRelay | None = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> OrchestratorSettings:
        """The orchestrator's own settings (the embedded process passes another service's: read ours)."""
        settings = self.adapters.settings
        return settings if isinstance(settings, OrchestratorSettings) else OrchestratorSettings()

    @property
    def relay(self) -> OutboxRelay:
        """This process's outbox relay (woken by every commit here that wrote outbox rows)."""
        if self._relay is None:
            settings = self.adapters.settings
            self._relay = OutboxRelay(
                self.adapters.db,
                self.adapters.bus,
                sweep_seconds=settings.outbox_sweep_seconds,
                wake_on_commit=settings.outbox_wake,
            )
        return self._relay

    async def relay_outbox(self) -> int:
        """Publish what was just written (serialised within this process); with LOCKFLOW_OUTBOX_WAKE
        off, nothing: the sweep publishes it."""
        if not self.adapters.settings.outbox_wake:
            return 0
        return await self.relay.publish()

    async def start(self) -> None:
        """Consume the events topic and apply each event to its run."""

        async def on_event(delivered: DeliveredEvent) -> None:
            await anyio.to_thread.run_sync(handle_event, self.adapters.db, delivered.event)
            await anyio.to_thread.run_sync(observe, self.adapters.db, delivered.event)
            await anyio.to_thread.run_sync(raise_for_event, self.adapters.db, delivered.event, rules)
            await self.relay_outbox()

        rules = rules_of(self.settings)
        bus = self.adapters.bus
        metrics.watch_database(self.adapters.db)
        if isinstance(bus, KafkaBus):
            self.tasks.append(asyncio.create_task(lag_loop(bus.bootstrap, bus.prefix)))
        self.subscriptions.append(
            await bus.subscribe(
                topics=[self.adapters.events_topic()], group=f"{bus.prefix}-{NAME}", handler=on_event
            )
        )

    def liveness_policy(self) -> LivenessPolicy:
        """How long an attempt may be silent or pending, and how often it is sent (from settings)."""
        settings = self.adapters.settings
        return LivenessPolicy(
            heartbeat_timeout=timedelta(seconds=settings.heartbeat_timeout_seconds),
            stage_timeout=timedelta(seconds=settings.stage_timeout_seconds),
            max_dispatches=settings.max_dispatches,
        )

    async def sweep_attempts(self) -> int:
        """Send again or fail every overdue attempt (its worker died or never came); returns how many."""
        done = await anyio.to_thread.run_sync(sweep_attempts, self.adapters.db, self.liveness_policy())
        if done:
            await self.relay_outbox()
        return len(done)

    def start_relay_loop(self, *, interval: float | None = None) -> None:
        """Publish at each commit that wrote outbox rows and sweep the outbox every `interval` (default
        LOCKFLOW_OUTBOX_SWEEP_SECONDS), so an event left by a crash is still published; sweep the
        pending attempts every heartbeat interval, so an attempt whose worker died is noticed."""
        if interval is not None:
            self.relay.sweep_seconds = interval
        self.relay.start()

        async def loop() -> None:
            while True:
                try:
                    await self.sweep_attempts()
                except Exception as exc:  # the sweep must outlive a transient broker or DB error
                    log.warning("attempt_sweep_failed", error=repr(exc))
                await asyncio.sleep(self.adapters.settings.heartbeat_seconds)

        self.tasks.append(asyncio.create_task(loop()))
        self.tasks.append(asyncio.create_task(self._alert_loop()))

    async def _alert_loop(self) -> None:
        """Deliver stored alerts to the webhook every second; alert on overdue gates every 30 s."""
        settings = self.settings
        rules = rules_of(settings)
        swept = 0.0
        async with httpx.AsyncClient(timeout=ALERT_DELIVERY_TIMEOUT) as client:
            while True:
                try:
                    if time.monotonic() - swept >= GATE_SWEEP_SECONDS:
                        swept = time.monotonic()
                        await anyio.to_thread.run_sync(sweep_overdue_gates, self.adapters.db, rules)
                        await self._due_snapshots()
                    await deliver_pending(self.adapters.db, settings, client)
                except Exception as exc:  # a database or receiver hiccup: try again at the next turn
                    log.warning("alert_loop_failed", error=repr(exc))
                await asyncio.sleep(ALERT_DELIVERY_SECONDS)

    async def _due_snapshots(self) -> None:
        """Start the streams' scheduled snapshots that are due (each a batch run; see runstore.streams)."""
        started = await anyio.to_thread.run_sync(run_due_snapshots, self.adapters.db, self.adapters.artifacts)
        if started:
            await self.relay_outbox()

    async def stop(self) -> None:
        """Stop the relay loop and the consumer."""
        await self.relay.stop()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        for subscription in self.subscriptions:
            await subscription.stop()
        self.subscriptions.clear()


async def start(adapters: Adapters) -> Orchestrator:
    """The orchestrator's process: the consumer and the relay loop."""
    orchestrator = Orchestrator(adapters)
    await orchestrator.start()
    orchestrator.start_relay_loop()
    return orchestrator


def main() -> None:
    """Run the orchestrator as its own process over Kafka (distributed mode)."""
    run_service(NAME, OrchestratorSettings, start)


if __name__ == "__main__":
    main()
