"""Request/reply on the in-memory bus: answers, errors as their own class, timeouts, concurrency, size."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.cache import MemoryCache
from lockflow.common.errors import (
    Conflict,
    InvalidInput,
    LockflowError,
    NotFound,
    StageError,
    TimedOut,
    TooLarge,
    Unavailable,
)
from lockflow.common.events import (
    Reply,
    Request,
    SourceTested,
    SourceTestedPayload,
    TestSource,
    TestSourcePayload,
    parse_event,
    utcnow,
)
from lockflow.common.models import SourceHealth
from lockflow.common.reqreply import RemoteError, Requester, RequestWorker, replies_topic
from lockflow.common.telemetry import Headers
from lockflow.common.worker import StageDeps

PREFIX = "rr"


def healthy(message: str) -> SourceHealth:
    return SourceHealth(
        ok=True, reachable=True, authorised=True, readable=True, seconds=0.01, message=message
    )


def echo(request: Request, deps: StageDeps) -> Reply:
    """Answers with the ref it was asked about; 'slow' takes a second, the named errors are raised."""
    assert isinstance(request, TestSource)
    ref = request.payload.ref
    if ref == "slow":
        time.sleep(1.0)
    errors: dict[str, Exception] = {
        "missing": NotFound("no source missing"),
        "bad": InvalidInput("the config is wrong"),
        "huge": TooLarge("over the limit"),
        "taken": Conflict("already decided"),
        "stage": StageError("the stage refused"),
        "bug": ZeroDivisionError("division by zero"),
    }
    if ref in errors:
        raise errors[ref]
    message = "x" * 1_200_000 if ref == "wide" else ref
    return request.follow(SourceTested, SourceTestedPayload(health=healthy(message)), producer="ingest")


@pytest.fixture
def deps(tmp_path: Path) -> StageDeps:
    return StageDeps(artifacts=LocalArtifactStore(tmp_path / "artifacts"), cache=MemoryCache())


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    adapter = InMemoryBus(prefix=PREFIX)
    yield adapter
    await adapter.stop()


@pytest.fixture
async def answering(bus: InMemoryBus, deps: StageDeps) -> AsyncIterator[None]:
    subscription = await RequestWorker(service="ingest", handlers={"TestSource": echo}, deps=deps).start(bus)
    yield
    await subscription.stop()


async def ask(requester: Requester, ref: str, timeout: float | None = None) -> SourceHealth:
    reply = await requester.ask(
        TestSource, TestSourcePayload(ref=ref), expect=SourceTested, timeout_seconds=timeout
    )
    return reply.payload.health


async def test_a_request_is_answered_with_its_correlation_id(bus: InMemoryBus, answering: None) -> None:
    requester = Requester(bus, timeout_seconds=5, producer="gateway")
    assert (await ask(requester, "orders")).message == "orders"
    [sent] = [parse_event(r.value) for r in bus.records(f"{PREFIX}.requests.ingest")]
    [answer] = [parse_event(r.value) for r in bus.records(replies_topic(PREFIX))]
    assert isinstance(sent, TestSource) and sent.reply_to == replies_topic(PREFIX)
    assert answer.correlation_id == sent.correlation_id and answer.causation_id == sent.event_id
    assert sent.run_id == sent.correlation_id  # no run: the correlation id is the key
    assert answer.producer == "ingest"
    await requester.stop()


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("missing", NotFound, "no source missing"),
        ("bad", InvalidInput, "the config is wrong"),
        ("huge", TooLarge, "over the limit"),
        ("taken", Conflict, "already decided"),
        ("stage", LockflowError, "the stage refused"),
        ("bug", RemoteError, "the ingest service failed on TestSource: ZeroDivisionError: division by zero"),
    ],
)
async def test_the_service_error_is_raised_again_as_its_own_family(
    bus: InMemoryBus, answering: None, ref: str, error: type[Exception], message: str
) -> None:
    requester = Requester(bus, timeout_seconds=5)
    with pytest.raises(error) as raised:
        await ask(requester, ref)
    assert str(raised.value) == message
    if error is LockflowError:  # a StageError arrives as a plain LockflowError (400), not a subclass
        assert type(raised.value) is LockflowError
    await requester.stop()


async def test_no_answer_in_time_is_a_timeout_that_says_who_and_what(bus: InMemoryBus) -> None:
    requester = Requester(bus, timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(TimedOut) as raised:
        await ask(requester, "orders")
    assert 0.25 < time.monotonic() - started < 3
    assert str(raised.value) == (
        "the ingest service did not answer the source's health check within 0.3s "
        "(LOCKFLOW_REQUEST_TIMEOUT_SECONDS); check that it is running (`lockflow worker ingest`) "
        "and try again"
    )
    assert isinstance(raised.value, Unavailable)  # a timeout is one way of being unavailable
    await requester.stop()


async def test_two_requesters_each_get_their_own_answers(bus: InMemoryBus, answering: None) -> None:
    first, second = Requester(bus, timeout_seconds=5), Requester(bus, timeout_seconds=5)
    refs = [f"source-{i}" for i in range(12)]
    answers = await asyncio.gather(*[ask(first if i % 2 else second, ref) for i, ref in enumerate(refs)])
    assert [a.message for a in answers] == refs
    await first.stop()
    await second.stop()


async def test_a_slow_answer_does_not_hold_up_a_quick_one(bus: InMemoryBus, answering: None) -> None:
    requester = Requester(bus, timeout_seconds=5)
    finished: list[str] = []

    async def timed(ref: str) -> None:
        await ask(requester, ref)
        finished.append(ref)

    await asyncio.gather(timed("slow"), timed("quick"))
    assert finished == ["quick", "slow"]
    await requester.stop()


async def test_an_answer_too_large_for_one_message_is_refused_by_the_worker(
    bus: InMemoryBus, answering: None
) -> None:
    requester = Requester(bus, timeout_seconds=5)
    with pytest.raises(TooLarge, match=r"the answer to the source's health check is [\d,]+ bytes"):
        await ask(requester, "wide")
    await requester.stop()


async def test_a_request_found_after_it_expired_is_skipped(bus: InMemoryBus, deps: StageDeps) -> None:
    stale = TestSource(
        run_id="c-1",
        correlation_id="c-1",
        reply_to=replies_topic(PREFIX),
        expires_at=utcnow() - timedelta(seconds=1),
        payload=TestSourcePayload(ref="orders"),
    )
    await bus.publish(stale)
    subscription = await RequestWorker(service="ingest", handlers={"TestSource": echo}, deps=deps).start(bus)
    requester = Requester(bus, timeout_seconds=5)
    assert (await ask(requester, "fresh")).message == "fresh"  # answered after the stale one was passed
    answered = [parse_event(r.value).correlation_id for r in bus.records(replies_topic(PREFIX))]
    assert "c-1" not in answered and len(answered) == 1
    await subscription.stop()
    await requester.stop()


async def test_a_reply_topic_outside_the_replies_is_not_written_to(bus: InMemoryBus, answering: None) -> None:
    await bus.publish(
        TestSource(
            run_id="c-2",
            correlation_id="c-2",
            reply_to=f"{PREFIX}.events",
            expires_at=utcnow() + timedelta(seconds=5),
            payload=TestSourcePayload(ref="orders"),
        )
    )
    requester = Requester(bus, timeout_seconds=5)
    await ask(requester, "after")
    assert bus.records(f"{PREFIX}.events") == []
    assert [parse_event(r.value).correlation_id for r in bus.records(replies_topic(PREFIX))] != ["c-2"]
    assert len(bus.records(replies_topic(PREFIX))) == 1
    await requester.stop()


async def test_a_request_the_service_has_no_handler_for_fails_plainly(
    bus: InMemoryBus, deps: StageDeps
) -> None:
    subscription = await RequestWorker(service="ingest", handlers={}, deps=deps).start(bus)
    requester = Requester(bus, timeout_seconds=5)
    with pytest.raises(RemoteError, match="the ingest service does not answer TestSource"):
        await ask(requester, "orders")
    await subscription.stop()
    await requester.stop()


class RefusingBus(InMemoryBus):
    """A bus whose broker does not take messages (down, or refusing)."""

    async def publish_raw(self, topic: str, *, key: bytes, value: bytes, headers: Headers) -> None:
        raise ConnectionError("broker down")


class SilentBus(InMemoryBus):
    """A bus whose publish never returns (a broker that accepts the connection and then stalls)."""

    async def publish_raw(self, topic: str, *, key: bytes, value: bytes, headers: Headers) -> None:
        await asyncio.sleep(3600)


async def test_a_bus_that_does_not_take_the_request_is_unavailable_at_once() -> None:
    requester = Requester(RefusingBus(prefix=PREFIX), timeout_seconds=5)
    started = time.monotonic()
    with pytest.raises(Unavailable) as raised:
        await ask(requester, "orders")
    # Refused at once, not after waiting the 5 s timeout.
    assert not isinstance(raised.value, TimedOut) and time.monotonic() - started < 4
    assert str(raised.value) == (
        "the ingest service cannot be asked for the source's health check now: the message bus did not "
        "take the request (ConnectionError); try again shortly"
    )
    await requester.stop()


async def test_a_stalled_bus_is_unavailable_within_the_timeout() -> None:
    requester = Requester(SilentBus(prefix=PREFIX), timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not take the request \(TimeoutError\)"):
        await ask(requester, "orders")
    assert time.monotonic() - started < 3  # the 0.3 s timeout, not the hour the publish would take
    await requester.stop()
