"""Readiness: can this process reach what it needs (Kafka, the database, Redis, the object store)?

Each check answers "ok" or a one-line reason; /readyz answers 503 naming the ones that failed. A check
that is not configured in this mode (Kafka or Redis in embedded mode) answers "ok: not used".
"""

import socket
from collections.abc import Callable

from sqlalchemy import text

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.db import Database
from lockflow.common.settings import CommonSettings

TIMEOUT_SECONDS = 2.0
NOT_USED = "ok"
# A digest no artifact has: looking it up proves the store answers without reading anything.
PROBE_DIGEST = "0" * 64


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def check_database(db: Database) -> str:
    """SELECT 1 on the process's database."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return _reason(exc)
    return "ok"


def check_kafka(bootstrap: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """A TCP connection to at least one of the bootstrap brokers."""
    failures = []
    for broker in bootstrap.split(","):
        host, _, port = broker.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return "ok"
        except OSError as exc:
            failures.append(f"{broker.strip()}: {_reason(exc)}")
    return "; ".join(failures)


def check_redis(url: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """PING on Redis."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except Exception as exc:
        return _reason(exc)
    finally:
        client.close()
    return "ok"


def check_artifacts(store: ArtifactStore) -> str:
    """Look up an artifact that does not exist: the store must answer (False), not fail."""
    try:
        store.exists(store.uri_for(PROBE_DIGEST, suffix=".probe"))
    except Exception as exc:
        return _reason(exc)
    return "ok"


def readiness(
    settings: CommonSettings, db: Database, artifacts: ArtifactStore
) -> Callable[[], dict[str, str]]:
    """The checks of a process on these adapters, as one callable for /readyz."""

    def run() -> dict[str, str]:
        distributed = settings.mode == "distributed"
        return {
            "kafka": check_kafka(settings.kafka_bootstrap) if distributed else NOT_USED,
            "database": check_database(db),
            "redis": check_redis(settings.redis_url) if settings.redis_url else NOT_USED,
            "object_store": check_artifacts(artifacts),
        }

    return run
