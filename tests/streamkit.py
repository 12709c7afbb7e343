"""What the stream tests share: a librdkafka producer outside lockflow, readers of the outputs, a spec."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from lockflow.common.events import WindowAssessed, parse_event
from lockflow.common.streams import StreamPolicy, StreamPolicyRule, StreamSpec, WindowResult

# Event times are fixed, far from now: the windows depend on them only (1 s windows from BASE_MS).
BASE_MS = 1_700_000_000_000  # in the past: a broker refuses timestamps far ahead
CONTRACT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "ts": {"type": "integer"},
        "amount": {"type": "number", "minimum": 0, "maximum": 1000},
        "country": {"type": "string", "enum": ["DE", "FR", "US"]},
    },
    "required": ["id", "ts", "amount"],
    "additionalProperties": False,
}


def make_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create the source topic and wait until it is there."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result()
    # The controller answers before the broker's metadata has the topic: a reader asking at once
    # would be told there is no such topic.
    deadline = time.monotonic() + 30
    while not _has_partitions(admin, topic, partitions):
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} never appeared with {partitions} partitions")
        time.sleep(0.2)


def _has_partitions(admin: AdminClient, topic: str, partitions: int) -> bool:
    found = admin.list_topics(topic, timeout=10).topics.get(topic)
    return found is not None and found.error is None and len(found.partitions) == partitions


def spec_for(bootstrap: str, topic: str, **overrides: Any) -> StreamSpec:
    """A stream over `topic` with 1 s windows, 1 s grace, keyed by `id`."""
    values: dict[str, Any] = {
        "stream_id": f"s-{topic}",
        "source_id": f"src-{topic}",
        "bootstrap_servers": bootstrap,
        "topic": topic,
        "consumer_group": f"{topic}.lockflow",
        "event_time_field": "ts",
        "key_field": "id",
        "window_seconds": 1,
        "grace_seconds": 1,
        "contract": CONTRACT,
        "unapproved_mode": "pass",
    }
    values.update(overrides)
    return StreamSpec(**values)


def policy_for(stream_id: str, version: int, rules: list[tuple[str, str]], **extra: Any) -> StreamPolicy:
    """A policy of (kind, action) rules."""
    return StreamPolicy(
        stream_id=stream_id,
        version=version,
        rules=[StreamPolicyRule(kind=k, action=a, **extra.get(k, {})) for k, a in rules],  # type: ignore[arg-type]
        approved_by="tester",
        approved_at=datetime.now(UTC),
    )


def record(n: int, at_ms: int, **fields: Any) -> bytes:
    """One JSON record: id r<n>, event time at_ms, an amount."""
    value: dict[str, Any] = {"id": f"r{n}", "ts": at_ms, "amount": float(n % 100), "country": "DE"}
    value.update(fields)
    return json.dumps(value).encode()


class Source:
    """A producer outside lockflow (librdkafka), acknowledging every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})

    def send(
        self,
        values: Iterable[bytes],
        *,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> int:
        """Send and wait for each to be acknowledged; how many were sent."""
        n = 0
        failures: list[Any] = []
        for value in values:
            kwargs: dict[str, Any] = {"value": value, "key": key}
            if timestamp is not None:
                kwargs["timestamp"] = timestamp
            if partition is not None:
                kwargs["partition"] = partition
            self.producer.produce(self.topic, on_delivery=lambda e, _m: e and failures.append(e), **kwargs)
            n += 1
            if n % 10_000 == 0:
                self.producer.flush(30)
        assert self.producer.flush(30) == 0
        assert not failures, failures
        return n


@dataclass
class Out:
    """One output record as a consumer of .clean or .quarantine sees it."""

    topic: str
    value: bytes
    headers: dict[str, str]

    @property
    def record_id(self) -> str:
        return self.headers["lockflow-record-id"]


def read_all(
    bootstrap: str, topics: list[str], *, until: int | None = None, quiet_s: float = 2.0
) -> list[Out]:
    """Every committed record of the topics, once `until` have arrived or none came for quiet_s."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=10).topics
    consumer.assign(
        [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics if t in meta for p in meta[t].partitions]
    )
    out: list[Out] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s and (until is None or len(out) < until):
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            last = time.monotonic()
            headers = {k: (v or b"").decode() for k, v in (msg.headers() or [])}
            out.append(Out(msg.topic(), msg.value() or b"", headers))
        return out
    finally:
        consumer.close()


def windows(
    bootstrap: str, events_topic: str, stream_id: str, *, count: int, timeout: float = 60
) -> list[WindowResult]:
    """The stream's WindowAssessed results, once `count` have been committed (fails after timeout)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    deadline = time.monotonic() + timeout
    while events_topic not in consumer.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{events_topic} never appeared"
        time.sleep(0.2)
    parts = consumer.list_topics(events_topic, timeout=10).topics[events_topic].partitions
    consumer.assign([TopicPartition(events_topic, p, OFFSET_BEGINNING) for p in parts])
    found: list[WindowResult] = []
    try:
        while len(found) < count:
            assert time.monotonic() < deadline, f"only {len(found)} of {count} windows: {found}"
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            event = parse_event(msg.value())
            if isinstance(event, WindowAssessed) and event.run_id == stream_id:
                found.append(event.payload.window)
        return sorted(found, key=lambda w: w.window_start)
    finally:
        consumer.close()


def wait_processed(processor: Any, n: int, timeout: float = 30) -> None:
    """Until an in-process StreamProcessor has read n records of its topic."""
    deadline = time.monotonic() + timeout
    while sum(processor.state.processed.values()) < n:
        assert processor.error is None, processor.error
        assert time.monotonic() < deadline, f"read {processor.state.processed} of {n}"
        time.sleep(0.05)
