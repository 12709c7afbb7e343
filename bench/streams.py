"""The stream worker's throughput, latency and memory against the producer's own ceiling.

    eval "$(bash scripts/services.sh env)"; python bench/streams.py [--records 100000] [--window 1] [--avro]

A librdkafka producer sends N JSON records of ~200 bytes (event time = the wall clock when sent);
with --avro, the same records in Avro (Confluent wire format, confluent-kafka's AvroSerializer, the
schema registered in LOCKFLOW_TEST_SCHEMA_REGISTRY_URL's registry), which the worker decodes with
the writer schema it fetches from that registry.
First the ceiling: the same producer writing to a topic nobody reads. Then through the stream
worker (`python -m lockflow.streams.bootstrap`, its own process, started by StartStream and
ApplyStreamPolicy commands like any stream): records/s from the first record sent to the last
window holding one being assessed (its records counted and written to `.clean` / `.quarantine`),
every record's latency from its event time to its window's result (read back from `.clean`), and
the worker's resident memory over the run, and its user + sys CPU seconds per record (a figure that
holds under load). Validation against the contract and the policy are on
(1 record in 100 breaks the contract's range and is quarantined). The load average is printed:
the machine is shared.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.serialization import MessageField, SerializationContext

from lockflow.common.events import (
    ApplyStreamPolicy,
    ApplyStreamPolicyPayload,
    StartStream,
    StartStreamPayload,
    WindowAssessed,
    parse_event,
    serialize_event,
)
from lockflow.common.streams import StreamPolicy, StreamPolicyRule, StreamSpec

CONTRACT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "ts": {"type": "integer"},
        "amount": {"type": "number", "minimum": 0, "maximum": 1000},
        "country": {"type": "string", "enum": ["DE", "FR", "US"]},
        "customer": {"type": "string"},
        "note": {"type": "string"},
    },
    "required": ["id", "ts", "amount"],
}
PAD = "x" * 84  # brings a record to ~200 bytes (as JSON)
AVRO_SCHEMA = {
    "type": "record",
    "name": "BenchOrder",
    "namespace": "lockflow.bench",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "ts", "type": "long"},
        {"name": "amount", "type": ["null", "double"]},
        {"name": "country", "type": ["null", "string"], "default": None},
        {"name": "customer", "type": ["null", "string"], "default": None},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


class Records:
    """How the producer writes a record and the bench reads one back: JSON, or Avro through a registry."""

    def __init__(self, registry_url: str | None) -> None:
        self.registry_url = registry_url
        if registry_url is not None:
            import fastavro
            from confluent_kafka.schema_registry import SchemaRegistryClient
            from confluent_kafka.schema_registry.avro import AvroSerializer

            self._serializer = AvroSerializer(
                SchemaRegistryClient({"url": registry_url}), json.dumps(AVRO_SCHEMA)
            )
            self._parsed = fastavro.parse_schema(AVRO_SCHEMA)
            self._reader = fastavro.schemaless_reader

    def encode(self, topic: str, value: dict[str, Any]) -> bytes:
        """One record's bytes."""
        if self.registry_url is None:
            return json.dumps(value).encode()
        encoded = self._serializer(value, SerializationContext(topic, MessageField.VALUE))
        assert encoded is not None
        return encoded

    def event_time_ms(self, raw: bytes) -> int:
        """A record's event time, read back."""
        if self.registry_url is None:
            return int(json.loads(raw)["ts"])
        return int(self._reader(io.BytesIO(raw[5:]), self._parsed, self._parsed)["ts"])  # type: ignore[call-overload, index]


def produce(bootstrap: str, topic: str, n: int, records: Records) -> tuple[float, float]:
    """Send n records as fast as librdkafka takes them; (first send, all acknowledged) in time.time()."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "enable.idempotence": True,
        }
    )
    started = time.time()
    for i in range(n):
        amount = 5000.0 if i % 100 == 0 else float(i % 997)
        value = records.encode(
            topic,
            {
                "id": f"r{i:09d}",
                "ts": int(time.time() * 1000),
                "amount": amount,
                "country": "DE",
                "customer": f"c{i % 5000:05d}",
                "note": PAD,
            },
        )
        while True:
            try:
                producer.produce(topic, value=value)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return started, time.time()


def create(bootstrap: str, topics: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        future.result()
    while not all(t in admin.list_topics(timeout=10).topics for t in topics):
        time.sleep(0.2)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (its threads included), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=1, help="window seconds")
    parser.add_argument("--grace", type=int, default=1, help="grace seconds")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--avro",
        action="store_true",
        help="Avro records through the registry of LOCKFLOW_TEST_SCHEMA_REGISTRY_URL",
    )
    args = parser.parse_args()
    bootstrap = os.environ.get("LOCKFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    registry_url = None
    if args.avro:
        registry_url = os.environ.get("LOCKFLOW_TEST_SCHEMA_REGISTRY_URL")
        if not registry_url:
            raise SystemExit(
                '--avro needs LOCKFLOW_TEST_SCHEMA_REGISTRY_URL: eval "$(bash scripts/services.sh env)"'
            )
    records = Records(registry_url)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    topic, ceiling = f"{prefix}.orders", f"{prefix}.ceiling"
    create(bootstrap, [topic, ceiling], args.partitions)
    n = args.records
    print(
        f"{n:,} {'Avro' if args.avro else 'JSON'} records (~200 bytes as JSON), "
        f"{args.partitions} partitions, {args.window} s windows, {args.grace} s grace"
    )

    first, acked = produce(bootstrap, ceiling, n, records)
    print(f"ceiling (a topic nobody reads): {n / (acked - first):,.0f} records/s")

    tmp = Path(tempfile.mkdtemp(prefix="lockflow-bench-streams-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    env.update(
        LOCKFLOW_MODE="distributed",
        LOCKFLOW_KAFKA_BOOTSTRAP=bootstrap,
        LOCKFLOW_TOPIC_PREFIX=prefix,
        LOCKFLOW_HOME=str(tmp),
    )
    if registry_url:  # the registry is on loopback: the worker's network policy must allow it
        env["LOCKFLOW_ALLOW_HOSTS"] = json.dumps([urlsplit(registry_url).hostname or ""])
    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "lockflow.streams.bootstrap"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        while b"ready" not in (tmp / "worker.log").read_bytes():
            assert worker.poll() is None, (tmp / "worker.log").read_text()
            time.sleep(0.1)
        spec = StreamSpec(
            stream_id=f"s-{prefix}",
            source_id="bench",
            bootstrap_servers=bootstrap,
            topic=topic,
            consumer_group=f"{topic}.lockflow",
            event_time_field="ts",
            key_field=None,
            window_seconds=args.window,
            grace_seconds=args.grace,
            contract=CONTRACT,
            unapproved_mode="pass",
            format="avro" if registry_url else "json",
            schema_registry_url=registry_url,
        )
        policy = StreamPolicy(
            stream_id=spec.stream_id,
            version=1,
            approved_by="bench",
            approved_at=datetime.now(UTC),
            rules=[
                StreamPolicyRule(kind="out_of_range", action="quarantine"),
                StreamPolicyRule(kind="null_value", action="repair_last_median"),
            ],
        )
        commands = Producer({"bootstrap.servers": bootstrap})
        for event in (
            StartStream(run_id=spec.stream_id, producer="bench", payload=StartStreamPayload(spec=spec)),
            ApplyStreamPolicy(
                run_id=spec.stream_id, producer="bench", payload=ApplyStreamPolicyPayload(policy=policy)
            ),
        ):
            commands.produce(f"{prefix}.commands.streams", value=serialize_event(event), key=spec.stream_id)
        assert commands.flush(30) == 0
        while b"stream_owned" not in (tmp / "worker.log").read_bytes() and rss_mb(worker.pid) > 0:
            time.sleep(0.1)
        time.sleep(1.0)  # the worker has assigned its partitions
        memory: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.time()
            while not stop.is_set():
                memory.append((time.time() - t0, rss_mb(worker.pid)))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu_before = cpu_seconds(worker.pid)
        first, acked = produce(bootstrap, topic, n, records)
        closer = Producer(
            {"bootstrap.servers": bootstrap}
        )  # one record far enough ahead to close every window
        closer.produce(
            topic,
            value=records.encode(
                topic,
                {
                    "id": "closer",
                    "ts": int(time.time() * 1000) + 1000 * (args.window + args.grace + 1),
                    "amount": 1.0,
                },
            ),
        )
        closer.flush(30)
        results: dict[str, tuple[float, int]] = {}
        events = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "bench", "isolation.level": "read_committed"}
        )
        parts = events.list_topics(f"{prefix}.events", timeout=10).topics[f"{prefix}.events"].partitions
        events.assign([TopicPartition(f"{prefix}.events", p, OFFSET_BEGINNING) for p in parts])
        counted, last_closed = 0, 0.0
        deadline = time.time() + 600
        while counted < n and time.time() < deadline:
            msg = events.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            event = parse_event(msg.value())
            if isinstance(event, WindowAssessed):
                window = event.payload.window
                counted += window.records + window.late
                last_closed = max(last_closed, window.closed_at.timestamp())
                results[window.window_start.isoformat()] = (window.closed_at.timestamp(), window.records)
        cpu_used = cpu_seconds(worker.pid) - cpu_before
        stop.set()
        sampler.join()
        assert counted >= n, f"only {counted:,} of {n:,} records counted in closed windows"
        print(
            f"through the stream worker: {n / (last_closed - first):,.0f} records/s "
            f"(first sent -> last window assessed, {last_closed - first:.1f} s; "
            f"producer alone {acked - first:.1f} s)"
        )
        print(
            f"worker CPU (user + sys): {cpu_used:.1f} s, {cpu_used / n * 1e6:.1f} us per record "
            f"(comparable under load; {n / cpu_used:,.0f} records per CPU second)"
        )
        latencies = read_latencies(bootstrap, topic, results, n, records)
        qs = statistics.quantiles(latencies, n=100)
        print(
            f"event time -> window result: p50 {qs[49]:.2f} s, p99 {qs[98]:.2f} s "
            f"(window {args.window} s + grace {args.grace} s included), {len(latencies):,} records"
        )
        shown = memory[:: max(1, len(memory) // 12)]
        print(
            "worker RSS (s, MB): "
            + ", ".join(f"{t:.0f}:{m:.0f}" for t, m in shown)
            + f"; min {min(m for _, m in memory):.0f}, max {max(m for _, m in memory):.0f}"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        log.close()
        AdminClient({"bootstrap.servers": bootstrap}).delete_topics(
            [
                t
                for t in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
                if t.startswith(f"{prefix}.")
            ]
        )
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def read_latencies(
    bootstrap: str, topic: str, results: dict[str, tuple[float, int]], n: int, records: Records
) -> list[float]:
    """Each output record's event time to its window's result, read back from .clean and .quarantine."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench", "isolation.level": "read_committed"}
    )
    outs = [f"{topic}.clean", f"{topic}.quarantine"]
    meta = consumer.list_topics(timeout=10).topics
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in outs for p in meta[t].partitions])
    latencies: list[float] = []
    idle = 0
    while len(latencies) < n and idle < 10:
        batch = consumer.consume(10_000, timeout=0.5)
        idle = idle + 1 if not batch else 0
        for msg in batch:
            if msg.error() is not None:
                continue
            headers = dict(msg.headers() or [])
            window = results.get(headers.get("lockflow-window-start", b"").decode())
            if window is None:
                continue
            latencies.append(window[0] - records.event_time_ms(msg.value()) / 1000)
    consumer.close()
    return latencies


if __name__ == "__main__":
    main()
