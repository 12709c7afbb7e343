"""A stream source on the real Kafka: a librdkafka producer (confluent-kafka, not lockflow's aiokafka)
writes JSON records; the health check and gate 1's sample, schema and inferred contract read them."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from streamkit import make_topic

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.ids import new_id
from lockflow.common.models import SourceSpec
from lockflow.ingest.conn_kafka import KafkaConnector
from lockflow.ingest.connections import build_connector
from lockflow.ingest.ingest import read_into_artifact
from lockflow.sources.configs import StreamConfig, parse_config
from lockflow.sources.settings import SourceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"lockflow-test-stream-{new_id()[-12:]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    make_topic(kafka_bootstrap, name, partitions=3)
    yield name
    admin.delete_topics([name])[name].result(30)


def produce(bootstrap: str, topic: str, values: list[bytes], keys: list[str] | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=(keys[i] if keys else str(i)).encode())
    assert producer.flush(30) == 0


def order(i: int) -> dict[str, Any]:
    return {
        "order_id": f"o{i}",
        "ts": f"2026-12-02T04:{i % 60:02d}:{i % 60:02d}Z",
        "amount": 10 + i,
        "region": "eu",
    }


def config(bootstrap: str, topic: str, **extra: Any) -> StreamConfig:
    parsed = parse_config(
        "stream",
        {
            "bootstrap_servers": bootstrap,
            "topic": topic,
            "event_time_field": "ts",
            "key_field": "order_id",
            **extra,
        },
    )
    assert isinstance(parsed, StreamConfig)
    return parsed


def settings(bootstrap: str) -> SourceSettings:
    return SourceSettings(allow_hosts=[bootstrap.rpartition(":")[0]])


def test_health_sample_schema_and_contract_of_records_another_client_produced(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    values = [json.dumps(order(i)).encode() for i in range(90)] + [b"not json", b"[1, 2]"]
    produce(kafka_bootstrap, topic, values)
    connector = build_connector(config(kafka_bootstrap, topic, sample_records=500), settings(kafka_bootstrap))
    assert isinstance(connector, KafkaConnector)
    health = connector.health()
    assert health.ok and health.reachable and health.authorised and health.readable, health
    assert "90 of 92 sampled records are JSON objects" in health.message
    dataset, sample = read_into_artifact(
        connector,
        spec=SourceSpec(kind="stream", path=connector.label()),
        artifacts=LocalArtifactStore(tmp_path),
    )
    assert dataset.rows == 90  # every record the topic held when the sample began, none twice
    assert {c.name: c.dtype for c in dataset.columns}["amount"] == "integer"
    assert sample and all(r["order_id"].startswith("o") for r in sample)
    contract = connector.contract()
    assert contract is not None
    assert contract["properties"]["amount"] == {"type": "integer", "minimum": 0}
    assert contract["properties"]["ts"] == {"type": "string", "format": "date-time"}
    assert contract["properties"]["region"] == {"type": "string", "enum": ["eu"]}
    assert contract["required"] == ["order_id", "ts", "amount", "region"]
    assert contract["x-lockflow"]["malformed_in_sample"] == 2


def test_the_sample_is_the_newest_records_bounded(kafka_bootstrap: str, topic: str) -> None:
    produce(kafka_bootstrap, topic, [json.dumps(order(i)).encode() for i in range(300)])
    connector = KafkaConnector(
        config(kafka_bootstrap, topic, sample_records=30), policy=_policy(kafka_bootstrap)
    )
    sample = connector.sample()
    assert sample.read == 30 and sample.malformed == 0
    # The newest of each of the 3 partitions (10 each): the newest records, not the oldest.
    assert min(int(r["order_id"][1:]) for r in sample.records) > 100


def test_an_empty_topic_is_healthy_but_gives_gate_1_nothing_to_infer(
    kafka_bootstrap: str, topic: str
) -> None:
    connector = KafkaConnector(
        config(kafka_bootstrap, topic, sample_timeout_seconds=2), policy=_policy(kafka_bootstrap)
    )
    health = connector.health()
    assert health.ok and "the topic is empty" in health.message, health
    assert connector.contract() is None
    with pytest.raises(Exception, match="sent no JSON records within 2 s"):
        list(connector.chunks(options=SourceSpec(path="x").options, workdir=Path(".")))


def test_a_missing_topic_and_an_unreachable_broker_fail_their_step(kafka_bootstrap: str) -> None:
    missing = KafkaConnector(config(kafka_bootstrap, "no-such-topic-here"), policy=_policy(kafka_bootstrap))
    health = missing.health()
    assert not health.ok and health.reachable and health.authorised and not health.readable
    assert "there is no topic 'no-such-topic-here'" in health.message
    closed = KafkaConnector(config("127.0.0.1:1", "t"), policy=_policy("127.0.0.1:1"))
    health = closed.health()
    assert not health.ok and not health.reachable
    assert health.message == "could not connect to 127.0.0.1:1 (connection failed or timed out)"


def test_a_sasl_stream_against_a_plaintext_broker_is_not_authorised(kafka_bootstrap: str, topic: str) -> None:
    sasl = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "u",
        "sasl_password": "p",
    }
    connector = KafkaConnector(config(kafka_bootstrap, topic, security=sasl), policy=_policy(kafka_bootstrap))
    health = connector.health()
    assert not health.ok and health.reachable and not health.authorised, health
    assert "did not accept the connection (SASL_PLAINTEXT)" in health.message


def _policy(bootstrap: str):  # type: ignore[no-untyped-def]
    from lockflow.sources.netguard import NetPolicy

    return NetPolicy.from_list([bootstrap.rpartition(":")[0]])
