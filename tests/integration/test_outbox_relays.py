"""Several relays on one outbox (the orchestrator and every gateway process): each row is sent once,
and one run's events go out in the order they were written, on the real PostgreSQL."""

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.db import Database, OutboxRow
from lockflow.common.events import Event, RunRequested, RunRequestedPayload
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.outbox import add_to_outbox, publish_pending

RUNS, PER_RUN = 8, 30


class RecordingBus(InMemoryBus):
    """The in-memory bus, noting every published event in one list shared by all relays (in time order);
    a publish takes a moment, as a broker's acknowledgement does, so relays overlap."""

    def __init__(self, sent: list[Event], lock: threading.Lock) -> None:
        super().__init__()
        self.sent, self.lock = sent, lock

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        await asyncio.sleep(0.002)
        with self.lock:
            self.sent.append(event)
        await super().publish(event, topic=topic)


@pytest.fixture
def db(fresh_postgres: str) -> Iterator[Database]:
    database = Database(fresh_postgres)
    yield database
    database.dispose()


def _event(run_id: str, number: int) -> Event:
    return RunRequested(
        run_id=run_id,
        payload=RunRequestedPayload(
            name=f"{run_id}-{number}", source=SourceSpec(path="a.csv"), goal=Goal(), requested_by="ana"
        ),
    )


def _write(db: Database, events: list[Event]) -> None:
    for event in events:  # one transaction each, as each cause writes its own
        with db.transaction() as session:
            add_to_outbox(session, event)


def _interleaved() -> list[Event]:
    return [_event(f"run-{r}", n) for n in range(PER_RUN) for r in range(RUNS)]


def _relay_until_empty(
    url: str, sent: list[Event], lock: threading.Lock, errors: list[BaseException]
) -> None:
    """One relay process: its own engine and bus, relaying small batches until nothing is left."""
    own = Database(url, run_migrations=False)
    bus = RecordingBus(sent, lock)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            asyncio.run(publish_pending(own, bus, limit=7))
            with own.transaction() as session:
                left = session.scalar(select(OutboxRow.id).where(OutboxRow.published_at.is_(None)).limit(1))
            if left is None:
                return
        raise TimeoutError("the outbox did not empty")
    except BaseException as exc:
        errors.append(exc)
    finally:
        own.dispose()


def test_three_relays_send_every_row_once_and_each_run_in_order(db: Database) -> None:
    written = _interleaved()
    _write(db, written)
    sent: list[Event] = []
    lock, errors = threading.Lock(), list[BaseException]()
    relays = [
        threading.Thread(target=_relay_until_empty, args=(db.url, sent, lock, errors)) for _ in range(3)
    ]
    for relay in relays:
        relay.start()
    for relay in relays:
        relay.join(timeout=90)
    assert not errors, errors

    assert sorted(e.event_id for e in sent) == sorted(e.event_id for e in written)  # all, none twice
    for r in range(RUNS):
        run_id = f"run-{r}"
        assert [e.event_id for e in sent if e.run_id == run_id] == [
            e.event_id for e in written if e.run_id == run_id
        ]


def test_a_run_whose_earlier_row_another_relay_holds_waits_while_other_runs_go(db: Database) -> None:
    _write(db, [_event("held", 0), _event("held", 1), _event("free", 0)])
    sent: list[Event] = []
    bus = RecordingBus(sent, threading.Lock())
    # Another relay, mid-publish of the held run's first row.
    with db.engine.connect() as other, other.begin():
        other.execute(text("SELECT id FROM outbox WHERE id = (SELECT min(id) FROM outbox) FOR UPDATE"))
        assert asyncio.run(publish_pending(db, bus)) == 1
        assert [(e.run_id, e.payload.name) for e in sent] == [("free", "free-0")]  # type: ignore[attr-defined]
    assert asyncio.run(publish_pending(db, bus)) == 2
    assert [e.payload.name for e in sent[1:]] == ["held-0", "held-1"]  # type: ignore[attr-defined]
