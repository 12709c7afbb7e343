"""How a stream's record values are written: JSON objects, or Avro in the Confluent wire format.

Every consumer of a stream's records (gate 1's sample, the stream worker, the replay of held records)
decodes through `record_format`, so a format added here is read the same way everywhere. A decoded
record is a JSON-shaped dict (Avro's timestamps become ISO-8601 strings, decimals floats, bytes
base64), because the contract the person approves is a JSON Schema. A repaired record is written back
in the format it came in (`encode_like`), so `<source>.clean` holds one format.

The Confluent wire format: a magic byte 0, the writer schema's id at the schema registry (4 bytes, big
endian), then the Avro binary body. Schemas are fetched by id once (`GET {registry}/schemas/ids/{id}`)
and kept, a bounded number of them.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal, Protocol

import fastavro
import httpx
import orjson

from lockflow.common.errors import StageError
from lockflow.sources.netguard import NetPolicy, Unreachable, safe_request

RecordFormatName = Literal["json", "avro"]


@dataclass(frozen=True)
class RecordFormatFacts:
    """How people are told about a format: its name, one record of it, several (health check, gate 1)."""

    label: str
    one: str
    many: str


RECORD_FORMAT_FACTS: dict[RecordFormatName, RecordFormatFacts] = {
    "json": RecordFormatFacts(label="JSON", one="a JSON object", many="JSON objects"),
    "avro": RecordFormatFacts(
        label="Avro", one="an Avro record (Confluent wire format)", many="Avro records"
    ),
}
RECORD_FORMATS: tuple[RecordFormatName, ...] = tuple(RECORD_FORMAT_FACTS)
MAGIC = 0
HEADER = struct.Struct(">bI")  # the magic byte, the schema id
MAX_SCHEMAS = 1000
MAX_SCHEMA_BYTES = 1024 * 1024
REGISTRY_TIMEOUT_S = 10.0


class RecordUndecodable(ValueError):
    """One record's value cannot be read in the stream's format (the message says why)."""


class RegistryUnavailable(StageError):
    """The schema registry did not answer: no record is judged until it does."""


class RecordFormat(Protocol):
    """A stream's record format: bytes to a JSON-shaped dict and, for a repaired record, back."""

    name: RecordFormatName

    def decode(self, raw: bytes) -> Any:
        """The record's value (RecordUndecodable if it cannot be read)."""
        ...

    def encode_like(self, raw: bytes, value: dict[str, Any]) -> bytes:
        """`value` written as `raw` was (the same format and, for Avro, the same writer schema)."""
        ...


class JsonRecords:
    """Each record's value is one JSON document (a record is an object; `check_record` says so)."""

    name: RecordFormatName = "json"

    def decode(self, raw: bytes) -> Any:
        """The parsed JSON."""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RecordUndecodable(f"not JSON: {exc}") from exc

    def encode_like(self, raw: bytes, value: dict[str, Any]) -> bytes:
        """The value as JSON."""
        return orjson.dumps(value)


class SchemaSource(Protocol):
    """Where writer schemas are looked up by their id."""

    def schema(self, schema_id: int) -> Any:
        """The parsed Avro schema with this id (RecordUndecodable if there is none)."""
        ...


class SchemaRegistry:
    """A Confluent-compatible schema registry (Confluent, Apicurio's ccompat API, Karapace, Redpanda)."""

    def __init__(
        self,
        url: str,
        *,
        policy: NetPolicy,
        auth: tuple[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.policy = policy
        self.client = client or httpx.Client(timeout=REGISTRY_TIMEOUT_S, trust_env=False)
        self._credentials = {"Authorization": _basic(*auth)} if auth else {}
        self._schemas: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def schema(self, schema_id: int) -> Any:
        """The parsed schema, from the cache or the registry."""
        with self._lock:
            if schema_id in self._schemas:
                self._schemas.move_to_end(schema_id)
                return self._schemas[schema_id]
        parsed = self._fetch(schema_id)
        with self._lock:
            self._schemas[schema_id] = parsed
            while len(self._schemas) > MAX_SCHEMAS:
                self._schemas.popitem(last=False)
        return parsed

    def _fetch(self, schema_id: int) -> Any:
        url = f"{self.url}/schemas/ids/{schema_id}"
        try:
            response = safe_request(
                self.client,
                self.policy,
                "GET",
                url,
                headers={"Accept": "application/vnd.schemaregistry.v1+json, application/json"},
                credentials=self._credentials,
                max_bytes=MAX_SCHEMA_BYTES,
            )
        except Unreachable as exc:
            raise RegistryUnavailable(f"the schema registry at {self.url} did not answer: {exc}") from exc
        if response.status_code in (401, 403):
            given = "the credentials given" if self._credentials else "a request without credentials"
            raise RegistryUnavailable(
                f"the schema registry at {self.url} refused {given} (HTTP {response.status_code}); "
                "check schema_registry_username and schema_registry_password"
            )
        if response.status_code == 404:
            raise RecordUndecodable(f"schema id {schema_id} is not in the registry at {self.url}")
        if response.status_code != 200:
            raise RegistryUnavailable(
                f"the schema registry at {self.url} answered {response.status_code} for schema id {schema_id}"
            )
        try:
            body = response.json()
            schema_type = body.get("schemaType", "AVRO")
            if schema_type != "AVRO":
                raise RecordUndecodable(f"schema id {schema_id} is a {schema_type} schema, not Avro")
            return fastavro.parse_schema(json.loads(body["schema"]))
        except (ValueError, KeyError, TypeError, AttributeError, fastavro.schema.SchemaParseException) as exc:
            raise RecordUndecodable(f"schema id {schema_id} is not a readable Avro schema: {exc}") from exc


class ConfluentAvro:
    """Avro records in the Confluent wire format, their writer schemas at a registry."""

    name: RecordFormatName = "avro"

    def __init__(self, schemas: SchemaSource) -> None:
        self.schemas = schemas

    def _native(self, raw: bytes) -> tuple[int, Any, Any]:
        """The schema id, the schema and the value as fastavro reads it (datetimes, decimals, bytes)."""
        if len(raw) < HEADER.size:
            raise RecordUndecodable(f"{len(raw)} bytes: too short for the Confluent Avro header (5 bytes)")
        magic, schema_id = HEADER.unpack_from(raw)
        if magic != MAGIC:
            raise RecordUndecodable(
                f"not Confluent Avro: the first byte is {magic & 0xFF}, not 0 (is the producer writing JSON?)"
            )
        schema = self.schemas.schema(schema_id)
        body = io.BytesIO(raw[HEADER.size :])
        try:
            value = fastavro.schemaless_reader(body, schema, None)
        except Exception as exc:  # untrusted bytes: whatever fastavro trips on, the record is unreadable
            raise RecordUndecodable(f"not a record of schema id {schema_id}: {exc}") from exc
            raise RecordUndecodable(f"not a record of schema id {schema_id}: {exc}") from exc
        if body.tell() != len(raw) - HEADER.size:
            left = len(raw) - HEADER.size - body.tell()
            raise RecordUndecodable(f"not a record of schema id {schema_id}: {left} bytes left over")
        return schema_id, schema, value

    def decode(self, raw: bytes) -> Any:
        """The record as JSON-shaped values."""
        return json_shaped(self._native(raw)[2])

    def encode_like(self, raw: bytes, value: dict[str, Any]) -> bytes:
        """The repaired fields written into the original record, under the original writer schema."""
        schema_id, schema, native = self._native(raw)
        shaped = json_shaped(native)
        if isinstance(native, dict):
            for name, new in value.items():
                if shaped.get(name) != new:
                    native[name] = new
        out = io.BytesIO()
        out.write(HEADER.pack(MAGIC, schema_id))
        try:
            fastavro.schemaless_writer(out, schema, native, strict_allow_default=True)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise RecordUndecodable(f"the repaired record does not fit schema id {schema_id}: {exc}") from exc
        return out.getvalue()


def json_shaped(value: Any) -> Any:
    """A value fastavro read, as JSON would carry it (the contract is a JSON Schema)."""
    if isinstance(value, dict):
        return {str(k): json_shaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shaped(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def record_format(
    name: RecordFormatName,
    *,
    schema_registry_url: str | None,
    policy: NetPolicy,
    registry_auth: tuple[str, str] | None = None,
) -> RecordFormat:
    """The format a stream's records are read in."""
    if name == "json":
        return JsonRecords()
    if name == "avro":
        if not schema_registry_url:
            raise ValueError("an Avro stream needs the schema registry's URL")
        return ConfluentAvro(SchemaRegistry(schema_registry_url, policy=policy, auth=registry_auth))
    raise ValueError(f"unknown record format {name!r}; choose one of: {', '.join(RECORD_FORMATS)}")
