"""The stream worker on the real Kafka: windows counted exactly, the policy on later windows only, held
records replayed, a malformed record quarantined with its reason, a late record counted once.

Records are produced with confluent-kafka (librdkafka), a client family lockflow's bus does not use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamkit import (
    BASE_MS,
    Source,
    make_topic,
    policy_for,
    read_all,
    record,
    spec_for,
    wait_processed,
    windows,
)

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.streams import StreamSpec
from lockflow.streams.processor import PolicyBox, StreamProcessor, Tuning

pytestmark = pytest.mark.integration


@contextmanager
def running(spec: StreamSpec, box: PolicyBox, prefix: str, bootstrap: str, tmp: Path) -> Iterator[StreamProcessor]:
    processor = StreamProcessor(
        spec=spec,
        policies=box,
        artifacts=LocalArtifactStore(tmp / "artifacts"),
        events_topic=f"{prefix}.events",
        events_bootstrap=bootstrap,
        tuning=Tuning(commit_interval_ms=100, partitions=1),
    )
    processor.start()
    try:
        yield processor
    finally:
        processor.stop()
        processor.join(30)
    assert processor.error is None, processor.error


def test_windows_are_counted_exactly_and_a_malformed_record_is_quarantined(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=1)  # one partition: the order read is the order sent
    spec = spec_for(kafka_bootstrap, topic)
    box = PolicyBox()
    box.offer(policy_for(spec.stream_id, 1, [("out_of_range", "flag"), ("duplicate_key", "drop_duplicate")]))
    source = Source(kafka_bootstrap, topic)
    n = source.send(record(i, BASE_MS + i * 50) for i in range(12))  # window 0: r0..r11
    n += source.send([record(1, BASE_MS + 700)])  # a repeated key in window 0
    n += source.send([record(99, BASE_MS + 800, amount=5000.0)])  # out of range, flagged
    n += source.send([b"{not json"], timestamp=BASE_MS + 900)  # malformed, by its Kafka timestamp
    n += source.send(record(100 + i, BASE_MS + 1000 + i * 100) for i in range(7))  # window 1
    n += source.send(record(200 + i, BASE_MS + 3000 + i * 100) for i in range(5))  # window 3 (2 is empty)
    with running(spec, box, topic_prefix, kafka_bootstrap, tmp_path) as processor:
        n += source.send([record(300, BASE_MS + 5500)])  # closes windows 0-3 (grace 1 s)
        wait_processed(processor, n)
        n += source.send([record(301, BASE_MS + 500)])  # late: window 0 is closed
        wait_processed(processor, n)
        n += source.send([record(302, BASE_MS + 9000)])  # closes window 5, where the late one counts
        found = windows(kafka_bootstrap, f"{topic_prefix}.events", spec.stream_id, count=4)
    starts = [int(w.window_start.timestamp() * 1000) - BASE_MS for w in found]
    assert starts == [0, 1000, 3000, 5000]
    first, second, third, fifth = found
    assert (first.records, second.records, third.records, fifth.records) == (15, 7, 5, 1)
    assert first.findings == {"duplicate_key": 1, "out_of_range": 1, "malformed": 1}
    assert (first.clean, first.quarantined, first.dropped) == (13, 1, 1)
    assert first.fields["amount"].out_of_range == 1
    assert first.policy_version == 1 and first.mode == "policy"
    assert first.artifact_uri is not None and 0 < first.quality_score < 100
    assert second.quality_score == 100 and second.medians["amount"] == 3.0
    assert (fifth.late, fifth.findings) == (1, {"late_record": 1})
    out = read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=13 + 1 + 7 + 5 + 1 + 1)
    ids = [o.record_id for o in out]
    assert len(ids) == len(set(ids)) == 28
    quarantined = [o for o in out if o.topic.endswith(".quarantine")]
    assert len(quarantined) == 1 and quarantined[0].value == b"{not json"
    assert quarantined[0].headers["lockflow-reason"] == "malformed"
    assert {o.headers["lockflow-policy-version"] for o in out} == {"1"}
    flagged = [o for o in out if "lockflow-flags" in o.headers]
    assert sorted(o.headers["lockflow-flags"] for o in flagged) == ["late_record", "out_of_range:amount"]
    late = next(o for o in out if o.headers.get("lockflow-late") == "true")
    assert json.loads(late.value)["id"] == "r301"
