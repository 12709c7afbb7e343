"""Delivery guarantees of the stream worker, measured: across a SIGKILL and restart of the worker, and
across a hand-over between two workers, every produced record is in `.clean` + `.quarantine` exactly
once, and every record is counted once in exactly one window (as a window's record or as a late one).

The workers are real processes (`python -m lockflow.streams.bootstrap`) driven by the commands on
Kafka; the records come from a librdkafka producer while the workers are killed and started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from streamkit import BASE_MS, Source, make_topic, policy_for, read_all, record, spec_for, windows

from lockflow.common.events import (
    ApplyStreamPolicy,
    ApplyStreamPolicyPayload,
    StartStream,
    StartStreamPayload,
    serialize_event,
)
from lockflow.common.streams import WindowResult

pytestmark = pytest.mark.integration

TOTAL = 6000
EVERY_BAD = 50  # every 50th record is out of range: the policy quarantines it


class Worker:
    """One stream worker process, its log in a file."""

    def __init__(self, name: str, tmp: Path, bootstrap: str, prefix: str) -> None:
        self.log = tmp / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
        env.update(
            LOCKFLOW_MODE="distributed",
            LOCKFLOW_KAFKA_BOOTSTRAP=bootstrap,
            LOCKFLOW_TOPIC_PREFIX=prefix,
            LOCKFLOW_HOME=str(tmp / name),
            LOCKFLOW_ARTIFACT_DIR=str(tmp / "artifacts"),
            LOCKFLOW_STREAMS_COMMIT_INTERVAL_MS="100",
            # Windows close by event time only here (the closing record), not by an idle close while the
            # stream changes hands: the worker that takes over is the one to close the last windows.
            LOCKFLOW_STREAMS_IDLE_CLOSE_SECONDS="600",
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lockflow.streams.bootstrap"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.wait_for("lockflow worker streams ready")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, words: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text():
            assert self.process.poll() is None, f"worker exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {words!r} in:\n{self.text()}"
            time.sleep(0.1)

    def owns(self) -> bool:
        return self.text().count("stream_owned") > self.text().count("stream_released")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)


def _command(bootstrap: str, prefix: str, *events: object) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(
            f"{prefix}.commands.streams",
            value=serialize_event(event),
            key=event.run_id,  # type: ignore[attr-defined]
            headers=[("event-type", event.type.encode())],  # type: ignore[attr-defined]
        )
    assert producer.flush(30) == 0


class Feed(threading.Thread):
    """Produces TOTAL records in event-time order, a little at a time, noting each one's id."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
        self.ids: list[str] = []
        self.sent = 0
        self.failures: list[object] = []

    def delivered(self, err: object, msg: object) -> None:
        if err is not None:
            self.failures.append(err)
        else:
            self.ids.append(f"{self.topic}/{msg.partition()}/{msg.offset()}")  # type: ignore[attr-defined]

    def run(self) -> None:
        for i in range(TOTAL):
            amount = 5000.0 if i % EVERY_BAD == 0 else float(i % 100)
            self.producer.produce(
                self.topic, value=record(i, BASE_MS + i, amount=amount), on_delivery=self.delivered
            )
            self.sent += 1
            if i % 100 == 99:
                self.producer.flush(30)
                time.sleep(0.01)
        self.producer.flush(30)


def _start(bootstrap: str, prefix: str, topic: str) -> str:
    spec = spec_for(bootstrap, topic)
    policy = policy_for(spec.stream_id, 1, [("out_of_range", "quarantine")])
    _command(
        bootstrap,
        prefix,
        StartStream(run_id=spec.stream_id, producer="tests", payload=StartStreamPayload(spec=spec)),
        ApplyStreamPolicy(
            run_id=spec.stream_id, producer="tests", payload=ApplyStreamPolicyPayload(policy=policy)
        ),
    )
    return spec.stream_id


def _until_counted(bootstrap: str, prefix: str, stream_id: str, timeout: float = 90) -> list[WindowResult]:
    """The stream's windows once they count every produced record (each window read once)."""
    deadline = time.monotonic() + timeout
    count = TOTAL // 1000
    while True:
        found = windows(
            bootstrap, f"{prefix}.events", stream_id, count=count, timeout=max(1, deadline - time.monotonic())
        )
        if sum(w.records + w.late for w in found) >= TOTAL or time.monotonic() > deadline:
            return found
        count = len(found) + 1


def _check(bootstrap: str, topic: str, feed: Feed, found: list[WindowResult]) -> None:
    assert not feed.failures
    starts = Counter(w.window_start for w in found)
    assert max(starts.values()) == 1, f"a window was assessed twice: {starts}"
    assert sum(w.records + w.late for w in found) == TOTAL, [
        (w.window_start, w.records, w.late) for w in found
    ]
    out = read_all(bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=TOTAL)
    ids = Counter(o.record_id for o in out)
    duplicated = [i for i, n in ids.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} records written twice, e.g. {duplicated[:3]}"
    missing = set(feed.ids) - set(ids)
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:3]}"
    quarantined = [o for o in out if o.topic.endswith(".quarantine")]
    assert len(quarantined) == TOTAL // EVERY_BAD
    assert sum(w.quarantined for w in found) + sum(
        1 for o in quarantined if o.headers.get("lockflow-late")
    ) >= len(quarantined)


def test_no_record_is_lost_or_duplicated_across_a_sigkill_of_the_worker(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic)
    first = Worker("first", tmp_path, kafka_bootstrap, topic_prefix)
    stream_id = _start(kafka_bootstrap, topic_prefix, topic)
    first.wait_for("stream_owned")
    feed = Feed(kafka_bootstrap, topic)
    feed.start()
    while feed.sent < TOTAL // 3:
        time.sleep(0.05)
    first.wait_for("window_assessed")
    first.kill(signal.SIGKILL)  # mid-window, mid-transaction
    second = Worker("second", tmp_path, kafka_bootstrap, topic_prefix)
    feed.join(120)
    Source(kafka_bootstrap, topic).send(
        [record(TOTAL + 1, BASE_MS + TOTAL + 10_000)]
    )  # closes the last windows
    try:
        found = _until_counted(kafka_bootstrap, topic_prefix, stream_id)
        _check(kafka_bootstrap, topic, feed, found)
    finally:
        second.kill(signal.SIGTERM)


def test_no_record_is_lost_or_duplicated_across_hand_overs_between_two_workers(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic)
    one = Worker("one", tmp_path, kafka_bootstrap, topic_prefix)
    two = Worker("two", tmp_path, kafka_bootstrap, topic_prefix)
    stream_id = _start(kafka_bootstrap, topic_prefix, topic)
    deadline = time.monotonic() + 60
    while not (one.owns() or two.owns()):
        assert time.monotonic() < deadline, one.text() + two.text()
        time.sleep(0.1)
    owner, standby = (one, two) if one.owns() else (two, one)
    feed = Feed(kafka_bootstrap, topic)
    feed.start()
    while feed.sent < TOTAL // 3:
        time.sleep(0.05)
    owner.kill(signal.SIGTERM)  # a graceful leave: the group gives the stream to the other at once
    standby.wait_for("stream_owned")
    third = Worker("three", tmp_path, kafka_bootstrap, topic_prefix)  # joins: the group rebalances
    while feed.sent < 2 * TOTAL // 3:
        time.sleep(0.05)
    standby.kill(signal.SIGKILL)  # the owner dies: the third takes over after the session timeout
    feed.join(120)
    Source(kafka_bootstrap, topic).send([record(TOTAL + 1, BASE_MS + TOTAL + 10_000)])
    try:
        found = _until_counted(kafka_bootstrap, topic_prefix, stream_id)
        _check(kafka_bootstrap, topic, feed, found)
        assert third.owns()
    finally:
        third.kill(signal.SIGTERM)
