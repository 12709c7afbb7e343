"""Request/reply on real Kafka: answers across clients, timeouts with no worker, a late worker, a dead
broker, and the gateway's 504 turning into the ingest service's answer once `lockflow worker ingest` runs."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lockflow.auth.keys import generate_private_pem
from lockflow.auth.settings import AuthSettings
from lockflow.auth.testing import sign_in
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.cache import MemoryCache
from lockflow.common.errors import NotFound, TimedOut, Unavailable
from lockflow.common.events import (
    Reply,
    Request,
    SourceTested,
    SourceTestedPayload,
    TestSource,
    TestSourcePayload,
    utcnow,
)
from lockflow.common.models import SourceHealth
from lockflow.common.reqreply import Requester, RequestWorker, replies_topic
from lockflow.common.runtime import request_topics
from lockflow.common.worker import StageDeps
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings

pytestmark = pytest.mark.integration
answered: list[str] = []


def echo(request: Request, deps: StageDeps) -> Reply:
    """Answers with the ref it was asked about; 'missing' is not found."""
    assert isinstance(request, TestSource)
    ref = request.payload.ref
    answered.append(ref)
    if ref == "missing":
        raise NotFound("no source missing")
    health = SourceHealth(ok=True, reachable=True, authorised=True, readable=True, seconds=0.0, message=ref)
    return request.follow(SourceTested, SourceTestedPayload(health=health), producer="ingest")


@pytest.fixture
async def kafka(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[list[KafkaBus]]:
    """Three clients of one broker (a worker and two requesters), on topics made for this test."""
    buses = [KafkaBus(bootstrap=kafka_bootstrap, client_id=name, prefix=topic_prefix) for name in "wab"]
    await buses[0].ensure_topics(request_topics(topic_prefix))
    for bus in buses:
        await bus.start()
    yield buses
    for bus in buses:
        await bus.stop()


def deps(tmp_path: Path) -> StageDeps:
    return StageDeps(artifacts=LocalArtifactStore(tmp_path / "artifacts"), cache=MemoryCache())


async def ask(requester: Requester, ref: str) -> str:
    reply = await requester.ask(TestSource, TestSourcePayload(ref=ref), expect=SourceTested)
    return reply.payload.health.message


async def test_two_requesters_get_their_own_answers_from_a_worker_in_another_client(
    kafka: list[KafkaBus], tmp_path: Path
) -> None:
    worker, one, two = kafka
    subscription = await RequestWorker(
        service="ingest", handlers={"TestSource": echo}, deps=deps(tmp_path)
    ).start(worker)
    first, second = Requester(one, timeout_seconds=30), Requester(two, timeout_seconds=30)
    refs = [f"source-{i}" for i in range(10)]
    answers = await asyncio.gather(*[ask(first if i % 2 else second, ref) for i, ref in enumerate(refs)])
    assert answers == refs
    with pytest.raises(NotFound, match="no source missing"):
        await ask(first, "missing")
    assert await ask(second, "again") == "again"  # how long a reply takes: bench/request_reply.py
    for item in (first, second, subscription):
        await item.stop()


async def test_no_worker_is_a_timeout_and_a_late_worker_skips_the_expired_request(
    kafka: list[KafkaBus], tmp_path: Path
) -> None:
    worker, one, _ = kafka
    requester = Requester(one, timeout_seconds=2)
    started = time.monotonic()
    with pytest.raises(
        TimedOut, match=r"the ingest service did not answer the source's health check within 2s"
    ):
        await ask(requester, "nobody-listens")
    assert 1.9 < time.monotonic() - started < 5
    # A worker that starts later reads the topic from the start (a new group) and passes the stale one by.
    answered.clear()
    subscription = await RequestWorker(
        service="ingest", handlers={"TestSource": echo}, deps=deps(tmp_path)
    ).start(worker)
    patient = Requester(one, timeout_seconds=30)
    assert await ask(patient, "fresh") == "fresh"
    assert answered == ["fresh"]
    await requester.stop()
    await patient.stop()
    await subscription.stop()


async def test_a_request_sent_before_the_worker_came_is_answered_if_still_awaited(
    kafka: list[KafkaBus], tmp_path: Path
) -> None:
    worker, one, _ = kafka
    requester = Requester(one, timeout_seconds=30)
    waiting = asyncio.create_task(ask(requester, "early"))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    subscription = await RequestWorker(
        service="ingest", handlers={"TestSource": echo}, deps=deps(tmp_path)
    ).start(worker)
    assert await asyncio.wait_for(waiting, 30) == "early"
    await requester.stop()
    await subscription.stop()


async def test_a_stale_request_on_the_topic_is_skipped_by_expiry(
    kafka: list[KafkaBus], tmp_path: Path
) -> None:
    worker, one, _ = kafka
    await one.publish(
        TestSource(
            run_id="c-old",
            correlation_id="c-old",
            reply_to=replies_topic(one.prefix),
            expires_at=utcnow() - timedelta(seconds=5),
            payload=TestSourcePayload(ref="stale"),
        )
    )
    answered.clear()
    subscription = await RequestWorker(
        service="ingest", handlers={"TestSource": echo}, deps=deps(tmp_path)
    ).start(worker)
    requester = Requester(one, timeout_seconds=30)
    assert await ask(requester, "now") == "now"
    assert answered == ["now"]
    await requester.stop()
    await subscription.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_broker_that_cannot_be_reached_is_unavailable_within_the_timeout(topic_prefix: str) -> None:
    bus = KafkaBus(bootstrap=f"127.0.0.1:{closed_port()}", prefix=topic_prefix)
    requester = Requester(bus, timeout_seconds=3)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="the message bus did not take the request") as raised:
        await ask(requester, "orders")
    assert not isinstance(raised.value, TimedOut)
    assert time.monotonic() - started < 6
    await bus.stop()


# ---- through the gateway, distributed mode: no ingest worker, then `lockflow worker ingest` -----------


@pytest.fixture
def distributed(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A distributed gateway on Kafka (no stage worker in its process) and the environment of its workers."""
    shared = {
        "mode": "distributed",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "request_timeout_seconds": 2,
        "start_workers": False,
    }
    settings = embedded_settings(tmp_path, **shared)
    auth = AuthSettings(
        environment="test",
        mode="distributed",
        home=settings.home,
        database_url=settings.database_url,
        redis_url=None,
        topic_prefix=topic_prefix,
        signing_key=SecretStr(generate_private_pem().decode()),
    )
    env = {
        "LOCKFLOW_MODE": "distributed",
        "LOCKFLOW_ENVIRONMENT": "test",
        "LOCKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOCKFLOW_TOPIC_PREFIX": topic_prefix,
        "LOCKFLOW_DATABASE_URL": str(settings.database_url),
        "LOCKFLOW_HOME": str(settings.home),
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(d) for d in settings.allowed_dirs]),
    }
    with TestClient(create_app(settings, auth_settings=auth)) as client:
        client.headers.update(sign_in(client, "ana", ["analyst"]))
        yield client, env


def start_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`lockflow worker NAME` as its own process; returns once it says it is ready."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lockflow.cli", "worker", name],
            env={**variables, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while f"lockflow worker {name} ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"worker {name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process


def test_the_gateway_says_504_until_the_ingest_worker_answers(
    distributed: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, env = distributed
    data = tmp_path / "data" / "orders.csv"
    data.write_text("region,revenue\nnorth,10\nsouth,12\nwest,9\n")
    created = client.post("/sources", json={"name": "orders", "type": "file", "config": {"path": str(data)}})
    assert created.status_code == 201, created.text

    started = time.monotonic()
    tested = client.post("/sources/orders/test")
    assert tested.status_code == 504, tested.text
    assert 1.9 < time.monotonic() - started < 6
    assert tested.json()["detail"] == (
        "the ingest service did not answer the source's health check within 2s "
        "(LOCKFLOW_REQUEST_TIMEOUT_SECONDS); check that it is running (`lockflow worker ingest`) "
        "and try again"
    )
    run = client.post("/runs", json={"path": str(data)})
    assert run.status_code == 504 and "the file's pre-check" in run.json()["detail"]

    worker = start_worker("ingest", env, tmp_path / "ingest.log")
    try:
        tested = client.post("/sources/orders/test")
        assert tested.status_code == 200, tested.text
        assert tested.json()["ok"] is True and tested.json()["readable"] is True
        run = client.post("/runs", json={"path": str(data)})
        assert run.status_code == 201, run.text
        assert run.json()["target_picked"].startswith("revenue: ")
        refused = client.post("/runs", json={"path": str(data), "goal": {"target": "profit"}})
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("goal target 'profit' is not a column of")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    log = (tmp_path / "ingest.log").read_text()
    answered_here = [json.loads(line) for line in log.splitlines() if '"request_answered"' in line]
    assert {line["request_type"] for line in answered_here} == {"TestSource", "CheckFile"}
