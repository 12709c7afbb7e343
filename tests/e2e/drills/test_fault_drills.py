"""Fault drills on a distributed deployment (every service its own process, private Kafka, PostgreSQL
and Redis): a fault is injected while a run is under way, the run is driven to the end, and then the
timeline's facts, the decisions and the audit records are counted: each exactly once, the audit chain
intact, the run completed (`Pilot.check_complete`), and no event on a dead-letter topic.

Gates are answered at once as ANSWERS says, except where a drill holds a run at a gate. Stages on the
sample data take milliseconds, so a drill that must hit a stage while it runs slows its worker down
first (`Throttle`: SIGSTOP/SIGCONT) and strikes once the worker has marked the attempt started.
"""

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults import GATES, Pilot, PrivateKafka, PrivatePostgres, PrivateRedis, Throttle
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from lockflow.bootstrap import all_topics
from lockflow.common.db import OutboxRow, StageAttemptRow
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e

# The stage each gate's answer sets going (the first stage starts with the run).
NEXT_STAGE = dict(
    zip(GATES, ["quality", "analytics", "insights", "recommendations", "reporting"], strict=True)
)


@pytest.fixture(scope="module")
def database(drill_cluster: DevCluster) -> Iterator[Engine]:
    """The deployment's database, read directly to see when a worker has started an attempt."""
    engine = create_engine(drill_cluster.env["LOCKFLOW_DATABASE_URL"], pool_pre_ping=True)
    yield engine
    engine.dispose()


def started_attempt(database: Engine, *, timeout: float = 120) -> StageAttemptRow:
    """The attempt a worker has started and not finished, as soon as there is one.

    Drills run one at a time and each ends with its run completed, so the one attempt in that
    state is the drill's (checked by the caller). Its run is not asked for: the run id is known only
    once the gateway answered, and a first stage may be under way by then.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.connect() as connection:
            row = connection.execute(
                select(StageAttemptRow).where(
                    StageAttemptRow.status == "requested", StageAttemptRow.heartbeat_at.is_not(None)
                )
            ).first()
        if row is not None:
            return row  # type: ignore[return-value]
        time.sleep(0.01)
    raise AssertionError("no worker started an attempt")


def strike_mid_stage(
    cluster: DevCluster,
    database: Engine,
    stage: str,
    set_going: Callable[[], str],
    strike: Callable[[], None],
) -> tuple[str, StageAttemptRow]:
    """Slow the stage's worker, set the stage going, and strike once the worker runs the attempt."""
    run_id: list[str] = []
    with Throttle(cluster.processes[stage].pid):
        starter = threading.Thread(target=lambda: run_id.append(set_going()))
        starter.start()
        attempt = started_attempt(database)
        strike()
        starter.join()
    assert attempt.run_id == run_id[0], "an attempt of another run was still running"
    return run_id[0], attempt


def finish(pilot: Pilot, cluster: DevCluster, run_id: str) -> dict[str, Any]:
    """The run completed with nothing lost or duplicated, and no event was dead-lettered."""
    run = pilot.check_complete(run_id)
    dead = _dead_letters(cluster)
    assert dead == [], f"dead letters: {[dict(d.headers) for d in dead]}"
    return run


def test_sigkill_of_the_orchestrator_while_a_run_waits_at_a_gate(
    drill_cluster: DevCluster, pilot: Pilot, sample: Path
) -> None:
    run_id = pilot.start_run(sample)
    for gate in GATES[:2]:
        pilot.pass_gate(run_id, gate)
    request = pilot.wait_for_gate(run_id, "analytics_review")
    drill_cluster.kill("orchestrator")
    # Accepted and recorded while nobody applies it; the run reads as decided, not as still open.
    pilot.decide(request)
    run = pilot.run(run_id)
    assert (run["status"], run["open_gate"], run["decided_gate"]) == ("decided", None, "analytics_review")
    drill_cluster.restart("orchestrator")
    for gate in GATES[3:]:
        pilot.pass_gate(run_id, gate)
    finish(pilot, drill_cluster, run_id)


def test_sigkill_of_each_stage_worker_mid_stage(
    drill_cluster: DevCluster, pilot: Pilot, sample: Path, database: Engine
) -> None:
    killed: dict[str, str] = {}

    def kill_and_restart(stage: str, set_going: Callable[[], str]) -> str:
        run_id, attempt = strike_mid_stage(
            drill_cluster, database, stage, set_going, lambda: drill_cluster.kill(stage)
        )
        killed[stage] = attempt.id
        drill_cluster.restart(stage)
        return run_id

    run_id = kill_and_restart("ingest", lambda: pilot.start_run(sample))
    for gate, stage in NEXT_STAGE.items():
        kill_and_restart(stage, _answer(pilot, run_id, gate))
    run = finish(pilot, drill_cluster, run_id)
    # Each killed attempt's work was done again: by the restarted worker (its command was not
    # committed) or as a re-sent attempt (the sweep found the heartbeat silent).
    attempts = {a["id"]: a for a in run["attempts"]}
    for stage, attempt_id in killed.items():
        step = attempts[attempt_id]["step"]
        outcomes = [a["status"] for a in run["attempts"] if a["step"] == step]
        assert outcomes.count("succeeded") == 1, (stage, run["attempts"])
        redone = "stage_started" in drill_cluster.log_since_start(stage)
        assert redone or attempts[attempt_id]["status"] == "abandoned", (stage, attempts[attempt_id])


def _answer(pilot: Pilot, run_id: str, gate: str) -> Callable[[], str]:
    """Answering the gate (what sets the next stage going), to be called later."""

    def go() -> str:
        pilot.pass_gate(run_id, gate)
        return run_id

    return go


def test_gateway_restart_with_a_client_on_sse(drill_cluster: DevCluster, pilot: Pilot, sample: Path) -> None:
    run_id = pilot.start_run(sample)
    reader = SseReader(drill_cluster.url, run_id, pilot.analyst)
    reader.start()
    pilot.pass_gate(run_id, GATES[0])
    request = pilot.wait_for_gate(run_id, GATES[1])
    reader.wait_for("DecisionRequested", count=2)
    # Killed right after it accepted a decision: its outbox row must still be sent (by the next one).
    pilot.decide(request)
    drill_cluster.kill("gateway")
    drill_cluster.restart("gateway")
    for gate in GATES[2:]:
        pilot.pass_gate(run_id, gate)
    finish(pilot, drill_cluster, run_id)
    reader.join()
    assert reader.connections >= 2, "the stream was never cut"
    timeline = pilot.call("GET", f"/runs/{run_id}/timeline").json()
    assert reader.events == [(e["seq"], e["type"]) for e in timeline], "the stream lost or repeated events"


class SseReader(threading.Thread):
    """A live-view client: reads the run's event stream and reconnects with Last-Event-ID when cut."""

    def __init__(self, url: str, run_id: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id, self.headers = url, run_id, headers
        self.events: list[tuple[int, str]] = []
        self.connections = 0

    def run(self) -> None:
        """Read until the run's last event, reconnecting after every cut."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            headers = dict(self.headers)
            if self.events:
                headers["Last-Event-ID"] = str(self.events[-1][0])
            try:
                with httpx.stream(
                    "GET", f"{self.url}/runs/{self.run_id}/events", headers=headers, timeout=30
                ) as answer:
                    if answer.status_code != 200:
                        time.sleep(0.3)
                        continue
                    self.connections += 1
                    if self._read(answer):
                        return
            except httpx.HTTPError:
                time.sleep(0.3)

    def _read(self, answer: httpx.Response) -> bool:
        event_id, event_type = None, None
        for line in answer.iter_lines():
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("event:"):
                event_type = line[6:].strip()
            elif line == "" and event_id is not None and event_type is not None:
                self.events.append((event_id, event_type))
                if event_type in ("RunCompleted", "RunFailed", "RunAborted"):
                    return True
                event_id, event_type = None, None
        return False

    def wait_for(self, event_type: str, *, count: int, timeout: float = 60) -> None:
        """Until the stream has brought this many events of the type."""
        deadline = time.monotonic() + timeout
        while sum(1 for _, t in self.events if t == event_type) < count:
            assert time.monotonic() < deadline, (
                f"the stream did not bring {count} {event_type}: {self.events}"
            )
            time.sleep(0.1)


def test_postgresql_restart_mid_stage_and_at_a_gate(
    drill_cluster: DevCluster, pilot: Pilot, sample: Path, database: Engine, private_postgres: PrivatePostgres
) -> None:
    run_id = pilot.start_run(sample)
    pilot.pass_gate(run_id, GATES[0])
    # Mid-stage: the worker's heartbeat and the orchestrator's pooled connections are cut.
    strike_mid_stage(
        drill_cluster,
        database,
        "analytics",
        _answer(pilot, run_id, GATES[1]),
        private_postgres.restart,
    )
    # At a gate: the gateway's pooled connections are cut just before it takes a decision.
    request = pilot.wait_for_gate(run_id, GATES[2])
    private_postgres.restart()
    pilot.decide(request)
    # Down for a few seconds while the orchestrator takes a decision from Kafka: the event is fine,
    # so it waits for the database instead of going to the dead letters (the run would then stay
    # `decided` for good). The orchestrator is held (SIGSTOP) until the database is down.
    request = pilot.wait_for_gate(run_id, GATES[3])
    orchestrator = drill_cluster.processes["orchestrator"].pid
    os.kill(orchestrator, signal.SIGSTOP)
    try:
        pilot.decide(request)
        _wait_until_sent(database, run_id)
        private_postgres.stop()
    finally:
        os.kill(orchestrator, signal.SIGCONT)
    time.sleep(4)
    private_postgres.start()
    pilot.pass_gate(run_id, GATES[4])
    finish(pilot, drill_cluster, run_id)


def test_kafka_broker_restart_mid_stage(
    drill_cluster: DevCluster, pilot: Pilot, sample: Path, database: Engine, private_kafka: PrivateKafka
) -> None:
    run_id = pilot.start_run(sample)
    for gate in GATES[:2]:
        pilot.pass_gate(run_id, gate)
    # The insights worker is mid-stage while the broker goes away: its result waits for the broker.
    strike_mid_stage(
        drill_cluster, database, "insights", _answer(pilot, run_id, GATES[2]), private_kafka.restart
    )
    for gate in GATES[3:]:
        pilot.pass_gate(run_id, gate)
    finish(pilot, drill_cluster, run_id)
    _all_alive(drill_cluster)


def test_redis_down_for_a_whole_run(
    drill_cluster: DevCluster, pilot: Pilot, sample: Path, private_redis: PrivateRedis
) -> None:
    private_redis.stop()
    try:
        run_id = pilot.start_run(sample)
        for gate in GATES:
            pilot.pass_gate(run_id, gate)
        finish(pilot, drill_cluster, run_id)
    finally:
        private_redis.start()
    _all_alive(drill_cluster)


def _all_alive(cluster: DevCluster) -> None:
    dead: dict[str, Any] = {n: p.returncode for n, p in cluster.processes.items() if p.poll() is not None}
    assert not dead, f"processes exited: {dead}"


def _wait_until_sent(database: Engine, run_id: str, timeout: float = 60) -> None:
    """Until the outbox has sent every event of the run to Kafka (the held orchestrator sends none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.connect() as connection:
            pending = connection.execute(
                select(OutboxRow.id).where(OutboxRow.run_id == run_id, OutboxRow.published_at.is_(None))
            ).first()
        if pending is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"the outbox did not send the events of {run_id}")


def _dead_letters(cluster: DevCluster) -> list[Any]:
    """Every record on the deployment's dead-letter topics."""
    from aiokafka import AIOKafkaConsumer

    async def read() -> list[Any]:
        topics = [f"{t}.dlq" for t in all_topics(cluster.env["LOCKFLOW_TOPIC_PREFIX"])]
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=cluster.env["LOCKFLOW_KAFKA_BOOTSTRAP"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        records: list[Any] = []
        try:
            while batch := await consumer.getmany(timeout_ms=3000):
                records.extend(r for part in batch.values() for r in part)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(read())
