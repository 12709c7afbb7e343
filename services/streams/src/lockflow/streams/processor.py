"""One running stream: read the topic, keep tumbling event-time windows, close them under the policy, once.

Delivery (docs/architecture.md, "The stream worker"): consume-transform-produce in Kafka
transactions. Each transaction carries the routed records (`.clean`, `.quarantine`, `.hold`), the
`WindowAssessed` facts, a small snapshot of the stream's state (to `<topic>.streamwork.state`) and
the consumer offsets, so all of it is committed together or not at all. The snapshot holds no
records: the offsets committed are those of the oldest record still in an open window, so a
restarted or newly elected worker reads the open windows' records again, and the snapshot's
`processed` offsets and `closed_through` mark say which of the re-read records were already
emitted (their window closed, or they were late). A window is global to the stream (not per
partition), so one worker owns a stream at a time: the member holding the one partition of
`<topic>.streamwork.lease` in the group `<group>.lease`; the others wait, and take over when it
leaves or dies. The transactional id is the stream's, so a new owner fences the old one.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.events import WindowAssessed, WindowAssessedPayload, serialize_event
from lockflow.common.logging import get_logger
from lockflow.common.streams import StreamFindingKind, StreamPolicy, StreamSpec, WindowResult
from lockflow.sources.kafka import librdkafka_options, opened_security
from lockflow.sources.record_formats import (
    JsonRecords,
    RecordFormat,
    RecordUndecodable,
    RegistryUnavailable,
)
from lockflow.sources.secrets import SecretBox
from lockflow.streams.checks import (
    Checked,
    Contract,
    Finding,
    Verdict,
    check_record,
    closable_until,
    decide,
    field_counts,
    idle_watermark,
    is_idle,
    is_late,
    mark_duplicates,
    medians,
    percentile,
    quality_score,
    window_start,
)

log = get_logger(__name__)

SNAPSHOT_TAIL = 32
COORDINATOR_TIMEOUT_S = 5  # a transaction's coordinator calls fail after this (then the step is retried)
IDLE_MS = 1000  # a partition with nothing read for this long does not hold the watermark back

# Headers every output record carries (the names a consumer of .clean/.quarantine reads).
H_RECORD_ID = "lockflow-record-id"  # <topic>/<partition>/<offset>: the same id however often it is read
H_POLICY = "lockflow-policy-version"  # the version applied, or "none" before the first policy
H_MODE = "lockflow-mode"  # policy | pass | hold
H_FLAGS = "lockflow-flags"  # comma-separated findings the policy passed on flagged (or repaired)
H_REASON = "lockflow-reason"  # why a record was quarantined (comma-separated findings)
H_FINDINGS = "lockflow-findings"  # every finding as JSON (hold and quarantine)
H_WINDOW = "lockflow-window-start"  # the window's start, ISO-8601
H_UNAPPROVED = "lockflow-unapproved"  # "true": passed before any policy was approved
H_REPLAYED = "lockflow-replayed"  # "true": held, then replayed through the policy
H_LAST_MEDIANS = "lockflow-last-medians"  # on .hold: the previous window's medians, for repairs on replay
H_LATE = "lockflow-late"  # "true": the record's window had closed when it arrived


def output_topics(topic: str) -> dict[str, str]:
    """The stream's topics by role."""
    return {
        "clean": f"{topic}.clean",
        "quarantine": f"{topic}.quarantine",
        "hold": f"{topic}.hold",
        "state": f"{topic}.streamwork.state",
        "lease": f"{topic}.streamwork.lease",
    }


def kafka_config(spec: StreamSpec, box: SecretBox) -> dict[str, Any]:
    """librdkafka settings for the stream's cluster: its bootstrap servers and its security, unsealed here.

    `spec.security` travels sealed (lockflow.sources.kafka); the password exists in clear only in this
    process's client configuration.
    """
    config: dict[str, Any] = {"bootstrap.servers": spec.bootstrap_servers}
    if spec.security:
        config.update(librdkafka_options(opened_security(spec.security, box)))
    return config


@dataclass(slots=True)
class Buffered:
    """A record in an open window: where it came from, when it was read, what the checks found."""

    partition: int
    offset: int
    arrival_ms: int
    checked: Checked
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class State:
    """What survives a restart besides the re-read records: committed with each transaction."""

    processed: dict[int, int] = field(default_factory=dict)  # partition -> next offset not yet read
    hold_processed: dict[int, int] = field(default_factory=dict)
    watermark_ms: int | None = None  # the stream's watermark (see `_watermark`), never going back
    partition_max: dict[int, int] = field(default_factory=dict)  # partition -> greatest event time read
    closed_through_ms: int | None = None  # every window ending at or before this is closed
    late: dict[int, int] = field(default_factory=dict)  # open window start -> late records counted in it
    last_medians: dict[str, float] = field(default_factory=dict)
    windows_closed: int = 0

    def to_json(self) -> bytes:
        """The snapshot's bytes."""
        return json.dumps(
            {
                "processed": self.processed,
                "hold_processed": self.hold_processed,
                "watermark_ms": self.watermark_ms,
                "partition_max": self.partition_max,
                "closed_through_ms": self.closed_through_ms,
                "late": self.late,
                "last_medians": self.last_medians,
                "windows_closed": self.windows_closed,
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> State:
        """Back from `to_json`."""
        data = json.loads(raw)
        return cls(
            processed={int(k): int(v) for k, v in data["processed"].items()},
            hold_processed={int(k): int(v) for k, v in data.get("hold_processed", {}).items()},
            watermark_ms=data["watermark_ms"],
            partition_max={int(k): int(v) for k, v in data.get("partition_max", {}).items()},
            closed_through_ms=data["closed_through_ms"],
            late={int(k): int(v) for k, v in data["late"].items()},
            last_medians={str(k): float(v) for k, v in data["last_medians"].items()},
            windows_closed=int(data.get("windows_closed", 0)),
        )


@dataclass
class Tuning:
    """How often to commit and how much to read at once."""

    commit_interval_ms: int = 200
    batch: int = 5000
    lease_session_timeout_ms: int = 6000
    partitions: int = 3  # for the output topics this worker creates
    idle_close_ms: int | None = None  # silence that closes the open windows (None: window + grace)


class PolicyBox:
    """The newest approved policy of a stream, set by the registry's reader, read at each window's close."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policy: StreamPolicy | None = None

    def offer(self, policy: StreamPolicy) -> None:
        """Keep the policy if it is newer than the one held."""
        with self._lock:
            if self._policy is None or policy.version > self._policy.version:
                self._policy = policy

    def get(self) -> StreamPolicy | None:
        """The policy in force now."""
        with self._lock:
            return self._policy


class LostOwnership(Exception):
    """Another worker took the stream (fenced, or the lease moved): stop and wait."""


class StreamProcessor(threading.Thread):
    """Runs one stream until stopped: waits for the lease, then reads, windows and routes exactly once."""

    def __init__(
        self,
        *,
        spec: StreamSpec,
        policies: PolicyBox,
        box: SecretBox,
        artifacts: ArtifactStore | None,
        events_topic: str,
        events_bootstrap: str,
        tuning: Tuning | None = None,
        worker_id: str = "",
        records: RecordFormat | None = None,
    ) -> None:
        super().__init__(name=f"stream-{spec.stream_id}", daemon=True)
        self.spec = spec
        self.records = records or JsonRecords()
        self.policies = policies
        self.artifacts = artifacts
        self.events_topic = events_topic
        self.tuning = tuning or Tuning()
        self.worker_id = worker_id or uuid.uuid4().hex[:8]
        self.topics = output_topics(spec.topic)
        self.contract = Contract(spec.contract)
        self.window_ms = spec.window_seconds * 1000
        self.grace_ms = spec.grace_seconds * 1000
        self.idle_close_ms = self.tuning.idle_close_ms or self.window_ms + self.grace_ms
        self.base = kafka_config(spec, box)
        # WindowAssessed goes in the transaction when lockflow's Kafka is the stream's; else after it.
        self.events_producer: Producer | None = (
            None
            if events_bootstrap == spec.bootstrap_servers
            else Producer({"bootstrap.servers": events_bootstrap})
        )
        self.stopping = threading.Event()
        self.owner = threading.Event()
        self.active = False
        self.state = State()
        self.windows: dict[int, list[Buffered]] = defaultdict(list)
        self.oldest: dict[int, dict[int, int]] = defaultdict(
            dict
        )  # window start -> partition -> oldest offset
        self.consumer: Consumer | None = None
        self.initial_high: dict[int, int] = {}  # partition -> its end when this worker took the stream
        self.next_offset: dict[int, int] = {}  # partition -> the next offset to read
        self.last_read: dict[int, float] = {}  # partition -> when a record was last read (monotonic)
        self.activated_at = 0.0
        self.producer: Producer | None = None
        self.in_txn = False
        self.dirty = False
        self.last_commit = 0.0
        self.hold_assigned = False
        self.after_commit: list[WindowAssessed] = []
        self.error: BaseException | None = None

    # ---- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the thread to finish (it commits what it has, then leaves the lease group)."""
        self.stopping.set()

    def run(self) -> None:
        """The thread: hold the lease, run while owner, hand over on loss."""
        try:
            self._ensure_topics()
            lease = Consumer(
                {
                    **self.base,
                    "group.id": f"{self.spec.consumer_group}.lease",
                    "client.id": f"lockflow-streams-lease-{self.worker_id}",
                    "session.timeout.ms": self.tuning.lease_session_timeout_ms,
                    "heartbeat.interval.ms": max(500, self.tuning.lease_session_timeout_ms // 6),
                    "enable.auto.commit": False,
                    "partition.assignment.strategy": "range",
                }
            )
            lease.subscribe(
                [self.topics["lease"]],
                on_assign=lambda _c, parts: self.owner.set() if parts else None,
                on_revoke=lambda _c, _parts: self.owner.clear(),
                on_lost=lambda _c, _parts: self.owner.clear(),
            )
            try:
                while not self.stopping.is_set():
                    lease.poll(0 if self.active else 0.1)
                    if self.owner.is_set() and not self.active:
                        self._activate()
                    elif not self.owner.is_set() and self.active:
                        self._deactivate(commit=False)
                    if self.active:
                        self._step_safely()
                if self.active:
                    self._deactivate(commit=True)
            finally:
                lease.close()
        except BaseException as exc:  # the thread's end must be visible to the supervisor
            self.error = exc
            log.exception("stream_crashed", stream_id=self.spec.stream_id)

    def _ensure_topics(self) -> None:
        """Create the stream's output, state and lease topics if missing."""
        admin = AdminClient(self.base)
        existing = set(admin.list_topics(timeout=10).topics)
        compact = {"cleanup.policy": "compact"}
        wanted = [
            NewTopic(self.topics["clean"], self.tuning.partitions, 1),
            NewTopic(self.topics["quarantine"], self.tuning.partitions, 1),
            NewTopic(self.topics["hold"], self.tuning.partitions, 1),
            NewTopic(self.topics["state"], 1, 1, config=compact),
            NewTopic(self.topics["lease"], 1, 1),
        ]
        missing = [t for t in wanted if t.topic not in existing]
        if not missing:
            return
        for name, future in admin.create_topics(missing).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            log.info("stream_topic_created", topic=name)

    def _activate(self) -> None:
        """Become the owner: fence the previous one, restore the snapshot, read from the committed offsets."""
        producer = Producer(
            {
                **self.base,
                "transactional.id": f"lockflow-streams.{self.spec.stream_id}",
                "transaction.timeout.ms": 60000,
                "linger.ms": 5,
                "client.id": f"lockflow-streams-{self.worker_id}",
            }
        )
        producer.init_transactions(30)
        self.producer = producer
        self.state = self._read_snapshot()
        self.windows = defaultdict(list)
        self.oldest = defaultdict(dict)
        consumer = Consumer(
            {
                **self.base,
                "group.id": self.spec.consumer_group,
                "client.id": f"lockflow-streams-{self.worker_id}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                # What librdkafka prefetches per partition: kept small, a lagging worker's memory stays flat.
                "queued.max.messages.kbytes": 8192,
            }
        )
        parts = self._partitions(consumer, self.spec.topic)
        committed = consumer.committed(parts, timeout=30)
        self.initial_high, self.next_offset, self.last_read = {}, {}, {}
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=30)
            self.initial_high[tp.partition] = high
            self.next_offset[tp.partition] = tp.offset if tp.offset >= 0 else low
        self.activated_at = time.monotonic()
        consumer.assign(
            [
                TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else OFFSET_BEGINNING)
                for p in committed
            ]
        )
        self.consumer = consumer
        self.hold_assigned = False
        self.in_txn = False
        self.dirty = False
        self.last_commit = time.monotonic()
        self.active = True
        log.info(
            "stream_owned",
            stream_id=self.spec.stream_id,
            worker=self.worker_id,
            closed=self.state.windows_closed,
        )

    def _partitions(self, consumer: Consumer, topic: str) -> list[TopicPartition]:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        return [TopicPartition(topic, p) for p in sorted(meta.partitions)]

    def _deactivate(self, *, commit: bool) -> None:
        """Stop owning: commit what is done (a graceful stop) or abort it (the lease moved)."""
        try:
            if commit and self.producer is not None:
                self._commit()
            elif self.in_txn and self.producer is not None:
                self.producer.abort_transaction(10)
        except KafkaException as exc:
            log.warning("stream_release_failed", stream_id=self.spec.stream_id, error=str(exc))
        finally:
            if self.consumer is not None:
                self.consumer.close()
            self.consumer = None
            self.producer = None
            self.windows = defaultdict(list)
            self.oldest = defaultdict(dict)
            self.in_txn = False
            self.active = False
            log.info("stream_released", stream_id=self.spec.stream_id, worker=self.worker_id)

    def _read_snapshot(self) -> State:
        """The last committed snapshot of the stream's state (a new stream: empty)."""
        reader = Consumer(
            {
                **self.base,
                "group.id": f"{self.spec.consumer_group}.state-reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        try:
            tp = TopicPartition(self.topics["state"], 0)
            low, high = reader.get_watermark_offsets(tp, timeout=30)
            # The last snapshot is among the last offsets (each transaction adds one and its marker).
            for first in (max(low, high - SNAPSHOT_TAIL), low):
                state = self._last_snapshot(reader, tp, first, high)
                if state is not None or first == low:
                    return state or State()
            return State()
        finally:
            reader.close()

    def _last_snapshot(self, reader: Consumer, tp: TopicPartition, first: int, high: int) -> State | None:
        """The last snapshot between two offsets (None: none there)."""
        if high <= first:
            return None
        reader.assign([TopicPartition(tp.topic, tp.partition, first)])
        state: State | None = None
        idle = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is not None and msg.error() is None and msg.value() is not None:
                state = State.from_json(_bytes(msg.value()))
            idle = idle + 1 if msg is None else 0
            # read_committed: the last offsets may be transaction markers, which are never delivered
            if reader.position([tp])[0].offset >= high or idle >= 2:
                return state
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "reading the stream's state snapshot"))

    # ---- the loop --------------------------------------------------------------------------------

    def _step_safely(self) -> None:
        """One step; an aborted transaction is retried from the last commit, a fenced owner stops."""
        try:
            self._step()
        except RegistryUnavailable as exc:
            # No record is judged without its schema: start again from the last commit once it answers.
            log.warning("stream_registry_unavailable", stream_id=self.spec.stream_id, error=str(exc))
            self._deactivate(commit=False)
            time.sleep(1.0)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            fenced = isinstance(error, KafkaError) and (
                error.fatal()
                or error.code() == KafkaError._FENCED
                or error.code() == KafkaError.PRODUCER_FENCED
            )
            log.warning("stream_step_failed", stream_id=self.spec.stream_id, error=str(exc), fenced=fenced)
            self._deactivate(commit=False)  # re-read from the last commit on the next turn (if still owner)
            if not fenced:
                time.sleep(0.5)

    def _step(self) -> None:
        assert self.consumer is not None
        self._maybe_replay_holds()
        messages = self.consumer.consume(num_messages=self.tuning.batch, timeout=0.05)
        now_ms = int(time.time() * 1000)
        read_at = time.monotonic()  # one clock read per batch: its records were all read at once
        topic = self.spec.topic
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            if msg.topic() == topic:
                self._on_record(msg, now_ms, read_at)
            else:
                self._on_held(msg)
        self._close_windows()
        due = (time.monotonic() - self.last_commit) * 1000 >= self.tuning.commit_interval_ms
        if self.dirty and (due or self.stopping.is_set()):
            self._commit()

    def _on_record(self, msg: Message, now_ms: int, read_at: float) -> None:
        partition, offset = _where(msg)
        timestamp = msg.timestamp()[1]
        checked = check_record(
            msg.value() or b"",
            contract=self.contract,
            event_time_field=self.spec.event_time_field,
            key_field=self.spec.key_field,
            message_key=msg.key(),
            fallback_ms=timestamp if timestamp > 0 else now_ms,
            decode=self.records.decode,
        )
        record_id = f"{self.spec.topic}/{partition}/{offset}".encode()
        self.next_offset[partition] = offset + 1
        self.last_read[partition] = read_at
        seen_before = offset < self.state.processed.get(partition, -1)
        closed = self.state.closed_through_ms
        late = closed is not None and is_late(
            checked.event_ms, window_ms=self.window_ms, closed_through_ms=closed
        )
        self.dirty = True
        if seen_before:
            if not late:  # read before the restart, and its window is still open: back into it
                self._buffer(partition, offset, now_ms, checked, record_id)
            return  # else: emitted already (in its window, or as a late record)
        self.state.processed[partition] = offset + 1
        if late:
            self._emit_late(checked, record_id, now_ms)
            return
        self._buffer(partition, offset, now_ms, checked, record_id)
        if checked.event_ms > self.state.partition_max.get(partition, -1):
            self.state.partition_max[partition] = checked.event_ms

    def _buffer(self, partition: int, offset: int, now_ms: int, checked: Checked, record_id: bytes) -> None:
        start = window_start(checked.event_ms, self.window_ms)
        self.windows[start].append(Buffered(partition, offset, now_ms, checked, [(H_RECORD_ID, record_id)]))
        oldest = self.oldest[start]
        if offset < oldest.get(partition, offset + 1):
            oldest[partition] = offset

    def _emit_late(self, checked: Checked, record_id: bytes, now_ms: int) -> None:
        """A record whose window had closed: counted in the window open now, routed at once."""
        checked.findings.append(Finding("late_record", None, "its window had closed when it arrived"))
        watermark = self.state.watermark_ms if self.state.watermark_ms is not None else checked.event_ms
        counted_in = window_start(watermark, self.window_ms)
        self.state.late[counted_in] = self.state.late.get(counted_in, 0) + 1
        headers = [(H_RECORD_ID, record_id), (H_LATE, b"true")]
        self._route(
            Buffered(-1, -1, now_ms, checked, headers),
            window=counted_in,
            counts=None,
            policy=self.policies.get(),
        )

    # ---- closing windows -------------------------------------------------------------------------

    def _watermark(self) -> int | None:
        """The least of the partitions' greatest event times, over the partitions with records yet to read.

        A partition read ahead of another cannot close a window the other still has records for; a
        partition read to its end, or silent for IDLE_MS (a producer's transaction markers can keep
        its last offset unreachable), holds nothing back. When no partition has delivered a record for
        the idle close time, the watermark passes every open window (`idle_watermark`), so the last
        window of a stream whose producers stopped closes; a record for it that comes later is late.
        """
        assert self.consumer is not None
        now = time.monotonic()
        behind: list[int] = []
        for partition, next_offset in self.next_offset.items():
            _low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.spec.topic, partition), cached=True
            )
            if high is None or high < 0:
                high = self.initial_high.get(partition, 0)
            idle = (now - self.last_read.get(partition, self.activated_at)) * 1000 >= IDLE_MS
            if next_offset < high and not idle:
                seen = self.state.partition_max.get(partition)
                if seen is None:
                    return self.state.watermark_ms  # a partition not read yet: nothing can close
                behind.append(seen)
        candidate = min(behind) if behind else max(self.state.partition_max.values(), default=None)
        last_record = max(self.last_read.values(), default=self.activated_at)
        if is_idle(now, max(last_record, self.activated_at), idle_close_ms=self.idle_close_ms):
            # Producers stopped: close what is open rather than wait for event time that may never come.
            open_starts = [*self.windows.keys(), *self.state.late.keys()]
            jump = idle_watermark(open_starts, window_ms=self.window_ms, grace_ms=self.grace_ms)
            if jump is not None and (candidate is None or jump > candidate):
                candidate = jump
        if candidate is None:
            return self.state.watermark_ms
        if self.state.watermark_ms is None or candidate > self.state.watermark_ms:
            self.state.watermark_ms = candidate
        return self.state.watermark_ms

    def _close_windows(self) -> None:
        watermark = self._watermark()
        if watermark is None:
            return
        limit = closable_until(watermark, grace_ms=self.grace_ms)
        boundary = window_start(limit, self.window_ms)
        starts = sorted({*self.windows.keys(), *self.state.late.keys()})
        for start in starts:
            if start + self.window_ms <= boundary:
                self._close(start)
        if self.state.closed_through_ms is None or boundary > self.state.closed_through_ms:
            self.state.closed_through_ms = boundary
            self.dirty = True

    def _close(self, start: int) -> None:
        """Close one window: mark duplicates, route every record under the policy now in force, report."""
        buffered = self.windows.pop(start, [])
        self.oldest.pop(start, None)
        late = self.state.late.pop(start, 0)
        mark_duplicates([b.checked for b in buffered])
        policy = self.policies.get()
        mode = "policy" if policy is not None else self.spec.unapproved_mode
        counts: dict[str, int] = defaultdict(int)
        routes: list[str] = []
        for item in buffered:
            routes.append(self._route(item, window=start, counts=counts, policy=policy))
        checked = [b.checked for b in buffered]
        findings: dict[StreamFindingKind, int] = defaultdict(int)
        for record in checked:
            for kind in {f.kind for f in record.findings}:
                findings[kind] += 1
        if late:
            findings["late_record"] += late
        freshness = [max(0.0, (b.arrival_ms - b.checked.event_ms) / 1000.0) for b in buffered]
        window_medians = medians(checked, self.contract.number_fields)
        closed_at = datetime.now(UTC)
        result = WindowResult(
            stream_id=self.spec.stream_id,
            window_start=datetime.fromtimestamp(start / 1000, UTC),
            window_end=datetime.fromtimestamp((start + self.window_ms) / 1000, UTC),
            policy_version=policy.version if policy is not None else None,
            mode=mode,
            records=len(buffered),
            findings=dict(findings),
            fields=field_counts(checked, tuple(self.contract.properties)),
            clean=counts["clean"],
            quarantined=counts["quarantine"],
            repaired=counts["repaired"],
            dropped=counts["drop"],
            held=counts["hold"],
            late=late,
            freshness_p50_seconds=percentile(freshness, 50),
            freshness_p99_seconds=percentile(freshness, 99),
            quality_score=quality_score(len(buffered), dict(findings)),
            medians=window_medians,
            artifact_uri=self._write_artifact(start, buffered, routes),
            closed_at=closed_at,
        )
        if window_medians:
            self.state.last_medians = window_medians
        self.state.windows_closed += 1
        self._publish_result(result)
        self.dirty = True

    def _route(
        self, item: Buffered, *, window: int, counts: dict[str, int] | None, policy: StreamPolicy | None
    ) -> str:
        """Send one record where the policy (or the unapproved mode) says; its route."""
        checked = item.checked
        headers = item.headers  # the record's own list: it is sent once, so it is extended in place
        headers.append((H_WINDOW, _iso(window)))
        if policy is None:
            if self.spec.unapproved_mode == "hold":
                headers += [
                    (H_POLICY, b"none"),
                    (H_MODE, b"hold"),
                    (H_FINDINGS, json.dumps([f.as_json() for f in checked.findings]).encode()),
                    (H_LAST_MEDIANS, orjson.dumps(self.state.last_medians)),
                ]
                self._produce(self.topics["hold"], checked.raw, headers, key=checked.key)
                route = "hold"
            else:
                headers += [(H_POLICY, b"none"), (H_MODE, b"pass"), (H_UNAPPROVED, b"true")]
                self._produce(self.topics["clean"], checked.raw, headers, key=checked.key)
                route = "clean"
            if counts is not None:
                counts[route] += 1
            return route
        if not checked.findings:  # nothing for a rule to act on: clean, unchanged (what `decide` says)
            headers += [(H_POLICY, _version(policy.version)), (H_MODE, b"policy")]
            self._produce(self.topics["clean"], checked.raw, headers, key=checked.key)
            if counts is not None:
                counts["clean"] += 1
            return "clean"
        verdict = decide(checked, policy=policy, last_medians=self.state.last_medians)
        route = self._send(verdict, checked, headers, policy)
        if counts is not None:
            counts[route] += 1
            if verdict.repaired and route == "clean":
                counts["repaired"] += 1
        return route

    def _send(
        self, verdict: Verdict, checked: Checked, headers: list[tuple[str, bytes]], policy: StreamPolicy
    ) -> str:
        headers = [*headers, (H_POLICY, _version(policy.version)), (H_MODE, b"policy")]
        if verdict.route == "drop":
            return "drop"
        if verdict.route == "quarantine":
            headers += [
                (H_REASON, ",".join(verdict.reasons).encode()),
                (H_FINDINGS, json.dumps([f.as_json() for f in checked.findings]).encode()),
            ]
            self._produce(self.topics["quarantine"], checked.raw, headers, key=checked.key)
            return "quarantine"
        value = checked.raw
        if verdict.repaired:
            try:
                value = self.records.encode_like(checked.raw, verdict.value or {})
            except RecordUndecodable as exc:  # a repair the writer schema cannot hold: kept, unchanged
                headers += [
                    (H_REASON, ",".join([*verdict.reasons, f"repair_unfit: {exc}"]).encode()),
                    (H_FINDINGS, json.dumps([f.as_json() for f in checked.findings]).encode()),
                ]
                self._produce(self.topics["quarantine"], checked.raw, headers, key=checked.key)
                return "quarantine"
        if verdict.flags:
            headers.append((H_FLAGS, ",".join(verdict.flags).encode()))
        self._produce(self.topics["clean"], value, headers, key=checked.key)
        return "clean"

    # ---- held records ----------------------------------------------------------------------------

    def _maybe_replay_holds(self) -> None:
        """Once a policy is in force, read `.hold` (from its committed offsets) through it."""
        if self.hold_assigned or self.policies.get() is None or self.spec.unapproved_mode != "hold":
            return
        assert self.consumer is not None
        parts = self._partitions(self.consumer, self.topics["hold"])
        committed = self.consumer.committed(parts, timeout=30)
        self.consumer.incremental_assign(
            [
                TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else OFFSET_BEGINNING)
                for p in committed
            ]
        )
        self.hold_assigned = True
        log.info("stream_replaying_held", stream_id=self.spec.stream_id)

    def _on_held(self, msg: Message) -> None:
        """One held record through the policy now in force (its findings were made when its window closed)."""
        policy = self.policies.get()
        assert policy is not None
        partition, offset = _where(msg)
        self.dirty = True
        if offset < self.state.hold_processed.get(partition, -1):
            return
        self.state.hold_processed[partition] = offset + 1
        headers = {k: _bytes(v) for k, v in list(msg.headers() or [])}  # type: ignore[str-unpack]
        findings = [Finding.from_json(f) for f in json.loads(headers.get(H_FINDINGS, b"[]"))]
        raw = _bytes(msg.value())
        value = None
        if not any(f.kind == "malformed" for f in findings):
            try:
                value = self.records.decode(raw)
            except RecordUndecodable as exc:  # read when it was held, not now (its schema gone since)
                findings.append(Finding("malformed", None, str(exc)))
        message_key = msg.key()
        key = _bytes(message_key).decode("utf-8", "replace") if message_key is not None else None
        checked = Checked(value=value, raw=raw, event_ms=0, key=key, findings=findings)
        last = {str(k): float(v) for k, v in json.loads(headers.get(H_LAST_MEDIANS, b"{}")).items()}
        verdict = decide(checked, policy=policy, last_medians=last)
        out = [(H_RECORD_ID, headers.get(H_RECORD_ID, b"")), (H_REPLAYED, b"true")]
        if H_WINDOW in headers:
            out.append((H_WINDOW, headers[H_WINDOW]))
        self._send(verdict, checked, out, policy)

    # ---- output and commit -----------------------------------------------------------------------

    def _begin(self) -> None:
        if not self.in_txn:
            assert self.producer is not None
            self.producer.begin_transaction()
            self.in_txn = True

    def _produce(
        self, topic: str, value: bytes, headers: list[tuple[str, bytes]], *, key: str | None
    ) -> None:
        self._begin()
        assert self.producer is not None
        while True:
            try:
                # the list as it is (a copy per record costs); the cast only widens its type for mypy
                sent = cast("list[tuple[str, str | bytes | None]]", headers)
                self.producer.produce(topic, value=value, key=key, headers=sent)
                return
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.05)

    def _publish_result(self, result: WindowResult) -> None:
        event = WindowAssessed(
            event_id=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{self.spec.stream_id}/{result.window_start.isoformat()}")
            ),
            run_id=self.spec.stream_id,
            producer="streams",
            correlation_id=self.spec.stream_id,
            payload=WindowAssessedPayload(window=result),
        )
        log.info(
            "window_assessed",
            stream_id=self.spec.stream_id,
            window_start=result.window_start.isoformat(),
            records=result.records,
            policy_version=result.policy_version,
            score=result.quality_score,
        )
        if self.events_producer is None:
            self._begin()
            assert self.producer is not None
            self.producer.produce(
                self.events_topic,
                value=serialize_event(event),
                key=self.spec.stream_id,
                headers=[("event-type", b"WindowAssessed")],
            )
        else:
            self.after_commit.append(event)

    def _commit(self) -> None:
        """Snapshot, offsets and outputs in one transaction."""
        assert self.producer is not None and self.consumer is not None
        self._begin()
        self.producer.produce(self.topics["state"], value=self.state.to_json(), key="state")
        offsets = self._offsets()
        if offsets:
            self._send_offsets(offsets)
        self.producer.commit_transaction(60)
        self.in_txn = False
        self.dirty = False
        self.last_commit = time.monotonic()
        if self.after_commit and self.events_producer is not None:
            for event in self.after_commit:  # another cluster: at least once, the event id is the window's
                self.events_producer.produce(
                    self.events_topic,
                    value=serialize_event(event),
                    key=event.run_id,
                    headers=[("event-type", b"WindowAssessed")],
                )
            self.events_producer.flush(30)
        self.after_commit = []

    def _send_offsets(self, offsets: list[TopicPartition]) -> None:
        """Add the offsets to the transaction, failing (to be retried) instead of hanging when the group's
        coordinator is away.

        librdkafka's send_offsets_to_transaction ignores its timeout while the coordinator is down
        (confluentinc/librdkafka#5456): across a broker restart it blocked for good. So the consumer asks
        the coordinator first (a plain request that does time out), and the call itself runs under a
        watchdog; on either failure the step is retried from the last commit with a new producer, whose
        init_transactions fences the stuck one and aborts its transaction.
        """
        assert self.producer is not None and self.consumer is not None
        self.consumer.committed(offsets, timeout=COORDINATOR_TIMEOUT_S)
        producer, metadata = self.producer, self.consumer.consumer_group_metadata()
        done = threading.Event()
        failure: list[BaseException] = []

        def send() -> None:
            try:
                producer.send_offsets_to_transaction(offsets, metadata, COORDINATOR_TIMEOUT_S)
            except BaseException as exc:  # handed to the stream's thread
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=send, name=f"{self.name}-offsets", daemon=True).start()
        if not done.wait(COORDINATOR_TIMEOUT_S + 2):
            self.producer = None  # left to the stuck call; the next owner's producer fences it
            self.in_txn = False
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "send_offsets_to_transaction hung"))
        if failure:
            raise failure[0]

    def _offsets(self) -> list[TopicPartition]:
        """Per partition, the oldest record still in an open window, else the next one to read."""
        oldest: dict[int, int] = dict(self.state.processed)
        for offsets in self.oldest.values():
            for partition, offset in offsets.items():
                if offset < oldest.get(partition, offset + 1):
                    oldest[partition] = offset
        out = [TopicPartition(self.spec.topic, p, o) for p, o in oldest.items()]
        out += [TopicPartition(self.topics["hold"], p, o) for p, o in self.state.hold_processed.items()]
        return out

    # ---- the micro-batch -------------------------------------------------------------------------

    def _write_artifact(self, start: int, buffered: list[Buffered], routes: list[str]) -> str | None:
        """The window's records as Parquet (the contract's fields typed, plus where each one went)."""
        if self.artifacts is None or not buffered:
            return None
        columns: dict[str, Any] = {
            "_record_id": [b.headers[0][1].decode() for b in buffered],
            # epoch ms as they are: the same timestamps as datetimes, without one object per record
            "_event_time": pa.array([b.checked.event_ms for b in buffered], pa.timestamp("ms", tz="UTC")),
            "_route": routes,
            "_findings": [
                ",".join(sorted({f.kind for f in b.checked.findings})) if b.checked.findings else ""
                for b in buffered
            ],
        }
        fields = [
            pa.field("_record_id", pa.string()),
            pa.field("_event_time", pa.timestamp("ms", tz="UTC")),
            pa.field("_route", pa.string()),
            pa.field("_findings", pa.string()),
        ]
        values = [b.checked.value or _EMPTY for b in buffered]  # a malformed record: every field None
        for name, prop in self.contract.properties.items():
            kind, cast = _column_type(prop)
            columns[name] = cast([value.get(name) for value in values])
            fields.append(pa.field(name, kind))
        table = pa.Table.from_pydict(columns, schema=pa.schema(fields))
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        uri, _digest = self.artifacts.put_bytes(sink.getvalue(), suffix=".parquet")
        return uri


def _where(msg: Message) -> tuple[int, int]:
    """A record's partition and offset (always set on a record that was read)."""
    partition, offset = msg.partition(), msg.offset()
    assert partition is not None and offset is not None
    return partition, offset


def _bytes(value: str | bytes | None) -> bytes:
    """A record's value, key or header as bytes."""
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


_EMPTY: dict[str, Any] = {}
_NUMBERS = (int, float)
Column = Callable[[list[Any]], list[Any]]


def _column_type(prop: dict[str, Any]) -> tuple[pa.DataType, Column]:
    """A contract property's Parquet type and how to cast a column of JSON values to it (None: no fit)."""
    declared = prop.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or [])
    types.discard("null")
    # A column at once: a window holds tens of thousands of records; a call per value costs more than a cast.
    if types == {"integer"}:
        return pa.int64(), lambda c: [
            v if isinstance(v, int) and not isinstance(v, bool) else None for v in c
        ]
    if types <= {"integer", "number"} and types:
        return (
            pa.float64(),
            lambda c: [float(v) if isinstance(v, _NUMBERS) and not isinstance(v, bool) else None for v in c],
        )
    if types == {"boolean"}:
        return pa.bool_(), lambda c: [v if isinstance(v, bool) else None for v in c]
    if types == {"string"}:
        return pa.string(), lambda c: [v if isinstance(v, str) else None for v in c]
    return pa.string(), lambda c: [None if v is None else json.dumps(v) for v in c]


@functools.lru_cache(maxsize=16)
def _version(version: int) -> bytes:
    """A policy version as the bytes of its header."""
    return str(version).encode()


@functools.lru_cache(maxsize=64)
def _iso(ms: int) -> bytes:
    """A window start as the ISO-8601 bytes of its header."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().encode()
