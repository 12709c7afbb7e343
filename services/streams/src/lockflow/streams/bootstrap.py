"""Composition root of the stream worker: the stream commands, the registry and one processor per stream.

`python -m lockflow.streams.bootstrap` (or `lockflow worker streams`) runs it as its own process. It
needs Kafka (a stream is a Kafka topic), so the embedded process does not start it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
from dataclasses import dataclass

import anyio

from lockflow.common.bus import Subscription
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.runtime import Adapters, run_service
from lockflow.sources.netguard import NetPolicy
from lockflow.sources.secrets import SecretBox
from lockflow.streams.handlers import STAGE, commands_topic, handle_command
from lockflow.streams.processor import Tuning
from lockflow.streams.registry import RegistryReader, RegistryWriter, ensure_registry
from lockflow.streams.settings import StreamsSettings
from lockflow.streams.supervisor import Supervisor

__all__ = ["STAGE", "Streams", "main", "start"]
REVIVE_SECONDS = 5.0


@dataclass
class Streams:
    """The running stream worker: its command consumer, the registry's reader and the processors."""

    subscription: Subscription
    reader: RegistryReader
    supervisor: Supervisor
    reviving: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop taking commands, then stop every stream (each commits what it has)."""
        self.reviving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reviving
        await self.subscription.stop()
        self.reader.stopping.set()
        await anyio.to_thread.run_sync(self.supervisor.stop_all)
        await anyio.to_thread.run_sync(self.reader.join, 10)


async def start(adapters: Adapters) -> Streams:
    """Follow the registry, run its streams, and record the stream commands in it."""
    settings = adapters.settings
    if isinstance(settings, StreamsSettings):
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(settings.streams_gc_young_threshold, older, oldest)
    tuning = (
        Tuning(
            commit_interval_ms=settings.streams_commit_interval_ms,
            batch=settings.streams_batch,
            lease_session_timeout_ms=settings.streams_lease_session_timeout_ms,
            partitions=settings.streams_output_partitions,
            idle_close_ms=(
                None
                if settings.streams_idle_close_seconds is None
                else int(settings.streams_idle_close_seconds * 1000)
            ),
        )
        if isinstance(settings, StreamsSettings)
        else Tuning()
    )
    prefix = adapters.bus.prefix
    if isinstance(adapters.bus, KafkaBus):
        await adapters.bus.ensure_topics([commands_topic(prefix)])
    await anyio.to_thread.run_sync(ensure_registry, settings.kafka_bootstrap, prefix)
    supervisor = Supervisor(
        artifacts=adapters.artifacts,
        events_topic=adapters.events_topic(),
        events_bootstrap=settings.kafka_bootstrap,
        tuning=tuning,
        worker_id=f"{socket.gethostname()}-{os.getpid()}",
        secrets=SecretBox(sources_key=getattr(settings, "sources_key", None), secret_key=settings.secret_key),
        net_policy=NetPolicy.from_list(getattr(settings, "allow_hosts", [])),
    )
    reader = RegistryReader(settings.kafka_bootstrap, prefix, supervisor.on_change)
    reader.start()
    writer = RegistryWriter(settings.kafka_bootstrap, prefix)
    subscription = await adapters.bus.subscribe(
        topics=[commands_topic(prefix)],
        group=f"{prefix}-{STAGE}",
        handler=lambda delivered: handle_command(delivered, writer=writer),
    )

    async def revive() -> None:
        while True:
            await asyncio.sleep(REVIVE_SECONDS)
            supervisor.revive(reader.entries)

    return Streams(subscription, reader, supervisor, asyncio.create_task(revive()))


def main() -> None:
    """Run the stream worker as its own process over Kafka (distributed mode)."""
    run_service(STAGE, StreamsSettings, start)


if __name__ == "__main__":
    main()
