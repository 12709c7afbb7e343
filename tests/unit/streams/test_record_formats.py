"""A stream's record formats: JSON, and Avro in the Confluent wire format (schemas from a registry)."""

import base64
import io
import json
import struct
import typing
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastavro
import httpx
import pytest

from lockflow.common.streams import StreamSpec
from lockflow.sources.configs import StreamConfig
from lockflow.sources.netguard import NetPolicy
from lockflow.sources.record_formats import (
    RECORD_FORMAT_FACTS,
    RECORD_FORMATS,
    ConfluentAvro,
    JsonRecords,
    RecordUndecodable,
    RegistryUnavailable,
    SchemaRegistry,
    record_format,
)
from lockflow.streams.checks import Contract, check_record

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "token", "type": "bytes"},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {
            "name": "where",
            "type": {"type": "record", "name": "Where", "fields": [{"name": "city", "type": "string"}]},
        },
    ],
}
PARSED = fastavro.parse_schema(ORDER)
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")


class FakeSchemas:
    """Schemas by id, as a registry would hold them."""

    def __init__(self, schemas: dict[int, Any]) -> None:
        self.schemas = schemas

    def schema(self, schema_id: int) -> Any:
        if schema_id not in self.schemas:
            raise RecordUndecodable(f"schema id {schema_id} is not in the registry")
        return self.schemas[schema_id]


def wire(value: dict[str, Any], schema_id: int = 7, schema: Any = PARSED) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(out, schema, value)
    return out.getvalue()


def order(amount: float | None = 12.5) -> dict[str, Any]:
    return {
        "order_id": "o1",
        "ts": datetime(2026, 12, 3, 6, 0, 1, tzinfo=UTC),
        "amount": amount,
        "price": Decimal("19.99"),
        "day": date(2026, 12, 3),
        "token": b"\x00\xff",
        "ref": REF,
        "tags": ["a", "b"],
        "where": {"city": "Lyon"},
    }


def test_an_avro_record_decodes_to_json_shaped_values() -> None:
    avro = ConfluentAvro(FakeSchemas({7: PARSED}))
    assert avro.decode(wire(order())) == {
        "order_id": "o1",
        "ts": "2026-12-03T06:00:01+00:00",
        "amount": 12.5,
        "price": 19.99,
        "day": "2026-12-03",
        "token": "AP8=",
        "ref": str(REF),
        "tags": ["a", "b"],
        "where": {"city": "Lyon"},
    }


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\x00\x00", "too short for the Confluent Avro header"),
        (b'{"order_id": "o1"}', "the first byte is 123, not 0"),
        (wire(order(), schema_id=99), "schema id 99 is not in the registry"),
        (wire(order())[:-3], "not a record of schema id 7"),
        (wire(order()) + b"\x02\x04", "2 bytes left over"),
    ],
)
def test_a_record_avro_cannot_read_is_undecodable_with_the_reason(raw: bytes, says: str) -> None:
    avro = ConfluentAvro(FakeSchemas({7: PARSED}))
    with pytest.raises(RecordUndecodable, match=says):
        avro.decode(raw)


def test_a_repaired_avro_record_is_written_back_under_its_writer_schema() -> None:
    avro = ConfluentAvro(FakeSchemas({7: PARSED}))
    raw = wire(order(amount=None))
    value = avro.decode(raw)
    repaired = avro.encode_like(raw, {**value, "amount": 3.25})
    assert repaired[:5] == raw[:5]  # the same schema id
    assert avro.decode(repaired) == {**value, "amount": 3.25}


def test_a_repair_the_schema_cannot_hold_is_refused() -> None:
    avro = ConfluentAvro(FakeSchemas({7: PARSED}))
    raw = wire(order())
    with pytest.raises(RecordUndecodable, match="does not fit schema id 7"):
        avro.encode_like(raw, {**avro.decode(raw), "amount": "twelve"})


def test_json_records_decode_and_encode() -> None:
    records = JsonRecords()
    assert records.decode(b'{"a": 1}') == {"a": 1}
    assert records.encode_like(b'{"a": 1}', {"a": 2}) == b'{"a":2}'
    with pytest.raises(RecordUndecodable, match="not JSON"):
        records.decode(b"{nope")


def test_check_record_reads_avro_through_the_format() -> None:
    contract = Contract(
        {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
            "required": ["order_id"],
        }
    )
    avro = ConfluentAvro(FakeSchemas({7: PARSED}))

    def check(raw: bytes):  # type: ignore[no-untyped-def]
        return check_record(
            raw,
            contract=contract,
            event_time_field="ts",
            key_field="order_id",
            message_key=None,
            fallback_ms=5,
            decode=avro.decode,
        )

    good = check(wire(order(amount=-1.0)))
    assert good.event_ms == int(datetime(2026, 12, 3, 6, 0, 1, tzinfo=UTC).timestamp() * 1000)
    assert good.key == "o1"
    assert [(f.kind, f.field) for f in good.findings] == [("out_of_range", "amount")]
    bad = check(b'{"order_id": "o1"}')
    assert bad.value is None and bad.event_ms == 5
    assert [f.kind for f in bad.findings] == ["malformed"]
    assert "first byte is 123" in bad.findings[0].detail


def _registry(handler: Any, auth: tuple[str, str] | None = None) -> SchemaRegistry:
    policy = NetPolicy.from_list(["203.0.113.0/24"], resolver=lambda _host, _port: ["203.0.113.9"])
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return SchemaRegistry(
        "http://registry.example:8081/apis/ccompat/v7/", policy=policy, auth=auth, client=client
    )


def test_basic_auth_goes_to_the_registry_only_and_a_refusal_names_the_settings() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["host"], request.headers.get("authorization")))
        if request.url.path.endswith("/ids/7"):  # a registry behind a CDN: the schema is served elsewhere
            return httpx.Response(302, headers={"location": "http://cdn.example/schema-7.json"})
        if request.url.path == "/schema-7.json":
            return httpx.Response(200, json={"schema": json.dumps(ORDER)})
        return httpx.Response(401, json={"message": "Unauthorized"})

    registry = _registry(handler, auth=("key-1", "r3gistry"))
    assert registry.schema(7)["name"] == "shop.Order"
    basic = "Basic " + base64.b64encode(b"key-1:r3gistry").decode()
    assert seen == [("registry.example:8081", basic), ("cdn.example", None)]
    with pytest.raises(RegistryUnavailable, match=r"refused the credentials given \(HTTP 401\); check sch"):
        registry.schema(8)
    with pytest.raises(RegistryUnavailable, match="refused a request without credentials"):
        _registry(handler).schema(8)


@pytest.mark.parametrize("extra", [{"schema_registry_username": "key-1"}, {"schema_registry_password": "r3"}])
def test_the_registry_credentials_come_in_pairs(extra: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="needs schema_registry_username and schema_registry_password"):
        StreamConfig(
            bootstrap_servers="k:9092",
            topic="t",
            event_time_field="ts",
            format="avro",
            schema_registry_url="https://registry.example",
            **extra,  # type: ignore[arg-type]
        )


def test_registry_credentials_without_a_registry_are_refused_and_a_pair_is_the_auth() -> None:
    base = {"bootstrap_servers": "k:9092", "topic": "t", "event_time_field": "ts"}
    pair = {"schema_registry_username": "key-1", "schema_registry_password": "r3gistry"}
    with pytest.raises(ValueError, match="schema_registry_username needs schema_registry_url"):
        StreamConfig.model_validate({**base, **pair})
    config = StreamConfig.model_validate(
        {**base, **pair, "format": "avro", "schema_registry_url": "https://registry.example"}
    )
    assert config.registry_auth() == ("key-1", "r3gistry")
    assert "r3gistry" not in repr(config)


def test_the_registry_adapter_asks_by_id_once_and_says_what_went_wrong() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/ids/7"):
            return httpx.Response(200, json={"schema": json.dumps(ORDER)})
        if request.url.path.endswith("/ids/8"):
            return httpx.Response(200, json={"schema": "{}", "schemaType": "PROTOBUF"})
        if request.url.path.endswith("/ids/9"):
            return httpx.Response(503, text="down")
        return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})

    registry = _registry(handler)
    avro = ConfluentAvro(registry)
    assert avro.decode(wire(order()))["order_id"] == "o1"
    assert avro.decode(wire(order()))["order_id"] == "o1"
    assert asked == ["/apis/ccompat/v7/schemas/ids/7"]
    with pytest.raises(RecordUndecodable, match="PROTOBUF schema, not Avro"):
        registry.schema(8)
    with pytest.raises(RegistryUnavailable, match="answered 503"):
        registry.schema(9)
    with pytest.raises(RecordUndecodable, match="schema id 10 is not in the registry"):
        registry.schema(10)


def test_a_registry_that_does_not_answer_is_unavailable_not_a_bad_record() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(RegistryUnavailable, match="did not answer"):
        _registry(handler).schema(1)


def test_every_record_format_has_its_facts_a_reader_and_a_place_in_the_source_and_the_spec() -> None:
    policy = NetPolicy.from_list([])
    for name in RECORD_FORMATS:
        facts = RECORD_FORMAT_FACTS[name]
        assert facts.label and facts.one and facts.many
        built = record_format(name, schema_registry_url="http://registry.example:8081", policy=policy)
        assert built.name == name
    assert set(typing.get_args(StreamConfig.model_fields["format"].annotation)) == set(RECORD_FORMATS)
    assert set(typing.get_args(StreamSpec.model_fields["format"].annotation)) == set(RECORD_FORMATS)


def test_an_avro_source_without_a_registry_is_refused() -> None:
    with pytest.raises(ValueError, match="needs schema_registry_url"):
        StreamConfig(bootstrap_servers="k:9092", topic="t", event_time_field="ts", format="avro")
    with pytest.raises(ValueError, match="needs the schema registry"):
        record_format("avro", schema_registry_url=None, policy=NetPolicy.from_list([]))
