"""Per-type source configurations: validated with field-level errors, secrets split out and masked."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lockflow.common.errors import InvalidInput
from lockflow.common.models import SourceFormat, SourceKind
from lockflow.sources.record_formats import RecordFormatName

MASK = "********"


class ConfigInvalid(InvalidInput):
    """A source config failed validation; `errors` lists each field and what is wrong with it."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class Config(BaseModel):
    """Base of every config: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class FileConfig(Config):
    """A file under the allowed folders (CSV/TSV, JSON, JSON lines, Parquet, Excel, .gz, .zip)."""

    path: str = Field(min_length=1)
    format: SourceFormat | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str | None = Field(default=None, max_length=40)
    header: bool | None = None
    sheet: str | None = None
    entry: str | None = Field(default=None, description="The member of a .zip archive to read")
    uri: str | None = Field(
        default=None,
        description="An upload's artifact (set by the server for a path that names one of your uploads)",
    )


class ApiAuth(Config):
    """How to authenticate to an HTTP API."""

    type: Literal["none", "bearer", "api_key", "basic"] = "none"
    token: SecretStr | None = None
    header: str = Field(default="X-API-Key", max_length=100)
    query_param: str | None = Field(default=None, max_length=100)
    username: str | None = None
    password: SecretStr | None = None


class Pagination(Config):
    """How an API pages: by page number, offset, cursor, or the Link header."""

    style: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_param: str = "page"
    start_page: int = Field(default=1, ge=0)
    size_param: str | None = "per_page"
    page_size: int = Field(default=100, ge=1, le=10_000)
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str = Field(default="next_cursor", description="Dotted path of the next cursor in the body")


class ApiConfig(Config):
    """A JSON HTTP API returning records."""

    url: str = Field(min_length=1, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    auth: ApiAuth = Field(default_factory=ApiAuth)
    records_path: str | None = Field(default=None, description="Dotted path to the list of records")
    pagination: Pagination = Field(default_factory=Pagination)
    max_pages: int = Field(default=1000, ge=1, le=100_000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=4, ge=0, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    max_retry_after_seconds: float = Field(default=60.0, ge=0, le=3600)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class DatabaseConfig(Config):
    """A table or a read-only query in a database reached by a SQLAlchemy URL."""

    url: SecretStr = Field(description="SQLAlchemy URL; its password is stored encrypted")
    table: str | None = Field(default=None, max_length=300)
    db_schema: str | None = Field(default=None, max_length=200)
    query: str | None = Field(default=None, max_length=100_000)
    chunk_rows: int = Field(default=50_000, ge=100, le=1_000_000)
    timeout_seconds: float = Field(default=300.0, gt=0, le=86_400)

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except (ArgumentError, ValueError) as exc:
            raise ValueError("is not a SQLAlchemy URL like postgresql://user:password@host/db") from exc
        return value

    def model_post_init(self, _context: Any) -> None:
        """Exactly one of table and query."""
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table and query")


class S3Config(Config):
    """Objects in an S3 bucket (or an S3-compatible store) under a prefix, optionally matching a glob."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
    prefix: str = ""
    glob: str | None = Field(default=None, description="e.g. '*.csv', matched against the key")
    format: SourceFormat | None = None
    region: str | None = None
    endpoint_url: str | None = Field(default=None, description="For S3-compatible stores")
    addressing_style: Literal["auto", "virtual", "path"] = Field(
        default="auto", description="'path' for stores that do not serve bucket.endpoint host names"
    )
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    max_objects: int = Field(default=1000, ge=1, le=100_000)


KAFKA_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurity(Config):
    """How to reach a Kafka cluster: TLS (with the cluster's CA) and/or SASL with a sealed password."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = Field(default=None, max_length=300)
    sasl_password: SecretStr | None = None
    ssl_ca_pem: str | None = Field(
        default=None,
        max_length=100_000,
        description="The CA certificate(s) to trust, PEM (public, not secret)",
    )

    def model_post_init(self, _context: Any) -> None:
        """SASL needs a mechanism, a user name and a password; a CA only means something with TLS."""
        if self.security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"{self.security_protocol} needs {', '.join(missing)}")
        if self.ssl_ca_pem and not self.security_protocol.endswith("SSL"):
            raise ValueError("ssl_ca_pem needs security_protocol SSL or SASL_SSL")
        if self.ssl_ca_pem and "-----BEGIN CERTIFICATE-----" not in self.ssl_ca_pem:
            raise ValueError("ssl_ca_pem must be PEM text starting with -----BEGIN CERTIFICATE-----")


class StreamConfig(Config):
    """A Kafka topic any producer writes records to (JSON, or Confluent Avro): read in event-time windows."""

    bootstrap_servers: str = Field(
        min_length=3, max_length=2000, description="host:port[,host:port...] of the Kafka brokers"
    )
    topic: str = Field(pattern=KAFKA_TOPIC)
    consumer_group: str | None = Field(
        default=None, max_length=249, pattern=KAFKA_TOPIC, description="Default: lockflow.stream.<source id>"
    )
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    format: RecordFormatName = Field(
        default="json",
        description="json: each value is one JSON object; avro: Avro in the Confluent wire format",
    )
    schema_registry_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Avro only: the Confluent-compatible schema registry holding the writer schemas",
    )
    schema_registry_username: str | None = Field(
        default=None,
        max_length=300,
        description="The registry's basic-auth user (Confluent Cloud: an API key)",
    )
    schema_registry_password: SecretStr | None = Field(
        default=None, description="The registry's basic-auth password (stored encrypted)"
    )
    event_time_field: str = Field(
        min_length=1,
        max_length=300,
        description="The field holding the event time (ISO 8601 or epoch seconds)",
    )
    key_field: str | None = Field(
        default=None, max_length=300, description="The field duplicates are found by (default: the Kafka key)"
    )
    window_seconds: int = Field(default=60, ge=1, le=86_400)
    grace_seconds: int = Field(default=10, ge=0, le=86_400)
    unapproved_mode: Literal["hold", "pass"] = Field(
        default="hold",
        description="Before the first policy: hold records (replayed once approved) or pass them",
    )
    sample_records: int = Field(
        default=200, ge=1, le=10_000, description="Records gate 1 reads to infer the contract"
    )
    sample_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server.strip()!r} is not host:port")
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _avro_needs_registry(self) -> StreamConfig:
        if self.format == "avro" and not self.schema_registry_url:
            raise ValueError("an Avro stream needs schema_registry_url (where its writer schemas are)")
        if (self.schema_registry_username is None) != (self.schema_registry_password is None):
            raise ValueError(
                "the registry's basic auth needs schema_registry_username and schema_registry_password"
            )
        if self.schema_registry_username is not None and not self.schema_registry_url:
            raise ValueError("schema_registry_username needs schema_registry_url")
        return self

    def registry_auth(self) -> tuple[str, str] | None:
        """The registry's basic-auth user and password, when it has them."""
        if self.schema_registry_username is None or self.schema_registry_password is None:
            return None
        return self.schema_registry_username, self.schema_registry_password.get_secret_value()

    def servers(self) -> list[tuple[str, int]]:
        """The brokers as (host, port)."""
        pairs = [s.strip().rpartition(":") for s in self.bootstrap_servers.split(",")]
        return [(host.strip("[]"), int(port)) for host, _, port in pairs]


CONFIG_TYPES: dict[str, type[Config]] = {
    "file": FileConfig,
    "api": ApiConfig,
    "database": DatabaseConfig,
    "s3": S3Config,
    "stream": StreamConfig,
}


def parse_config(kind: str, raw: dict[str, Any]) -> Config:
    """The typed config, or ConfigInvalid listing every field that is wrong."""
    model = CONFIG_TYPES.get(kind)
    if model is None:
        raise ConfigInvalid(
            f"unknown source type {kind!r}; choose one of: {', '.join(CONFIG_TYPES)}",
            [{"field": "type", "message": f"unknown source type {kind!r}"}],
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "config", "message": _clean(e["msg"])}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ConfigInvalid(f"invalid {kind} source config: {summary}", errors) from exc


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def split_secrets(config: Config) -> tuple[dict[str, Any], dict[str, str]]:
    """(public JSON with secrets removed, {dotted field: secret}); a URL's password counts as a secret."""
    public = config.model_dump(mode="python")
    secrets: dict[str, str] = {}
    _walk(public, "", secrets)
    if isinstance(config, DatabaseConfig):
        url = make_url(config.url.get_secret_value())
        public["url"] = url.render_as_string(hide_password=True) if url.password else str(url)
        secrets["url"] = config.url.get_secret_value()
    return public, secrets


def _walk(node: dict[str, Any], prefix: str, secrets: dict[str, str]) -> None:
    for key, value in list(node.items()):
        path = f"{prefix}{key}"
        if isinstance(value, SecretStr):
            secrets[path] = value.get_secret_value()
            node[key] = None
        elif isinstance(value, dict):
            _walk(value, f"{path}.", secrets)


def join_secrets(kind: str, public: dict[str, Any], secrets: dict[str, str]) -> Config:
    """The full config from its stored public part and its decrypted secrets."""
    merged = _deep_copy(public)
    for path, value in secrets.items():
        node = merged
        *parents, leaf = path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return parse_config(kind, merged)


def masked(kind: str, public: dict[str, Any], secret_fields: list[str]) -> dict[str, Any]:
    """The public config with each secret shown as ******** (for the API, logs and gate 1)."""
    shown = _deep_copy(public)
    if kind == "file":
        shown.pop("uri", None)  # an upload's artifact address: the server's, never shown or sent back
    for path in secret_fields:
        if path == "url" and kind == "database":
            continue  # the public URL already has its password masked
        node = shown
        *parents, leaf = path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = MASK
    return shown


def merge_update(
    kind: str, public: dict[str, Any], secrets: dict[str, str], changes: dict[str, Any]
) -> Config:
    """Apply a partial update; a secret left out or sent back as ******** keeps its stored value."""
    current = join_secrets(kind, public, secrets).model_dump(mode="python")
    current = _unwrap(current)
    _merge(current, changes)
    return parse_config(kind, current)


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value == MASK:
            continue
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _unwrap(node: Any) -> Any:
    if isinstance(node, SecretStr):
        return node.get_secret_value()
    if isinstance(node, dict):
        return {k: _unwrap(v) for k, v in node.items()}
    return node


def _deep_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _deep_copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_deep_copy(v) for v in node]
    return node


def kind_of(source_type: str) -> SourceKind:
    """The SourceSpec kind of a registered source type."""
    if source_type not in CONFIG_TYPES:
        raise InvalidInput(f"unknown source type {source_type!r}")
    return source_type  # type: ignore[return-value]
