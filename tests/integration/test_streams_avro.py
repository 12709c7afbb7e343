"""An Avro stream (Confluent wire format) through the stream worker on the real Kafka.

A librdkafka producer writes records fastavro encoded under a writer schema with id 42; the worker
decodes them through `ConfluentAvro`, holds them until the first policy, replays them through it,
repairs a missing amount by writing the record back under the same schema, and quarantines a JSON
record sent to the Avro topic. The writer schemas come from a dict where a registry would answer
(no schema registry runs here: docs/architecture.md, "Record formats").
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import fastavro
import pytest
from pydantic import SecretStr
from streamkit import BASE_MS, Source, make_topic, policy_for, read_all, spec_for, windows

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.sources.record_formats import ConfluentAvro, RecordUndecodable
from lockflow.sources.secrets import SecretBox
from lockflow.streams.processor import PolicyBox, StreamProcessor, Tuning

pytestmark = pytest.mark.integration

SCHEMA_ID = 42
ORDER = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Order",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "ts", "type": "long"},
            {"name": "amount", "type": ["null", "double"]},
            {"name": "country", "type": "string"},
        ],
    }
)


class Schemas:
    """The writer schemas by id, as the registry holds them."""

    def schema(self, schema_id: int) -> Any:
        if schema_id != SCHEMA_ID:
            raise RecordUndecodable(f"schema id {schema_id} is not in the registry")
        return ORDER


def avro(n: int, at_ms: int, amount: float | None) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, SCHEMA_ID))
    fastavro.schemaless_writer(out, ORDER, {"id": f"r{n}", "ts": at_ms, "amount": amount, "country": "DE"})
    return out.getvalue()


def test_avro_records_are_held_replayed_repaired_under_their_schema_and_a_json_one_quarantined(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=1)
    spec = spec_for(
        kafka_bootstrap,
        topic,
        unapproved_mode="hold",
        format="avro",
        schema_registry_url="http://registry.invalid:8081",
    )
    box = PolicyBox()
    records = ConfluentAvro(Schemas())
    processor = StreamProcessor(
        spec=spec,
        policies=box,
        box=SecretBox(sources_key=None, secret_key=SecretStr("a test's own secret key")),
        artifacts=LocalArtifactStore(tmp_path / "artifacts"),
        events_topic=f"{topic_prefix}.events",
        events_bootstrap=kafka_bootstrap,
        tuning=Tuning(commit_interval_ms=100, partitions=1, idle_close_ms=600_000),
        records=records,
    )
    source = Source(kafka_bootstrap, topic)
    processor.start()
    try:
        source.send([avro(1, BASE_MS, 10.0), avro(2, BASE_MS + 100, 20.0)])  # window 0
        source.send([avro(3, BASE_MS + 1100, None)])  # window 1: the amount missing
        source.send([b'{"id": "r9", "ts": 1}'], timestamp=BASE_MS + 1200)  # JSON on an Avro topic
        source.send([avro(4, BASE_MS + 3500, 5.0)])  # closes windows 0 and 1: held
        first, second = windows(kafka_bootstrap, f"{topic_prefix}.events", spec.stream_id, count=2)
        box.offer(policy_for(spec.stream_id, 1, [("null_value", "repair_last_median")]))
        out = read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=4, quiet_s=10)
    finally:
        processor.stop()
        processor.join(30)
    assert processor.error is None, processor.error
    assert (first.records, first.held, first.findings) == (2, 2, {})
    assert (second.records, second.findings) == (2, {"null_value": 1, "malformed": 1})
    assert first.medians["amount"] == 15.0
    assert len(out) == 4 and all(o.headers["lockflow-replayed"] == "true" for o in out)
    quarantined = [o for o in out if o.topic.endswith(".quarantine")]
    assert len(quarantined) == 1 and quarantined[0].value == b'{"id": "r9", "ts": 1}'
    assert quarantined[0].headers["lockflow-reason"] == "malformed"
    clean = {records.decode(o.value)["id"]: o for o in out if o.topic.endswith(".clean")}
    assert set(clean) == {"r1", "r2", "r3"}
    assert clean["r1"].value == avro(1, BASE_MS, 10.0)  # passed as it came
    repaired = clean["r3"].value
    assert repaired[:5] == struct.pack(">bI", 0, SCHEMA_ID)  # written back under its writer schema
    assert records.decode(repaired)["amount"] == 15.0  # window 0's median
    assert clean["r3"].headers["lockflow-flags"] == "repaired:null_value:amount"
