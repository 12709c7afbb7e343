"""Fault drills: a distributed deployment on a private Kafka broker, PostgreSQL cluster and Redis.

The drills stop, kill and restart those services, so they are the drills' own (tests/faults.py),
never the shared ones of scripts/services.sh. One deployment serves every drill in a module (each
drill drives its own run), because starting eight processes is the slowest part.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faults import Pilot, PrivateKafka, PrivatePostgres, PrivateRedis, cluster_env
from sqlalchemy import create_engine, text

from lockflow.auth.testing import admin_headers, create_users
from lockflow.cli import SAMPLE
from lockflow.devcluster import DevCluster

# Short enough that a drill does not wait long for a killed member's partitions or a silent attempt.
RECOVERY_SETTINGS = {
    "LOCKFLOW_KAFKA_SESSION_TIMEOUT_SECONDS": "6",
    "LOCKFLOW_HEARTBEAT_SECONDS": "1",
    "LOCKFLOW_HEARTBEAT_TIMEOUT_SECONDS": "15",
}


@pytest.fixture(scope="module")
def private_kafka() -> Iterator[PrivateKafka]:
    """A Kafka broker only the drills use."""
    broker = PrivateKafka()
    try:
        broker.start()
        yield broker
    finally:
        broker.remove()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster only the drills use, with an empty `lockflow` database."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        engine = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("CREATE DATABASE lockflow"))
        engine.dispose()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis only the drills use."""
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def drill_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment's home, artifacts, data and logs (kept like every tmp_path: the logs say why)."""
    return tmp_path_factory.mktemp("drills")


@pytest.fixture(scope="module")
def drill_cluster(
    drill_root: Path,
    private_kafka: PrivateKafka,
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
) -> Iterator[DevCluster]:
    """Gateway + orchestrator + six stage workers, each a process, on the private services."""
    env = cluster_env(
        drill_root,
        kafka_bootstrap=private_kafka.bootstrap,
        database_url=private_postgres.url("lockflow"),
        redis_url=private_redis.url,
        topic_prefix="drill",
        **RECOVERY_SETTINGS,
    )
    running = DevCluster(env=env, logs=drill_root / "logs")
    try:
        running.start(timeout=180)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def pilot(drill_cluster: DevCluster) -> Pilot:
    """The analyst, approver and admin of the deployment."""
    auth = httpx.Client(base_url=drill_cluster.auth_url, timeout=30)  # the auth service's process
    admin = admin_headers(auth, drill_cluster.home("auth"))
    people = create_users(auth, admin, {"ana": ["analyst"], "apo": ["approver"]})
    return Pilot(
        drill_cluster.url,
        analyst=people["ana"],
        approver=people["apo"],
        admin=admin,
        auth_url=drill_cluster.auth_url,
    )


@pytest.fixture(scope="module")
def sample(drill_root: Path) -> Path:
    """The bundled sample dataset (4,025 sales rows), where the deployment may read it."""
    target = drill_root / "data" / "sample_sales.csv"
    shutil.copy(SAMPLE, target)
    return target
