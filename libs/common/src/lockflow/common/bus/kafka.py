"""Kafka Bus adapter on aiokafka: idempotent producer, manual commits after the handler's effect."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from lockflow.common import metrics
from lockflow.common.bus.port import Bus, Handler, RawHandler, RawRecord, Subscription
from lockflow.common.logging import get_logger
from lockflow.common.telemetry import Headers

log = get_logger(__name__)
Deliver = Callable[[ConsumerRecord], Awaitable[None]]


class KafkaBus(Bus):
    """Publishes with acks=all and idempotence; each subscription is its own consumer in a group."""

    def __init__(
        self,
        *,
        bootstrap: str,
        client_id: str = "lockflow",
        session_timeout_seconds: float = 30.0,
        fetch_max_wait_ms: int = 100,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.session_timeout_ms = int(session_timeout_seconds * 1000)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self._producer: AIOKafkaProducer | None = None
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Connect the producer."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                max_request_size=1_048_576,
                linger_ms=0,
            )
            await self._producer.start()

    async def stop(self) -> None:
        """Stop consumers, then flush and stop the producer."""
        for subscription in self._subscriptions:
            await subscription.stop()
        self._subscriptions.clear()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish_raw(self, topic: str, *, key: bytes, value: bytes, headers: Headers) -> None:
        """Send and wait for the broker's acknowledgement."""
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)

    async def ensure_topics(
        self, topics: list[str], *, partitions: int = 3, configs: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Create topics (and their DLQs) if missing, so consumers never wait on auto-creation;
        `configs` are topic settings by name (e.g. a short retention for requests and replies)."""
        configs = configs or {}
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin")
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [t for name in topics for t in (name, f"{name}.dlq") if t not in existing]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            NewTopic(
                                name=t,
                                num_partitions=partitions,
                                replication_factor=1,
                                topic_configs=configs.get(t),
                            )
                            for t in wanted
                        ]
                    )
        finally:
            await admin.close()

    async def subscribe(self, *, topics: list[str], group: str, handler: Handler) -> Subscription:
        """Join the group and consume valid events from the committed offsets (earliest for a new group)."""

        async def deliver(record: ConsumerRecord) -> None:
            await self._dispatch(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=list(record.headers or []),
                handler=handler,
            )

        return await self._start(topics, group, deliver)

    async def subscribe_raw(self, *, topics: list[str], group: str, handler: RawHandler) -> Subscription:
        """Join the group and consume records as bytes."""

        async def deliver(record: ConsumerRecord) -> None:
            await handler(
                RawRecord(
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key,
                    record.value,
                    list(record.headers or []),
                )
            )

        return await self._start(topics, group, deliver)

    async def tail_raw(self, *, topics: list[str], handler: RawHandler) -> Subscription:
        """Assign every partition of the topics (no group, nothing committed) at their current end."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            client_id=f"{self.client_id}-tail",
            enable_auto_commit=False,
            # A reply is waited for by a person: hand it over as soon as the broker has it.
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = await self._partitions(topics)
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for partition in partitions:  # resolve the end now, so nothing published after it is missed
                await consumer.position(partition)
        except BaseException:
            await consumer.stop()
            raise

        async def deliver(record: ConsumerRecord) -> None:
            await handler(
                RawRecord(
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key,
                    record.value,
                    list(record.headers or []),
                )
            )

        subscription = Subscription(topics=topics, group="")
        subscription.task = asyncio.create_task(self._consume(subscription, consumer, deliver, commit=False))
        self._subscriptions.append(subscription)
        return subscription

    async def _partitions(self, topics: list[str]) -> list[TopicPartition]:
        """Every partition of the topics (ensure_topics creates them), from the producer's metadata."""
        await self.start()
        assert self._producer is not None
        found: list[TopicPartition] = []
        for topic in topics:
            numbers = await self._producer.partitions_for(topic)
            found.extend(TopicPartition(topic, n) for n in sorted(numbers))
        return found

    async def _start(self, topics: list[str], group: str, deliver: "Deliver") -> Subscription:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            group_id=group,
            client_id=f"{self.client_id}-{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
            # A gate can hold a handler (e.g. a big analysis) for a while; keep the member alive.
            max_poll_interval_ms=900_000,
            # A killed member's partitions move after this; heartbeats well inside it (Kafka: < 1/3).
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(1_000, self.session_timeout_ms // 10),
            # aiokafka leaves a partition whose fetched records are not all handled yet (one record per
            # poll) out of the next fetch and fetches it again only when that fetch returns: a command
            # arriving meanwhile waits up to this long (the 500 ms default was the decision path's tail).
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        await consumer.start()
        subscription = Subscription(topics=topics, group=group)
        subscription.task = asyncio.create_task(self._consume(subscription, consumer, deliver))
        self._subscriptions.append(subscription)
        return subscription

    async def _consume(
        self,
        subscription: Subscription,
        consumer: AIOKafkaConsumer,
        deliver: "Deliver",
        *,
        commit: bool = True,
    ) -> None:
        try:
            while not subscription.stopped.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                if subscription.group:  # a group member's loop is alive: the worker's heartbeat
                    metrics.CONSUMER_POLL.labels(group=subscription.group).set(metrics.now_seconds())
                for tp, records in batches.items():
                    for record in records:
                        await deliver(record)
                        if commit:
                            # Committed only after the handler's effect (or the DLQ write) is done.
                            await consumer.commit({TopicPartition(tp.topic, tp.partition): record.offset + 1})
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log.error("consumer_crashed", group=subscription.group, error=repr(exc))
            raise
        finally:
            await consumer.stop()


async def measure_lag(bootstrap: str, groups: list[str]) -> dict[tuple[str, str], int]:
    """End offsets minus committed offsets, summed per (group, topic), read from the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lockflow-lag")
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, client_id="lockflow-lag")
    await admin.start()
    await reader.start()
    try:
        lag: dict[tuple[str, str], int] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await reader.end_offsets(list(committed))
            for partition, offset in committed.items():
                behind = max(0, ends.get(partition, 0) - max(offset.offset, 0))
                key = (group, partition.topic)
                lag[key] = lag.get(key, 0) + behind
        return lag
    finally:
        await reader.stop()
        await admin.close()
