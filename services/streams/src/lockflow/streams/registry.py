"""Which streams run and under which policies: a compacted topic every stream worker reads whole.

The commands (StartStream, StopStream, ApplyStreamPolicy) reach one worker of the group; it writes
them here, keyed `spec/<id>`, `stop/<id>`, `policy/<id>/<version>`, and every worker (each reads the
one partition from the beginning, in no group) starts, stops or re-governs its streams from it. A
restarted worker finds its streams and their policies here without any command being sent again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from lockflow.common.logging import get_logger
from lockflow.common.streams import StreamPolicy, StreamSpec

log = get_logger(__name__)


def registry_topic(prefix: str) -> str:
    """The registry's topic."""
    return f"{prefix}.streams.registry"


@dataclass
class Entry:
    """One stream as registered: its spec, its policies by version, whether it was stopped."""

    spec: StreamSpec | None = None
    policies: dict[int, StreamPolicy] = field(default_factory=dict)
    stopped: bool = False


def ensure_registry(bootstrap: str, prefix: str) -> None:
    """Create the registry topic (one partition, compacted) if missing."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if registry_topic(prefix) in admin.list_topics(timeout=10).topics:
        return
    topic = NewTopic(registry_topic(prefix), 1, 1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([topic]).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


class RegistryWriter:
    """Writes the commands' effects to the registry, waiting for the broker's acknowledgement."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.topic = registry_topic(prefix)
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})

    def put(self, key: str, value: bytes | None) -> None:
        """One entry (None deletes it)."""
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failures.append(err)

        self.producer.produce(self.topic, key=key, value=value, on_delivery=delivered)
        self.producer.flush(30)
        if failures:
            raise KafkaException(failures[0])

    def start(self, spec: StreamSpec) -> None:
        """Register (or re-register) a stream and clear a stop."""
        self.put(f"spec/{spec.stream_id}", spec.model_dump_json().encode())
        self.put(f"stop/{spec.stream_id}", None)

    def stop(self, stream_id: str, reason: str) -> None:
        """Mark a stream stopped."""
        self.put(f"stop/{stream_id}", json.dumps({"reason": reason}).encode())

    def policy(self, policy: StreamPolicy) -> None:
        """Record a policy version."""
        self.put(f"policy/{policy.stream_id}/{policy.version}", policy.model_dump_json().encode())


class RegistryReader(threading.Thread):
    """Reads the registry from the beginning and calls `on_change(stream_id, entry)` on every change."""

    def __init__(self, bootstrap: str, prefix: str, on_change: Callable[[str, Entry], None]) -> None:
        super().__init__(name="streams-registry", daemon=True)
        self.topic = registry_topic(prefix)
        self.bootstrap = bootstrap
        self.on_change = on_change
        self.entries: dict[str, Entry] = {}
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once the registry as it was at the start has been read

    def run(self) -> None:
        """Follow the registry until stopped."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "lockflow-streams-registry",
                "enable.auto.commit": False,
            }
        )
        tp = TopicPartition(self.topic, 0)
        high = -1
        while high < 0 and not self.stopping.is_set():
            try:  # a registry just created may not be in the cluster's metadata yet
                _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            except KafkaException as exc:
                log.info("registry_not_ready", error=str(exc))
                time.sleep(0.5)
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        caught_up = high <= 0
        if caught_up:
            self.ready.set()
        try:
            while not self.stopping.is_set():
                msg = consumer.poll(0.2)
                if (
                    not caught_up
                    and (msg is None or msg.error() is None)
                    and (
                        (msg is not None and (msg.offset() or 0) + 1 >= high)
                        or consumer.position([tp])[0].offset >= high
                    )
                ):
                    # What was registered before this worker started: its streams with their policies.
                    if msg is not None and msg.error() is None:
                        self.apply(_text(msg.key()), _raw(msg.value()))
                    caught_up = True
                    self.ready.set()
                    for stream_id, entry in self.entries.items():
                        self.on_change(stream_id, entry)
                    continue
                if msg is None:
                    continue
                if msg.error() is not None:
                    log.warning("registry_read_failed", error=str(msg.error()))
                    continue
                try:
                    changed = self.apply(_text(msg.key()), _raw(msg.value()))
                except Exception:  # one bad entry must not stop the others
                    log.exception("registry_entry_invalid", key=msg.key())
                    continue
                if changed is not None and caught_up:
                    self.on_change(changed, self.entries[changed])
        finally:
            consumer.close()

    def apply(self, key: str, value: bytes | None) -> str | None:
        """Fold one registry record into the entries; the stream it concerns."""
        kind, _, rest = key.partition("/")
        stream_id = rest.split("/")[0]
        entry = self.entries.setdefault(stream_id, Entry())
        if kind == "spec":
            entry.spec = StreamSpec.model_validate_json(value) if value is not None else None
        elif kind == "stop":
            entry.stopped = value is not None
        elif kind == "policy" and value is not None:
            policy = StreamPolicy.model_validate_json(value)
            entry.policies[policy.version] = policy
        else:
            return None
        return stream_id


def _text(key: str | bytes | None) -> str:
    """A registry key as text."""
    if key is None:
        return ""
    return key if isinstance(key, str) else key.decode()


def _raw(value: str | bytes | None) -> bytes | None:
    """A registry value as bytes (None: a deletion)."""
    return value.encode() if isinstance(value, str) else value
