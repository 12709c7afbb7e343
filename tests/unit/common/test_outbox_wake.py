"""The outbox relay publishes a committed row at once (the commit wakes it), not at the next sweep."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.db import Database, OutboxRow
from lockflow.common.events import Event, RunRequested, RunRequestedPayload
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.outbox import OutboxRelay, add_to_outbox

SWEEP = 3600.0  # far longer than any test waits: only a wake-up can publish in time


class RecordingBus(InMemoryBus):
    """The in-memory bus, noting when each event was published."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, Event]] = []

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        self.sent.append((time.monotonic(), event))
        await super().publish(event, topic=topic)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield database
    database.dispose()


def _event(run_id: str) -> Event:
    return RunRequested(
        run_id=run_id,
        payload=RunRequestedPayload(
            name=run_id, source=SourceSpec(path="a.csv"), goal=Goal(), requested_by="ana"
        ),
    )


def _commit(db: Database, event: Event) -> float:
    """Write the event to the outbox in its own transaction (on a worker thread, as services do)."""
    with db.transaction() as session:
        add_to_outbox(session, event)
    return time.monotonic()


def _unsent(db: Database) -> int:
    with db.transaction() as session:
        return len(session.scalars(select(OutboxRow.id).where(OutboxRow.published_at.is_(None))).all())


async def _until_sent(bus: RecordingBus, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(bus.sent) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


async def test_a_committed_row_is_published_without_waiting_for_the_sweep(db: Database) -> None:
    bus = RecordingBus()
    relay = OutboxRelay(db, bus, sweep_seconds=SWEEP)
    relay.start()
    try:
        await asyncio.sleep(0.05)  # the relay's first sweep (at start) found nothing
        assert bus.sent == []
        for n in range(5):
            committed = await asyncio.to_thread(_commit, db, _event(f"run-{n}"))
            await _until_sent(bus, n + 1, timeout=5)
            assert len(bus.sent) == n + 1, "the commit did not wake the relay"
            published, event = bus.sent[-1]
            assert event.run_id == f"run-{n}"
            assert published - committed < 1.0  # far below the hour-long sweep
        assert _unsent(db) == 0  # each row marked as sent, so no other relay sends it again
    finally:
        await relay.stop()


async def test_a_rolled_back_row_is_not_published(db: Database) -> None:
    bus = RecordingBus()
    relay = OutboxRelay(db, bus, sweep_seconds=SWEEP)
    relay.start()

    def roll_back() -> None:
        with pytest.raises(RuntimeError), db.transaction() as session:
            add_to_outbox(session, _event("run-gone"))
            session.flush()
            raise RuntimeError("the cause failed")

    try:
        await asyncio.to_thread(roll_back)
        await asyncio.to_thread(_commit, db, _event("run-kept"))
        await _until_sent(bus, 1, timeout=5)
        await asyncio.sleep(0.1)
        assert [e.run_id for _, e in bus.sent] == ["run-kept"]
    finally:
        await relay.stop()


async def test_with_waking_off_the_row_waits_for_the_sweep(db: Database) -> None:
    bus = RecordingBus()
    relay = OutboxRelay(db, bus, sweep_seconds=SWEEP, wake_on_commit=False)
    relay.start()
    try:
        await asyncio.sleep(0.05)  # past the relay's first sweep (at start)
        await asyncio.to_thread(_commit, db, _event("run-late"))
        await asyncio.sleep(0.5)
        assert bus.sent == [] and _unsent(db) == 1
        assert await relay.publish() == 1  # what the sweep does when its time comes
        assert [e.run_id for _, e in bus.sent] == ["run-late"]
    finally:
        await relay.stop()


async def test_a_stopped_relay_is_not_woken_and_its_rows_wait_for_a_sweep(db: Database) -> None:
    bus = RecordingBus()
    relay = OutboxRelay(db, bus, sweep_seconds=SWEEP)
    relay.start()
    await relay.stop()
    await asyncio.to_thread(_commit, db, _event("run-after"))
    await asyncio.sleep(0.2)
    assert bus.sent == [] and _unsent(db) == 1
    again = OutboxRelay(db, bus, sweep_seconds=SWEEP)
    again.start()  # a new process's relay sweeps at start
    try:
        await _until_sent(bus, 1, timeout=5)
        assert [e.run_id for _, e in bus.sent] == ["run-after"]
    finally:
        await again.stop()


def test_a_relay_stops_even_while_commits_keep_waking_it(db: Database) -> None:
    """A wake-up landing as stop cancels the relay must not swallow the cancel (the relay would never end)."""

    async def scenario() -> None:
        relay = OutboxRelay(db, RecordingBus(), sweep_seconds=0.001)
        relay.start()
        for _ in range(200):  # stop at many points of the loop, each time with a wake-up just queued
            await asyncio.sleep(0)
            relay.wake()
            async with asyncio.timeout(5):
                await relay.stop()
            relay.start()
        async with asyncio.timeout(5):
            await relay.stop()

    asyncio.run(scenario())
