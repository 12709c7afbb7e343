"""Stream sources (a Kafka topic): the health check, and gate 1's bounded sample with its inferred contract.

A stream is never ingested as a batch: `chunks` reads a bounded sample (the newest `sample_records`
records across the partitions, or, when the topic is empty, whatever arrives within
`sample_timeout_seconds`) without joining a consumer group, so the stream's own offsets are untouched.
Gate 1 shows that sample, its schema, and the JSON Schema contract inferred from it (`contract`); the
stream worker consumes the topic after approval. aiokafka runs in a private event loop: stage handlers
run in worker threads.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceHealth, SourceOptions
from lockflow.common.stream_contract import infer_contract
from lockflow.ingest.connector import Connector, Probe
from lockflow.ingest.read import records_to_tables
from lockflow.sources.checks import stream_label
from lockflow.sources.configs import StreamConfig
from lockflow.sources.kafka import aiokafka_options
from lockflow.sources.netguard import NetPolicy, unreachable
from lockflow.sources.record_formats import (
    RECORD_FORMAT_FACTS,
    RecordFormat,
    RecordUndecodable,
    record_format,
)

log = get_logger(__name__)
CONNECT_SECONDS = 10.0


class NotAuthorised(StageError):
    """The brokers answered but refused the credentials (or the TLS handshake failed)."""


class Sample:
    """What one bounded read of a topic found: the decoded records and how many could not be read."""

    def __init__(self, record_format: RecordFormat) -> None:
        self.format = record_format
        self.records: list[dict[str, Any]] = []
        self.malformed = 0
        self.bytes = 0

    @property
    def read(self) -> int:
        """Records read, decodable or not."""
        return len(self.records) + self.malformed

    def add(self, value: bytes | None) -> None:
        """Decode one record's value; a value that is not an object in the stream's format is malformed."""
        self.bytes += len(value or b"")
        try:
            decoded = self.format.decode(value) if value is not None else None
        except RecordUndecodable:
            decoded = None
        if isinstance(decoded, dict):
            self.records.append(decoded)
        else:
            self.malformed += 1


class KafkaConnector(Connector):
    """A Kafka topic read in a bounded sample (gate 1, the health check); the stream worker reads it live."""

    kind = "stream"

    def __init__(self, config: StreamConfig, *, policy: NetPolicy) -> None:
        self.config = config
        self.policy = policy
        self.format = record_format(
            config.format,
            schema_registry_url=config.schema_registry_url,
            policy=policy,
            registry_auth=config.registry_auth(),
        )
        self._sample: Sample | None = None

    def label(self) -> str:
        """kafka://broker/topic."""
        return stream_label(self.config)

    def check_network(self) -> object:
        """Every bootstrap broker (and the schema registry) must be a host the network policy allows."""
        checked: list[object] = [self.policy.check_host(h, p) for h, p in self.config.servers()]
        if self.config.schema_registry_url:
            checked.append(self.policy.check_url(self.config.schema_registry_url))
        return checked

    def probe(self, found: Probe) -> None:
        """Reachable (a broker accepts TCP), authorised (the client connects), readable (a sample parses)."""
        self.check_network()
        self._tcp()
        found.reachable = True
        sample = self.sample(found)
        found.readable = True
        if sample.read and not sample.records:
            found.readable = False
            raise InvalidInput(
                f"none of the {sample.read} sampled records of topic {self.config.topic!r} "
                f"is {RECORD_FORMAT_FACTS[self.format.name].one}"
            )

    def _tcp(self) -> None:
        errors: list[tuple[str, int, OSError]] = []
        for host, port in self.config.servers():
            try:
                socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
                return
            except OSError as exc:
                errors.append((host, port, exc))
        first_host, first_port, error = errors[0]
        raise unreachable(first_host, first_port, error, kind="stream")

    def sample(self, found: Probe | None = None) -> Sample:
        """The bounded sample (read once per connector)."""
        if self._sample is None:
            self._sample = asyncio.run(self._read_sample(found or Probe()))
        return self._sample

    async def _read_sample(self, found: Probe) -> Sample:
        c = self.config
        consumer = AIOKafkaConsumer(
            bootstrap_servers=c.bootstrap_servers,
            enable_auto_commit=False,
            request_timeout_ms=int(CONNECT_SECONDS * 1000),
            client_id="lockflow-stream-sampler",
            **aiokafka_options(c.security),
        )
        try:
            await asyncio.wait_for(consumer.start(), CONNECT_SECONDS * 2)
        except (KafkaError, TimeoutError, OSError) as exc:
            await consumer.stop()
            log.warning("stream_connect_failed", topic=c.topic, error=f"{type(exc).__name__}: {exc}")
            raise NotAuthorised(
                f"the brokers at {c.bootstrap_servers} did not accept the connection "
                f"({c.security.security_protocol}); check the security settings"
            ) from exc
        try:
            found.authorised = True
            # consumer.topics() names the topics but leaves the consumer's own metadata without their
            # partitions; the cluster's metadata gives both.
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(c.topic)
            if not partitions:
                raise InvalidInput(f"there is no topic {c.topic!r} on {c.bootstrap_servers}")
            return await self._read(consumer, sorted(partitions))
        finally:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, numbers: list[int]) -> Sample:
        c = self.config
        partitions = [TopicPartition(c.topic, p) for p in numbers]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        share = max(1, -(-c.sample_records // max(1, len(partitions))))
        for tp in partitions:
            consumer.seek(tp, max(starts[tp], ends[tp] - share))
        empty = all(ends[tp] <= starts[tp] for tp in partitions)
        sample = Sample(self.format)
        deadline = time.monotonic() + c.sample_timeout_seconds
        while sample.read < c.sample_records and time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if not empty and all(at >= ends[tp] for at, tp in zip(positions, partitions, strict=True)):
                break  # read up to where the topic ended when the sample began
            left = max(0.05, deadline - time.monotonic())
            batches = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000), max_records=500)
            for records in batches.values():
                for record in records:
                    if sample.read < c.sample_records:
                        sample.add(record.value)
        return sample

    def health(self) -> SourceHealth:
        """The connector's health check, saying how many sampled records parsed."""
        health = super().health()
        if health.ok and self._sample is not None:
            sample = self._sample
            found = (
                f"{len(sample.records)} of {sample.read} sampled records are "
                f"{RECORD_FORMAT_FACTS[self.format.name].many}"
            )
            if not sample.read:
                found = (
                    f"the topic is empty (nothing arrived within {self.config.sample_timeout_seconds:g} s)"
                )
            health = health.model_copy(update={"message": f"{health.message}; {found}"})
        return health

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """The sample's records as one table (gate 1's dataset); nothing when the topic sent none."""
        sample = self.sample()
        if not sample.records:
            label = RECORD_FORMAT_FACTS[self.format.name].label
            raise InvalidInput(
                f"topic {self.config.topic!r} sent no {label} records within "
                f"{self.config.sample_timeout_seconds:g} s; produce some, then read the sample again"
            )
        yield from records_to_tables(sample.records, options.chunk_rows)

    def bytes_read(self) -> int:
        """Bytes of the sampled record values."""
        return self._sample.bytes if self._sample else 0

    def contract(self) -> dict[str, Any] | None:
        """The JSON Schema inferred from the sample (gate 1 approves it, maybe edited)."""
        sample = self.sample()
        if not sample.records:
            return None
        contract = infer_contract(
            sample.records, event_time_field=self.config.event_time_field, key_field=self.config.key_field
        )
        contract["x-lockflow"]["malformed_in_sample"] = sample.malformed
        return contract
