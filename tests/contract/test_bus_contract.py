"""One contract, two adapters: the same tests run on the in-memory bus and on real Kafka."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from lockflow.common.bus import Bus, DeliveredEvent, ErrorPolicy, RawRecord
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.events import RunAborted, RunEndedPayload
from lockflow.common.telemetry import setup_tracing, tracer

WAIT = 30.0


@pytest.fixture(params=["memory", "kafka"])
async def bus(request: pytest.FixtureRequest, topic_prefix: str) -> AsyncIterator[Bus]:
    policy = ErrorPolicy(
        retries=1,
        backoff_seconds=0.01,
        transient=lambda exc: isinstance(exc, PlantedOutage),
        transient_backoff_max_seconds=0.05,
    )
    if request.param == "memory":
        adapter: Bus = InMemoryBus(prefix=topic_prefix, error_policy=policy)
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        adapter = KafkaBus(bootstrap=bootstrap, prefix=topic_prefix, error_policy=policy)
        await adapter.ensure_topics([f"{topic_prefix}.events"], partitions=3)
    await adapter.start()
    yield adapter
    await adapter.stop()


def _event(run_id: str, reason: str = "x") -> RunAborted:
    return RunAborted(run_id=run_id, producer="test", payload=RunEndedPayload(reason=reason))


class PlantedOutage(Exception):
    """A dependency away (what the policy calls transient)."""


class Collector:
    """Collects delivered events; fails on chosen reasons (or meets an outage on them)."""

    def __init__(
        self, fail_reasons: dict[str, int] | None = None, outages: dict[str, int] | None = None
    ) -> None:
        self.events: list[DeliveredEvent] = []
        self.fail_reasons = dict(fail_reasons or {})
        self.outages = dict(outages or {})
        self.changed = asyncio.Event()

    async def __call__(self, delivered: DeliveredEvent) -> None:
        reason = delivered.event.payload.reason  # type: ignore[attr-defined]
        if self.outages.get(reason, 0) > 0:
            self.outages[reason] -= 1
            raise PlantedOutage(f"planted outage for {reason}")
        if self.fail_reasons.get(reason, 0) > 0:
            self.fail_reasons[reason] -= 1
            raise RuntimeError(f"planted failure for {reason}")
        self.events.append(delivered)
        self.changed.set()

    async def wait_for(self, count: int) -> list[DeliveredEvent]:
        async def enough() -> None:
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(enough(), WAIT)
        return self.events


async def _collect_raw(bus: Bus, topic: str, count: int) -> list[RawRecord]:
    records: list[RawRecord] = []
    done = asyncio.Event()

    async def handler(record: RawRecord) -> None:
        records.append(record)
        if len(records) >= count:
            done.set()

    subscription = await bus.subscribe_raw(topics=[topic], group=f"{bus.prefix}-dlq-reader", handler=handler)
    try:
        await asyncio.wait_for(done.wait(), WAIT)
    finally:
        await subscription.stop()
    return records


async def test_published_event_arrives_intact_with_key_and_trace(bus: Bus) -> None:
    setup_tracing(service="contract-test")
    collector = Collector()
    await bus.subscribe(topics=[f"{bus.prefix}.events"], group=f"{bus.prefix}-g", handler=collector)
    event = _event("run-a")
    with tracer().start_as_current_span("test-root") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        await bus.publish(event)
    (delivered,) = await collector.wait_for(1)
    assert delivered.event == event
    headers = dict(delivered.headers)
    assert headers["event-type"] == b"RunAborted"
    assert headers["traceparent"].decode().split("-")[1] == trace_id


async def test_one_runs_events_keep_their_order(bus: Bus) -> None:
    collector = Collector()
    await bus.subscribe(topics=[f"{bus.prefix}.events"], group=f"{bus.prefix}-g", handler=collector)
    for i in range(15):
        await bus.publish(_event("run-ordered", reason=str(i)))
        await bus.publish(_event(f"other-{i}", reason=f"o{i}"))
    delivered = await collector.wait_for(30)
    ordered = [d.event.payload.reason for d in delivered if d.event.run_id == "run-ordered"]  # type: ignore[attr-defined]
    assert ordered == [str(i) for i in range(15)]


async def test_invalid_event_goes_to_dlq_with_reason_and_the_stream_goes_on(bus: Bus) -> None:
    topic = f"{bus.prefix}.events"
    collector = Collector()
    await bus.subscribe(topics=[topic], group=f"{bus.prefix}-g", handler=collector)
    await bus.publish_raw(topic, key=b"run-b", value=b'{"type": "RunAborted", "run_id": "run-b"}', headers=[])
    await bus.publish(_event("run-b", reason="after"))
    (delivered,) = await collector.wait_for(1)
    assert delivered.event.payload.reason == "after"  # type: ignore[attr-defined]
    (dead,) = await _collect_raw(bus, f"{topic}.dlq", 1)
    assert dead.value == b'{"type": "RunAborted", "run_id": "run-b"}'
    assert "invalid event" in (dead.header("dlq-reason") or "")
    assert dead.header("dlq-original-topic") == topic
    assert dead.header("dlq-original-offset") is not None


async def test_a_handler_that_keeps_failing_dead_letters_after_retries(bus: Bus) -> None:
    topic = f"{bus.prefix}.events"
    collector = Collector(fail_reasons={"poison": 99})
    await bus.subscribe(topics=[topic], group=f"{bus.prefix}-g", handler=collector)
    await bus.publish(_event("run-c", reason="poison"))
    await bus.publish(_event("run-c", reason="fine"))
    (delivered,) = await collector.wait_for(1)
    assert delivered.event.payload.reason == "fine"  # type: ignore[attr-defined]
    assert collector.fail_reasons["poison"] == 99 - 2  # first try + one retry
    (dead,) = await _collect_raw(bus, f"{topic}.dlq", 1)
    assert "handler failed after 2 attempts" in (dead.header("dlq-reason") or "")


async def test_a_transient_failure_is_retried_and_handled_once(bus: Bus) -> None:
    collector = Collector(fail_reasons={"flaky": 1})
    await bus.subscribe(topics=[f"{bus.prefix}.events"], group=f"{bus.prefix}-g", handler=collector)
    await bus.publish(_event("run-d", reason="flaky"))
    await bus.publish(_event("run-d", reason="next"))
    delivered = await collector.wait_for(2)
    assert [d.event.payload.reason for d in delivered] == ["flaky", "next"]  # type: ignore[attr-defined]


async def test_an_outage_is_waited_out_however_long_and_never_dead_lettered(bus: Bus) -> None:
    topic = f"{bus.prefix}.events"
    collector = Collector(fail_reasons={"poison": 99}, outages={"decision": 8})
    await bus.subscribe(topics=[topic], group=f"{bus.prefix}-g", handler=collector)
    await bus.publish(_event("run-e", reason="decision"))
    await bus.publish(_event("run-e", reason="poison"))
    await bus.publish(_event("run-e", reason="next"))
    delivered = await collector.wait_for(2)
    # Far more failures than the retries allow, yet handled once and in order.
    assert [d.event.payload.reason for d in delivered] == ["decision", "next"]  # type: ignore[attr-defined]
    assert collector.outages["decision"] == 0
    (dead,) = await _collect_raw(bus, f"{topic}.dlq", 1)  # only the poison event
    assert b'"poison"' in dead.value


async def test_every_group_gets_every_event(bus: Bus) -> None:
    first, second = Collector(), Collector()
    await bus.subscribe(topics=[f"{bus.prefix}.events"], group=f"{bus.prefix}-one", handler=first)
    await bus.subscribe(topics=[f"{bus.prefix}.events"], group=f"{bus.prefix}-two", handler=second)
    for i in range(3):
        await bus.publish(_event(f"run-{i}", reason=str(i)))
    assert len(await first.wait_for(3)) == 3
    assert len(await second.wait_for(3)) == 3


async def test_a_group_resumes_after_its_committed_offset(bus: Bus) -> None:
    topic = f"{bus.prefix}.events"
    group = f"{bus.prefix}-resume"
    first = Collector()
    subscription = await bus.subscribe(topics=[topic], group=group, handler=first)
    for i in range(3):
        await bus.publish(_event("run-e", reason=f"before-{i}"))
    await first.wait_for(3)
    await subscription.stop()
    await bus.publish(_event("run-e", reason="after"))
    second = Collector()
    await bus.subscribe(topics=[topic], group=group, handler=second)
    (delivered,) = await second.wait_for(1)
    assert delivered.event.payload.reason == "after"  # type: ignore[attr-defined]
    await asyncio.sleep(1.0)
    assert len(second.events) == 1, "events already handled by the group were delivered again"


async def test_a_tail_sees_what_is_published_after_it_and_every_tail_sees_it(bus: Bus) -> None:
    topic = f"{bus.prefix}.events"
    await bus.publish(_event("run-f", reason="before"))
    seen: dict[str, list[bytes]] = {"one": [], "two": []}
    arrived = asyncio.Event()

    def keep(name: str):  # type: ignore[no-untyped-def]
        async def handler(record: RawRecord) -> None:
            seen[name].append(record.value)
            if all(len(values) >= 3 for values in seen.values()):
                arrived.set()

        return handler

    tails = [await bus.tail_raw(topics=[topic], handler=keep(name)) for name in seen]
    events = [_event(f"run-{i}", reason=f"after-{i}") for i in range(3)]
    for event in events:  # no wait: a tail is reading from its end once tail_raw has returned
        await bus.publish(event)
    await asyncio.wait_for(arrived.wait(), WAIT)
    for values in seen.values():
        assert sorted(values) == sorted(e.model_dump_json().encode() for e in events)
    for tail in tails:
        await tail.stop()
