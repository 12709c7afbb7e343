"""The stream worker's settings (LOCKFLOW_STREAMS_*), on top of every service's."""

from pydantic import Field, SecretStr

from lockflow.common.settings import CommonSettings


class StreamsSettings(CommonSettings):
    """How the stream worker commits, reads and hands a stream over."""

    # The sources' Fernet key (as the gateway's and ingest's): a stream's security settings arrive sealed.
    sources_key: SecretStr | None = None
    # Hosts (names or CIDR networks) a stream's schema registry may be on though internal (as the sources').
    allow_hosts: list[str] = Field(default_factory=list)

    streams_commit_interval_ms: int = Field(
        default=200,
        ge=10,
        le=60_000,
        description="How often a stream's transaction commits (latency vs throughput)",
    )
    streams_batch: int = Field(default=5000, ge=1, le=100_000, description="Records read at once")
    streams_lease_session_timeout_ms: int = Field(
        default=6000,
        ge=6000,
        le=300_000,
        description="How long a killed owner keeps a stream before another takes it",
    )
    streams_output_partitions: int = Field(
        default=3, ge=1, le=1000, description="Partitions of the topics it creates"
    )
    streams_gc_young_threshold: int = Field(
        default=50_000,
        ge=700,
        le=10_000_000,
        description=(
            "Allocations between two young garbage collections in the worker process (Python's default is"
            " 700): an open window holds ~10 objects per record, none of them in a cycle, and scanning"
            " them 700 allocations at a time cost more than the checks"
        ),
    )
    streams_idle_close_seconds: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description=(
            "Wall time without any record after which a stream's open windows close "
            "(default: the stream's window + grace, the longest a live window waits in real time)"
        ),
    )
