"""What the stream worker keeps between transactions, and how it reads the registry."""

import json
from datetime import UTC, datetime

from pydantic import SecretStr

from lockflow.common.streams import StreamPolicy, StreamPolicyRule, StreamSpec
from lockflow.sources.kafka import sealed_security
from lockflow.sources.secrets import SecretBox
from lockflow.streams.processor import PolicyBox, State, kafka_config, output_topics
from lockflow.streams.registry import RegistryReader

SPEC = StreamSpec(
    stream_id="s1",
    source_id="src",
    bootstrap_servers="k:9092",
    topic="orders",
    consumer_group="g",
    security={"security_protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl_password": ""},
    event_time_field="ts",
    window_seconds=2,
    grace_seconds=1,
    contract={"type": "object"},
)


def _policy(version: int) -> StreamPolicy:
    return StreamPolicy(
        stream_id="s1",
        version=version,
        rules=[StreamPolicyRule(kind="malformed", action="quarantine")],
        approved_by="a",
        approved_at=datetime.now(UTC),
    )


def test_the_snapshot_survives_its_bytes() -> None:
    state = State(
        processed={0: 10, 2: 7},
        hold_processed={1: 3},
        watermark_ms=5000,
        partition_max={0: 5000, 2: 6100},
        closed_through_ms=4000,
        late={4000: 2},
        last_medians={"amount": 1.5},
        windows_closed=4,
    )
    assert State.from_json(state.to_json()) == state


def test_a_policy_box_keeps_the_newest_version() -> None:
    box = PolicyBox()
    assert box.get() is None
    box.offer(_policy(2))
    box.offer(_policy(1))
    assert box.get() is not None and box.get().version == 2  # type: ignore[union-attr]


def test_the_sealed_security_settings_open_into_librdkafkas_and_the_password_never_travels() -> None:
    box = SecretBox(sources_key=None, secret_key=SecretStr("a unit test's key"))
    public = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "reader"}
    sealed = sealed_security(public, box.seal({"security.sasl_password": "s3cret"}))
    assert "s3cret" not in json.dumps(sealed)
    spec = SPEC.model_copy(update={"security": sealed})
    assert kafka_config(spec, box) == {
        "bootstrap.servers": "k:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "reader",
        "sasl.password": "s3cret",
    }
    assert kafka_config(SPEC.model_copy(update={"security": {}}), box) == {"bootstrap.servers": "k:9092"}
    assert output_topics("orders")["quarantine"] == "orders.quarantine"


def test_the_registry_folds_specs_stops_and_policies_per_stream() -> None:
    reader = RegistryReader("k:9092", "p", lambda _id, _entry: None)
    assert reader.apply("spec/s1", SPEC.model_dump_json().encode()) == "s1"
    assert reader.apply("policy/s1/1", _policy(1).model_dump_json().encode()) == "s1"
    assert reader.apply("stop/s1", b'{"reason": "done"}') == "s1"
    entry = reader.entries["s1"]
    assert entry.spec == SPEC and set(entry.policies) == {1} and entry.stopped
    reader.apply("stop/s1", None)  # started again: the stop deleted
    assert not reader.entries["s1"].stopped
    assert reader.apply("other/s1", b"x") is None
