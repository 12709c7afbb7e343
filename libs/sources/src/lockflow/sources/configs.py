"""Per-type source configurations: validated with field-level errors, secrets split out and masked."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lockflow.common.errors import InvalidInput
from lockflow.common.models import SourceFormat, SourceKind

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


CONFIG_TYPES: dict[str, type[Config]] = {
    "file": FileConfig,
    "api": ApiConfig,
    "database": DatabaseConfig,
    "s3": S3Config,
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
