"""`lockflow serve` with LOCKFLOW_GATEWAY_WORKERS=2: two gateway processes share the port, both answer,
and their two outbox relays send each event once, each run's in order (real Kafka and PostgreSQL)."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from lockflow.auth.keys import generate_private_pem
from lockflow.auth.testing import admin_headers
from lockflow.common.db import Database, OutboxRow
from lockflow.common.events import Event, RunRequested, RunRequestedPayload, parse_event
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.outbox import add_to_outbox
from lockflow.devcluster import DevCluster

WORKERS = 2


@pytest.fixture
def two_workers(
    tmp_path: Path, kafka_bootstrap: str, fresh_postgres: str, redis_url: str, topic_prefix: str
) -> Iterator[DevCluster]:
    """The auth service and a gateway of two worker processes on a fresh database and fresh topics."""
    env = {
        "LOCKFLOW_MODE": "distributed",
        "LOCKFLOW_ENVIRONMENT": "test",
        "LOCKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOCKFLOW_DATABASE_URL": fresh_postgres,
        "LOCKFLOW_REDIS_URL": redis_url,
        "LOCKFLOW_TOPIC_PREFIX": topic_prefix,
        "LOCKFLOW_HOME": str(tmp_path / "home"),
        "LOCKFLOW_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "LOCKFLOW_SIGNING_KEY": generate_private_pem().decode(),
        "LOCKFLOW_GATEWAY_WORKERS": str(WORKERS),
    }
    cluster = DevCluster(env=env, logs=tmp_path / "logs")
    try:
        cluster.launch("auth")
        cluster.wait_ready("auth")
        cluster.launch("gateway")
        cluster.wait_ready("gateway")
        yield cluster
    finally:
        cluster.stop()


def _children(pid: int) -> list[int]:
    """The gateway supervisor's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            found.append(int(child))
    return found


def _connected_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local end is the port (server side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    return inodes


def _holders(pids: list[int], port: int) -> dict[int, int]:
    """How many of the port's established connections each process holds."""
    inodes = _connected_inodes(port)
    held = {}
    for pid in pids:
        count = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                count += 1
        held[pid] = count
    return held


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record on the topic, from the beginning."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


def _event(run_id: str, number: int) -> Event:
    return RunRequested(
        run_id=run_id,
        payload=RunRequestedPayload(
            name=f"{run_id}-{number}", source=SourceSpec(path="a.csv"), goal=Goal(), requested_by="ana"
        ),
    )


def test_two_gateway_processes_both_answer_and_relay_each_event_once_in_order(
    two_workers: DevCluster, kafka_bootstrap: str, topic_prefix: str, fresh_postgres: str
) -> None:
    supervisor = two_workers.processes["gateway"].pid
    deadline = time.monotonic() + 60
    while len(workers := _children(supervisor)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(workers) == WORKERS, f"gateway processes: {workers}"

    with httpx.Client(base_url=two_workers.auth_url, timeout=30) as auth:
        admin = admin_headers(auth, Path(two_workers.env["LOCKFLOW_HOME"]))
    clients: list[httpx.Client] = []
    try:
        # New connections until each process holds one; every answer is a full, authorised one.
        for _ in range(200):
            client = httpx.Client(base_url=two_workers.url, headers=admin, timeout=30)
            clients.append(client)
            answer = client.get("/runs")
            assert answer.status_code == 200 and answer.json() == [], answer.text
            assert answer.headers["X-Total-Count"] == "0" and answer.headers["X-Content-Type-Options"]
            if all(_holders(workers, two_workers.port).values()):
                break
        held = _holders(workers, two_workers.port)
        assert all(held.values()), f"connections per gateway process: {held}"
    finally:
        for client in clients:
            client.close()

    # Events written to the outbox as causes do, one transaction each, interleaving four runs:
    # both processes' relays sweep the table every second.
    db = Database(fresh_postgres, run_migrations=False)
    written = [_event(f"run-{r}", n) for n in range(15) for r in range(4)]
    try:
        for event in written:
            with db.transaction() as session:
                add_to_outbox(session, event)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.transaction() as session:
                unsent = session.scalar(
                    select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
                )
            if unsent == 0:
                break
            time.sleep(0.5)
        assert unsent == 0
    finally:
        db.dispose()

    records = asyncio.run(_read_all(kafka_bootstrap, f"{topic_prefix}.events"))
    sent = [parse_event(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert sorted(e.event_id for e in sent) == sorted(e.event_id for e in written)  # each exactly once
    for r in range(4):
        run_id = f"run-{r}"
        assert [e.event_id for e in sent if e.run_id == run_id] == [
            e.event_id for e in written if e.run_id == run_id
        ]


def test_lockflow_up_refuses_more_than_one_gateway_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    env.update(LOCKFLOW_HOME=str(tmp_path), LOCKFLOW_GATEWAY_WORKERS="2")
    done = subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "up", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().startswith("error: LOCKFLOW_GATEWAY_WORKERS is for `lockflow serve`")
    assert done.stdout == ""
