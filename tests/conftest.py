"""Shared fixtures: endpoints of the real services, read from the environment.

`make test` starts Kafka, PostgreSQL, Redis, MariaDB, SeaweedFS (an S3-compatible store), Jaeger and a
schema registry (Apicurio) with scripts/services.sh and exports their endpoints. A test that needs
one fails loudly when it is not reachable; it never skips.
"""

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]


def _require(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        pytest.fail(
            f"{variable} is not set: start the services with `bash scripts/services.sh up` and "
            f'`eval "$(bash scripts/services.sh env)"` (make test does both)',
            pytrace=False,
        )
    return value


def _reachable(host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"{host}:{port} is not answering ({exc}); is `bash scripts/services.sh up` running?",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The real Kafka broker."""
    bootstrap = _require("LOCKFLOW_KAFKA_BOOTSTRAP")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    _reachable(host, int(port))
    return bootstrap


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis."""
    import redis

    url = _require("LOCKFLOW_REDIS_URL")
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not answering: {exc}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The real PostgreSQL (the lockflow database)."""
    return _answering_database("PostgreSQL", _require("LOCKFLOW_DATABASE_URL"))


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"lockflow_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as connection:
        connection.execute(
            # Only client sessions: an autovacuum worker runs as the superuser, which a plain owner may not
            # end (DROP DATABASE stops those workers itself).
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND backend_type = 'client backend'"
            )
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """The real MariaDB (the lockflow database), a database source for the connector's tests."""
    return _answering_database("MariaDB", _require("LOCKFLOW_MARIADB_URL"))


def _answering_database(kind: str, url: str) -> str:
    """`url` if the database answers a query; otherwise the test fails, naming it (never skips)."""
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        pytest.fail(f"{kind} at {url} is not answering: {exc}", pytrace=False)
    return url


@pytest.fixture
def fresh_mariadb(mariadb_url: str) -> Iterator[str]:
    """A new, empty MariaDB database for one test, dropped afterwards."""
    name = f"lockflow_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(mariadb_url)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}`"))
    yield mariadb_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@dataclass(frozen=True)
class S3Server:
    """The real S3-compatible server (SeaweedFS from scripts/services.sh) and its credentials."""

    endpoint: str
    access_key_id: str
    secret_access_key: str

    def client(self) -> Any:
        """A boto3 client for it."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def remove(self, bucket: str, prefix: str) -> None:
        """Delete every object under `prefix` (the server outlives the tests: they clean up after them)."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})

    def bucket(self, name: str) -> str:
        """`name`, created if it is not there yet."""
        client = self.client()
        if name not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """The real S3-compatible server; the test fails (never skips) when it does not answer."""
    server = S3Server(
        _require("LOCKFLOW_TEST_S3_URL"),
        _require("LOCKFLOW_TEST_S3_ACCESS_KEY_ID"),
        _require("LOCKFLOW_TEST_S3_SECRET_ACCESS_KEY"),
    )
    try:
        server.client().list_buckets()
    except Exception as exc:
        pytest.fail(f"the S3 server at {server.endpoint} is not answering: {exc}", pytrace=False)
    return server


@pytest.fixture(scope="session")
def schema_registry_url() -> str:
    """The real schema registry's URL (Confluent-compatible); fails, never skips, when it does not answer."""
    url = _require("LOCKFLOW_TEST_SCHEMA_REGISTRY_URL")
    try:
        answer = httpx.get(f"{url}/subjects", timeout=5, trust_env=False)
    except httpx.HTTPError as exc:
        pytest.fail(f"the schema registry at {url} is not answering: {exc}", pytrace=False)
    if answer.status_code != 200:
        pytest.fail(f"the schema registry at {url} answered {answer.status_code}", pytrace=False)
    return url


PREFIXES_HANDED_OUT: set[str] = set()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of its own for each test, so tests never see each other's messages."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    PREFIXES_HANDED_OUT.add(prefix)
    return prefix


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Delete the topics this session's tests created: left behind, thousands of partitions
    slow every later broker start (scripts/services.sh keeps the broker's data between runs)."""
    bootstrap = os.environ.get("LOCKFLOW_KAFKA_BOOTSTRAP")
    if PREFIXES_HANDED_OUT and bootstrap:
        from kafka_cleanup import delete_topics_with_prefixes

        delete_topics_with_prefixes(bootstrap, PREFIXES_HANDED_OUT)


SERVICE_VARIABLES = (
    "LOCKFLOW_DATABASE_URL",
    "LOCKFLOW_REDIS_URL",
    "LOCKFLOW_KAFKA_BOOTSTRAP",
    "LOCKFLOW_MODE",
)


@pytest.fixture
def embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings as a newcomer has them (SQLite, in-process bus), although `make test` exports the services."""
    for variable in SERVICE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def banner_port() -> Iterator[tuple[int, list[str]]]:
    """A TCP port on 127.0.0.1 with something that is no database or web server on it: it sends an SSH
    banner and hangs up, recording who connected. Yields (port, peer addresses seen)."""
    seen: list[str] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            seen.append(peer[0])
            try:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()
