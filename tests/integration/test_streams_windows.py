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
from pydantic import SecretStr
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
from lockflow.sources.secrets import SecretBox
from lockflow.streams.processor import PolicyBox, StreamProcessor, Tuning

pytestmark = pytest.mark.integration


@contextmanager
def running(
    spec: StreamSpec,
    box: PolicyBox,
    prefix: str,
    bootstrap: str,
    tmp: Path,
    *,
    idle_close_ms: int | None = None,
) -> Iterator[StreamProcessor]:
    processor = StreamProcessor(
        spec=spec,
        policies=box,
        box=SecretBox(sources_key=None, secret_key=SecretStr("a test's own secret key")),
        artifacts=LocalArtifactStore(tmp / "artifacts"),
        events_topic=f"{prefix}.events",
        events_bootstrap=bootstrap,
        tuning=Tuning(commit_interval_ms=100, partitions=1, idle_close_ms=idle_close_ms),
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


def test_a_policy_governs_the_windows_that_close_after_it_only(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=1)
    spec = spec_for(kafka_bootstrap, topic, unapproved_mode="pass")
    box = PolicyBox()
    source = Source(kafka_bootstrap, topic)
    events = f"{topic_prefix}.events"
    # Windows close by event time only here: an idle close on a loaded machine would close the next window
    # before the policy arrives.
    with running(spec, box, topic_prefix, kafka_bootstrap, tmp_path, idle_close_ms=600_000):
        source.send([record(1, BASE_MS), record(2, BASE_MS + 100, amount=-5.0)])  # window 0
        source.send([record(3, BASE_MS + 2500)])  # closes window 0 under no policy: passed untouched
        (before,) = windows(kafka_bootstrap, events, spec.stream_id, count=1)
        box.offer(policy_for(spec.stream_id, 1, [("out_of_range", "quarantine")]))
        source.send([record(4, BASE_MS + 2600, amount=-1.0)])  # window 2, closed after the policy came
        source.send([record(5, BASE_MS + 5000)])
        _, after = windows(kafka_bootstrap, events, spec.stream_id, count=2)
    assert (before.mode, before.policy_version, before.clean, before.quarantined) == ("pass", None, 2, 0)
    assert (after.mode, after.policy_version, after.clean, after.quarantined) == ("policy", 1, 1, 1)
    out = read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=4)
    by_id = {json.loads(o.value)["id"]: o for o in out}
    assert by_id["r2"].topic.endswith(".clean") and by_id["r2"].headers["lockflow-unapproved"] == "true"
    assert by_id["r2"].headers["lockflow-policy-version"] == "none"
    assert (
        by_id["r4"].topic.endswith(".quarantine")
        and by_id["r4"].headers["lockflow-reason"] == "out_of_range:amount"
    )
    assert by_id["r4"].headers["lockflow-policy-version"] == "1"


def test_held_records_are_replayed_through_the_first_policy(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=1)
    spec = spec_for(kafka_bootstrap, topic, unapproved_mode="hold")
    box = PolicyBox()
    source = Source(kafka_bootstrap, topic)
    events = f"{topic_prefix}.events"
    # Window 3 must stay open while the policy arrives: no idle close in the seconds this takes.
    with running(spec, box, topic_prefix, kafka_bootstrap, tmp_path, idle_close_ms=600_000):
        source.send([record(1, BASE_MS, amount=10.0), record(2, BASE_MS + 100, amount=20.0)])  # window 0
        source.send([record(3, BASE_MS + 1100, amount=None)])  # window 1: a required value missing
        source.send([b"[1, 2"], timestamp=BASE_MS + 1200)  # window 1: malformed
        source.send([record(4, BASE_MS + 3500)])  # closes windows 0 and 1: held
        first, second = windows(kafka_bootstrap, events, spec.stream_id, count=2)
        assert read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], quiet_s=1.0) == []
        box.offer(policy_for(spec.stream_id, 1, [("null_value", "repair_last_median")]))
        out = read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=4, quiet_s=10)
    assert (first.mode, first.held, second.held, second.policy_version) == ("hold", 2, 2, None)
    assert len(out) == 4 and all(o.headers["lockflow-replayed"] == "true" for o in out)
    assert {o.headers["lockflow-policy-version"] for o in out} == {"1"}
    malformed = next(o for o in out if o.topic.endswith(".quarantine"))
    assert malformed.value == b"[1, 2" and malformed.headers["lockflow-reason"] == "malformed"
    repaired = next(o for o in out if o.topic.endswith(".clean") and json.loads(o.value)["id"] == "r3")
    assert json.loads(repaired.value)["amount"] == 15.0  # window 0's median
    assert repaired.headers["lockflow-flags"] == "repaired:null_value:amount"


def test_out_of_order_records_and_a_partition_read_behind_another_are_not_late(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=2)
    spec = spec_for(kafka_bootstrap, topic, key_field=None)
    box = PolicyBox()
    box.offer(policy_for(spec.stream_id, 1, [("late_record", "flag")]))
    source = Source(kafka_bootstrap, topic)
    # Partition 0 runs 5 s ahead of partition 1, and within each the event times go back and forth
    # (less than the grace): whichever partition is read first, nothing is late.
    ahead = [BASE_MS + t for t in (0, 900, 300, 1500, 1200, 2500, 3100, 2900, 5500)]
    behind = [BASE_MS + t for t in (100, 50, 950, 1100, 1900, 1300)]
    source.send((record(i, t) for i, t in enumerate(ahead)), partition=0)
    source.send((record(100 + i, t) for i, t in enumerate(behind)), partition=1)
    with running(spec, box, topic_prefix, kafka_bootstrap, tmp_path) as processor:
        wait_processed(processor, len(ahead) + len(behind))
        source.send([record(200, BASE_MS + 9000)], partition=1)  # partition 1 catches up: windows 0-3 close
        found = windows(kafka_bootstrap, f"{topic_prefix}.events", spec.stream_id, count=4)
        source.send([record(201, BASE_MS + 950)], partition=0)  # now late: window 0 has closed
        source.send([record(202, BASE_MS + 20_000)], partition=0)
        source.send([record(203, BASE_MS + 20_000)], partition=1)
        later = windows(kafka_bootstrap, f"{topic_prefix}.events", spec.stream_id, count=6)
    counts = {int(w.window_start.timestamp() * 1000) - BASE_MS: w.records for w in found}
    assert counts == {0: 6, 1000: 5, 2000: 2, 3000: 1}
    assert sum(w.late for w in found) == 0
    assert sum(w.late for w in later) == 1


def test_the_last_window_of_a_stream_whose_producers_stopped_closes(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=1)
    spec = spec_for(kafka_bootstrap, topic)
    box = PolicyBox()
    box.offer(policy_for(spec.stream_id, 1, [("out_of_range", "quarantine")]))
    source = Source(kafka_bootstrap, topic)
    events = f"{topic_prefix}.events"
    with running(spec, box, topic_prefix, kafka_bootstrap, tmp_path, idle_close_ms=1500) as processor:
        n = source.send(record(i, BASE_MS + i * 100) for i in range(15))  # windows 0 and 1, then silence
        wait_processed(processor, n)
        first, last = windows(kafka_bootstrap, events, spec.stream_id, count=2, timeout=30)
        assert (first.records, last.records) == (10, 5)  # the last window closed with nothing after it
        n += source.send([record(99, BASE_MS + 1900)])  # for the closed window: late
        wait_processed(processor, n)
    # A new owner restores the snapshot: the closed windows stay closed, the late record is not re-read.
    with running(spec, box, topic_prefix, kafka_bootstrap, tmp_path, idle_close_ms=1500) as processor:
        found = windows(kafka_bootstrap, events, spec.stream_id, count=3, timeout=30)
    assert len({w.window_start for w in found}) == 3, found
    assert (found[2].records, found[2].late) == (
        0,
        1,
    )  # counted once, in the window open after the idle close
    out = read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=16)
    ids = [o.record_id for o in out]
    assert len(ids) == len(set(ids)) == 16
    assert [json.loads(o.value)["id"] for o in out if o.headers.get("lockflow-late") == "true"] == ["r99"]
