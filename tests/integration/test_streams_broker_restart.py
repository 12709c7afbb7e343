"""Delivery guarantees of the stream worker across a restart of its Kafka broker.

The worker, its control topics (registry, commands, events), the stream's topic and the producer all
live on a private broker (tests/faults.py), which is restarted while records flow and windows are
open. Afterwards every produced record is in `.clean` + `.quarantine` exactly once, counted once in
one window, and no window is assessed twice (the same `_check` as the worker-kill tests).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults import PrivateKafka
from streamkit import BASE_MS, Source, make_topic, record
from test_streams_guarantees import TOTAL, Feed, Worker, _check, _start, _until_counted

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[PrivateKafka]:
    """A Kafka broker this test may restart (never the shared one)."""
    private = PrivateKafka()
    try:
        private.start()
        yield private
    finally:
        private.remove()


class SlowFeed(Feed):
    """The Feed, paced so that records are still flowing (and windows open) when the broker goes away."""

    def run(self) -> None:
        for i in range(TOTAL):
            self.producer.produce(self.topic, value=_value(i), on_delivery=self.delivered)
            self.sent += 1
            if i % 100 == 99:
                self.producer.flush(30)
                time.sleep(0.05)
        self.producer.flush(30)


def _value(i: int) -> bytes:
    from test_streams_guarantees import EVERY_BAD

    return record(i, BASE_MS + i, amount=5000.0 if i % EVERY_BAD == 0 else float(i % 100))


def test_no_record_is_lost_or_duplicated_across_a_broker_restart(
    broker: PrivateKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    topic = f"{topic_prefix}.orders"
    make_topic(bootstrap, topic)
    worker = Worker("worker", tmp_path, bootstrap, topic_prefix)
    stream_id = _start(bootstrap, topic_prefix, topic)
    worker.wait_for("stream_owned")
    feed = SlowFeed(bootstrap, topic)
    feed.start()
    while feed.sent < TOTAL // 3:
        time.sleep(0.05)
    worker.wait_for("window_assessed")
    broker.restart()  # mid-stream: records in flight, windows open, a transaction under way
    feed.join(120)
    assert not feed.is_alive(), "the feed never finished"
    Source(bootstrap, topic).send([record(TOTAL + 1, BASE_MS + TOTAL + 10_000)])  # closes the last windows
    try:
        try:
            found = _until_counted(bootstrap, topic_prefix, stream_id)
        except AssertionError as exc:  # the worker's own account of the outage, for whoever reads the failure
            raise AssertionError(f"{exc}\nthe worker's log ends:\n{_stream_lines(worker.text())}") from exc
        _check(bootstrap, topic, feed, found)
        assert worker.process.poll() is None, worker.text()
    finally:
        worker.kill(signal.SIGTERM)


def _stream_lines(log: str) -> str:
    """The worker's own lines (what its processors did), not the Kafka clients' retries."""
    return "\n".join(line for line in log.splitlines() if "lockflow.streams" in line)[-8000:]
