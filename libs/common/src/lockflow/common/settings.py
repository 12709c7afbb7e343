"""Settings shared by every service; each service subclasses them with its own fields."""

from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lockflow.common.clock import Clock, clock_as_of

DEFAULT_DEV_SECRET = "lockflow-development-secret"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def default_home() -> Path:
    """Where embedded mode keeps its database, artifacts and reports."""
    return Path.home() / ".lockflow"


class CommonSettings(BaseSettings):
    """Adapters and environment every process needs; read from LOCKFLOW_* variables."""

    model_config = SettingsConfigDict(env_prefix="LOCKFLOW_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    mode: Literal["embedded", "distributed"] = "embedded"
    home: Path = default_home()
    database_url: str | None = None
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_session_timeout_seconds: float = Field(
        default=30,
        ge=6,
        le=300,
        description="How long the group waits for a silent consumer (a killed worker) before its "
        "partitions go to another member; the broker's default floor is 6 s",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=10,
        le=500,
        description="How long the broker holds a consumer's fetch with nothing new. A record of a partition "
        "left out of the fetch in flight (its previous records were still being handled) waits for that "
        "fetch to return, so this bounds the wait; aiokafka's default is 500 ms",
    )
    topic_prefix: str = "lockflow"
    redis_url: str | None = None
    artifact_dir: Path | None = None
    artifact_url: str | None = Field(
        default=None,
        description="Where artifacts go: s3://bucket/prefix for an S3-compatible store (distributed mode, no "
        "shared folder); unset: the local folder (LOCKFLOW_ARTIFACT_DIR, else home/artifacts)",
    )
    artifact_s3_endpoint: str | None = Field(
        default=None, description="The S3-compatible server's URL (e.g. http://127.0.0.1:8333); unset: AWS"
    )
    artifact_s3_region: str = "us-east-1"
    artifact_s3_access_key_id: SecretStr | None = None
    artifact_s3_secret_access_key: SecretStr | None = None
    artifact_s3_part_mb: int = Field(
        default=16, ge=5, le=5_000, description="Part size of a multipart upload; smaller files go in one PUT"
    )
    artifact_spool_dir: Path | None = Field(
        default=None,
        description="This process's own folder for an artifact being written before it is uploaded; "
        "unset: the system temp dir",
    )
    otlp_endpoint: str | None = None
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port a worker serves /metrics, /healthz and /readyz on (the gateway serves them on its "
        "own port); unset: not served",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address the worker's metrics port listens on")
    log_level: str = "INFO"
    shutdown_seconds: float = Field(
        default=25.0,
        gt=0,
        le=600,
        description="How long a stop (SIGTERM) may take; past it every thread's stack is printed and the "
        "process exits 1 (within Kubernetes' 60 s grace)",
    )
    secret_key: SecretStr = SecretStr(DEFAULT_DEV_SECRET)
    as_of: datetime | None = Field(
        default=None,
        description="Judge the data as of this ISO date or datetime (UTC if no offset); unset: now",
    )
    # Budgets: what one stage attempt may take, so hostile or huge input never runs unbounded.
    max_columns: int = Field(
        default=1_000, ge=1, description="A dataset with more columns is refused at ingest (gate 1)"
    )
    max_pairs: int = Field(
        default=20_000,
        ge=1,
        description="Column pairs analytics compares at most per pairwise part; past it, the columns "
        "with the most information are used and the result says so",
    )
    max_cells: int = Field(
        default=50_000_000,
        ge=1_000,
        description="Rows x columns a heavy analytics step (clustering, anomalies, drivers) uses at most",
    )
    stage_timeout_seconds: float = Field(
        default=1_800, gt=0, description="Wall time one stage attempt may run (or wait for a worker)"
    )
    memory_budget_mb: int = Field(
        default=8_192,
        ge=0,
        description="Resident memory of a worker process above which its running attempt is stopped; 0: off",
    )
    heartbeat_seconds: float = Field(
        default=5, gt=0, description="How often a worker marks its attempt alive"
    )
    heartbeat_timeout_seconds: float = Field(
        default=60, gt=0, description="An attempt silent for longer is taken as its worker having died"
    )
    outbox_wake: bool = Field(
        default=True,
        description="Publish outbox rows as soon as their transaction commits; off: at the sweep only",
    )
    outbox_sweep_seconds: float = Field(
        default=1.0, gt=0, description="How often the outbox relay sweeps for rows left unsent (a crash)"
    )
    max_dispatches: int = Field(
        default=3, ge=1, description="Times an attempt whose worker died is sent before the run fails"
    )
    request_timeout_seconds: float = Field(
        default=30,
        gt=0,
        description="How long a question to another service (a fix preview, a source's health check, a "
        "file's pre-check) is waited for before the person is told it did not answer",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("artifact_url")
    @classmethod
    def _artifact_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parsed = urlparse(value)
        if parsed.scheme == "s3" and parsed.netloc and not parsed.query:
            return value.rstrip("/")
        if parsed.scheme == "file" and parsed.path.startswith("/") and not parsed.netloc:
            return value
        raise ValueError("must be s3://bucket[/prefix] (an S3-compatible store) or file:///absolute/folder")

    @field_validator("artifact_s3_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and urlparse(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for broker in value.split(","):
            host, colon, port = broker.strip().rpartition(":")
            if not (host and colon and port.isdigit() and 0 < int(port) < 65536):
                raise ValueError("must be host:port[,host:port...] with ports 1-65535")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        # The value is never repeated in these messages: a URL may carry a password.
        if not value:
            return value
        try:
            make_url(value).get_dialect().import_dbapi()
        except ArgumentError:
            raise ValueError(
                "not a database URL lockflow can use (e.g. postgresql+psycopg2://user@host:5432/lockflow)"
            ) from None
        except ImportError as exc:
            raise ValueError(
                f"its driver is not installed ({exc.name}); PostgreSQL is postgresql+psycopg2://..."
            ) from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> "CommonSettings":
        if self.environment == "production" and self.secret_key.get_secret_value() == DEFAULT_DEV_SECRET:
            raise ValueError("LOCKFLOW_SECRET_KEY must be set to a non-default value in production")
        return self

    def clock(self) -> Clock:
        """The clock data is judged by: frozen at `as_of` when set, else the system clock."""
        return clock_as_of(self.as_of)

    def resolved_database_url(self) -> str:
        """The configured database, or a SQLite file under home in embedded mode."""
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.home / 'lockflow.db'}"

    def resolved_artifact_dir(self) -> Path:
        """The artifact folder, defaulting to home/artifacts."""
        return self.artifact_dir or self.home / "artifacts"
