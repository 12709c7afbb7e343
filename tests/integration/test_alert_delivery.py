"""Webhook delivery of alerts on the real PostgreSQL: a refused call is retried after its backoff, a
receiver that keeps refusing is given up on, two orchestrators never POST the same alert twice, and
alerts on overdue gates and quality are stored once."""

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from lockflow.common.db import AlertRow, Database, DecisionRequestRow, RunRow, utcnow
from lockflow.devcluster import free_port
from lockflow.orchestrator.alerting import AlertRules, stage_failed
from lockflow.orchestrator.alerts import deliver_pending, store, sweep_overdue_gates
from lockflow.orchestrator.settings import OrchestratorSettings


class Flaky(BaseHTTPRequestHandler):
    """Answers each POST with the next status of `answers` (200 when none is left)."""

    answers: list[int] = []
    calls: list[bytes] = []

    def do_POST(self) -> None:
        self.calls.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[str]:
    Flaky.answers, Flaky.calls = [], []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture
def db(fresh_postgres: str) -> Iterator[Database]:
    database = Database(fresh_postgres)
    with database.transaction() as session:
        session.add(RunRow(id="r1", name="r1", status="waiting", requested_by="ana", state={}))
    yield database
    database.dispose()


def _settings(url: str, attempts: int = 3) -> OrchestratorSettings:
    return OrchestratorSettings(
        alert_webhook_url=url, alert_webhook_secret=SecretStr("s"), alert_webhook_attempts=attempts
    )


def _row(db: Database) -> AlertRow:
    with db.transaction() as session:
        return session.query(AlertRow).one()


def _due_now(db: Database) -> None:
    with db.transaction() as session:
        session.execute(update(AlertRow).values(next_delivery_at=utcnow() - timedelta(seconds=1)))


def _deliver(db: Database, settings: OrchestratorSettings) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            return await deliver_pending(db, settings, client)

    return asyncio.run(go())


def test_a_refused_call_is_retried_after_its_backoff(db: Database, receiver: str) -> None:
    store(db, [stage_failed("r1", stage="quality", attempt_id="a1", error="boom")])
    Flaky.answers = [503]
    assert _deliver(db, _settings(receiver)) == 0
    row = _row(db)
    assert (row.delivery, row.delivery_attempts, row.delivery_error) == ("pending", 1, "HTTP 503")
    assert row.next_delivery_at is not None and row.next_delivery_at > utcnow()
    assert _deliver(db, _settings(receiver)) == 0 and len(Flaky.calls) == 1  # not before its time
    _due_now(db)
    assert _deliver(db, _settings(receiver)) == 1
    assert (_row(db).delivery, _row(db).delivery_attempts, len(Flaky.calls)) == ("delivered", 2, 2)
    assert _deliver(db, _settings(receiver)) == 0 and len(Flaky.calls) == 2


def test_a_receiver_that_keeps_refusing_is_given_up_on(db: Database, receiver: str) -> None:
    store(db, [stage_failed("r1", stage="quality", attempt_id="a1", error="boom")])
    Flaky.answers = [500, 500, 500, 500]
    for _ in range(3):
        _deliver(db, _settings(receiver, attempts=3))
        _due_now(db)
    assert (_row(db).delivery, _row(db).delivery_attempts) == ("given_up", 3)
    _deliver(db, _settings(receiver, attempts=3))
    assert len(Flaky.calls) == 3


def test_two_orchestrators_deliver_an_alert_once(db: Database, receiver: str) -> None:
    store(db, [stage_failed("r1", stage="quality", attempt_id=f"a{i}", error="boom") for i in range(5)])

    async def both() -> list[int]:
        async with httpx.AsyncClient(timeout=5) as one, httpx.AsyncClient(timeout=5) as two:
            return list(
                await asyncio.gather(
                    deliver_pending(db, _settings(receiver), one),
                    deliver_pending(db, _settings(receiver), two),
                )
            )

    assert sum(asyncio.run(both())) == 5
    assert len(Flaky.calls) == 5


def test_an_overdue_gate_alerts_once(db: Database) -> None:
    with db.transaction() as session:
        session.add(
            DecisionRequestRow(
                id="q1", run_id="r1", gate="quality_review", status="open", title="t", options=[], context={},
                created_at=utcnow() - timedelta(hours=2),
            )
        )  # fmt: skip
    rules = AlertRules(gate_deadline=timedelta(hours=1))
    assert sweep_overdue_gates(db, rules) == 1
    assert sweep_overdue_gates(db, rules) == 0
    assert (_row(db).kind, _row(db).subject, _row(db).run_id) == ("gate_overdue", "quality_review", "r1")
