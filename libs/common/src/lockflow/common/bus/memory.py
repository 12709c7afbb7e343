"""In-memory Bus adapter for embedded mode and tests: append-only logs, consumer-group cursors."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lockflow.common.bus.port import Bus, Handler, RawHandler, RawRecord, Subscription
from lockflow.common.ids import new_id
from lockflow.common.telemetry import Headers


@dataclass(frozen=True)
class Record:
    """One message in a topic log."""

    key: bytes
    value: bytes
    headers: Headers
    offset: int


Deliver = Callable[[str, Record], Awaitable[None]]


class InMemoryBus(Bus):
    """Topics are lists; each consumer group has a committed offset per topic, advanced after the handler."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._logs: dict[str, list[Record]] = {}
        self._committed: dict[tuple[str, str], int] = {}
        self._group_locks: dict[str, asyncio.Lock] = {}
        # One wake-up event per consumer, not an asyncio.Condition: a cancelled Condition.wait must
        # re-acquire the condition's lock, and on Python 3.11 stopping consumers that way deadlocked
        # (seen as `lockflow run` hanging after its report, in tests/realdata).
        self._wakeups: set[asyncio.Event] = set()
        self._subscriptions: list[Subscription] = []

    async def publish_raw(self, topic: str, *, key: bytes, value: bytes, headers: Headers) -> None:
        """Append to the topic's log and wake consumers."""
        log = self._logs.setdefault(topic, [])
        log.append(Record(key, value, list(headers), len(log)))
        for wakeup in self._wakeups:
            wakeup.set()

    def records(self, topic: str) -> list[Record]:
        """Everything ever published to a topic (for tests and inspection)."""
        return list(self._logs.get(topic, []))

    def committed(self, group: str, topic: str) -> int:
        """The next offset the group will read on this topic."""
        return self._committed.get((group, topic), 0)

    async def subscribe(self, *, topics: list[str], group: str, handler: Handler) -> Subscription:
        """Consume valid events from the group's committed offsets onwards."""

        async def deliver(topic: str, record: Record) -> None:
            await self._dispatch(
                topic=topic,
                partition=0,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
                handler=handler,
            )

        return self._start(topics, group, deliver)

    async def subscribe_raw(self, *, topics: list[str], group: str, handler: RawHandler) -> Subscription:
        """Consume records as bytes from the group's committed offsets onwards."""

        async def deliver(topic: str, record: Record) -> None:
            await handler(RawRecord(topic, 0, record.offset, record.key, record.value, record.headers))

        return self._start(topics, group, deliver)

    async def tail_raw(self, *, topics: list[str], handler: RawHandler) -> Subscription:
        """Records appended from now on, as bytes: a group of its own whose cursor starts at the end."""
        group = f"tail-{new_id()}"
        for topic in topics:
            self._committed[(group, topic)] = len(self._logs.get(topic, []))

        async def deliver(topic: str, record: Record) -> None:
            await handler(RawRecord(topic, 0, record.offset, record.key, record.value, record.headers))

        return self._start(topics, group, deliver)

    def _start(self, topics: list[str], group: str, deliver: "Deliver") -> Subscription:
        subscription = Subscription(topics=topics, group=group)
        lock = self._group_locks.setdefault(group, asyncio.Lock())
        subscription.task = asyncio.create_task(self._consume(subscription, lock, deliver))
        self._subscriptions.append(subscription)
        return subscription

    async def _next_record(self, topics: list[str], group: str) -> tuple[str, Record] | None:
        for topic in topics:
            log = self._logs.get(topic, [])
            position = self._committed.get((group, topic), 0)
            if position < len(log):
                return topic, log[position]
        return None

    async def _consume(self, subscription: Subscription, lock: asyncio.Lock, deliver: "Deliver") -> None:
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        try:
            while not subscription.stopped.is_set():
                async with lock:
                    found = await self._next_record(subscription.topics, subscription.group)
                    if found is not None:
                        topic, record = found
                        await deliver(topic, record)
                        self._committed[(subscription.group, topic)] = record.offset + 1
                        continue
                wakeup.clear()  # cleared before the check, so an append after it still wakes us
                if await self._next_record(subscription.topics, subscription.group) is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), timeout=0.5)
        finally:
            self._wakeups.discard(wakeup)

    async def stop(self) -> None:
        """Stop every subscription."""
        for subscription in self._subscriptions:
            await subscription.stop()
        self._subscriptions.clear()
