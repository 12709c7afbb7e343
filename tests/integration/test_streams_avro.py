"""An Avro stream (Confluent wire format) through the stream worker, the real Kafka and a real registry.

A librdkafka producer writes records with confluent-kafka's own AvroSerializer, which registers the
writer schema in the schema registry of scripts/services.sh (Apicurio, its Confluent-compatible API)
and frames each record with the id it got; the worker reads the schema by that id from the registry
(the `record_format` the worker builds from a StreamSpec), holds the records until the first policy,
replays them through it, repairs a missing amount by writing the record back under the same schema,
and quarantines a JSON record and a record whose schema id the registry does not know.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import SecretStr
from streamkit import BASE_MS, Source, make_topic, policy_for, read_all, spec_for, windows

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.sources.netguard import NetPolicy
from lockflow.sources.record_formats import record_format
from lockflow.sources.secrets import SecretBox
from lockflow.streams.processor import PolicyBox, StreamProcessor, Tuning

pytestmark = pytest.mark.integration

ORDER = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "lockflow.test",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "ts", "type": "long"},
            {"name": "amount", "type": ["null", "double"]},
            {"name": "country", "type": "string"},
        ],
    }
)
UNKNOWN_ID = 2_000_000_000  # no registry here hands out this many ids


class Producer:
    """Encodes records as a Confluent producer does: AvroSerializer, the schema registered by subject."""

    def __init__(self, registry_url: str, topic: str) -> None:
        self.serialize = AvroSerializer(SchemaRegistryClient({"url": registry_url}), ORDER)
        self.context = SerializationContext(topic, MessageField.VALUE)

    def avro(self, n: int, at_ms: int, amount: float | None) -> bytes:
        value = {"id": f"r{n}", "ts": at_ms, "amount": amount, "country": "DE"}
        encoded = self.serialize(value, self.context)
        assert encoded is not None
        return encoded


def test_avro_records_are_held_replayed_repaired_under_their_schema_and_bad_ones_quarantined(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, schema_registry_url: str
) -> None:
    topic = f"{topic_prefix}.orders"
    make_topic(kafka_bootstrap, topic, partitions=1)
    spec = spec_for(
        kafka_bootstrap,
        topic,
        unapproved_mode="hold",
        format="avro",
        schema_registry_url=schema_registry_url,
    )
    box = PolicyBox()
    # As the worker opens it (supervisor.py): the registry's host allowed as LOCKFLOW_ALLOW_HOSTS would.
    records = record_format(
        spec.format,
        schema_registry_url=spec.schema_registry_url,
        policy=NetPolicy.from_list([urlsplit(schema_registry_url).hostname or ""]),
    )
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
    producer = Producer(schema_registry_url, topic)
    first_record = producer.avro(1, BASE_MS, 10.0)
    schema_id = struct.unpack(">bI", first_record[:5])[1]  # the id the registry gave the writer schema
    unknown = struct.pack(">bI", 0, UNKNOWN_ID) + first_record[5:]
    source = Source(kafka_bootstrap, topic)
    processor.start()
    try:
        source.send([first_record, producer.avro(2, BASE_MS + 100, 20.0)])  # window 0
        source.send([producer.avro(3, BASE_MS + 1100, None)])  # window 1: the amount missing
        source.send([b'{"id": "r9", "ts": 1}'], timestamp=BASE_MS + 1200)  # JSON on an Avro topic
        source.send([unknown], timestamp=BASE_MS + 1300)  # a schema id the registry never gave
        source.send([producer.avro(4, BASE_MS + 3500, 5.0)])  # closes windows 0 and 1: held
        first, second = windows(kafka_bootstrap, f"{topic_prefix}.events", spec.stream_id, count=2)
        box.offer(policy_for(spec.stream_id, 1, [("null_value", "repair_last_median")]))
        out = read_all(kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=5, quiet_s=10)
    finally:
        processor.stop()
        processor.join(30)
    assert processor.error is None, processor.error
    assert (first.records, first.held, first.findings) == (2, 2, {})
    assert (second.records, second.findings) == (3, {"null_value": 1, "malformed": 2})
    assert first.medians["amount"] == 15.0
    assert len(out) == 5 and all(o.headers["lockflow-replayed"] == "true" for o in out)
    quarantined = {o.value: o for o in out if o.topic.endswith(".quarantine")}
    assert set(quarantined) == {b'{"id": "r9", "ts": 1}', unknown}
    assert {o.headers["lockflow-reason"] for o in quarantined.values()} == {"malformed"}
    assert str(UNKNOWN_ID) in quarantined[unknown].headers["lockflow-findings"]
    clean = {records.decode(o.value)["id"]: o for o in out if o.topic.endswith(".clean")}
    assert set(clean) == {"r1", "r2", "r3"}
    assert clean["r1"].value == first_record  # passed as it came
    repaired = clean["r3"].value
    assert repaired[:5] == struct.pack(">bI", 0, schema_id)  # written back under its writer schema
    assert records.decode(repaired)["amount"] == 15.0  # window 0's median
    assert clean["r3"].headers["lockflow-flags"] == "repaired:null_value:amount"
