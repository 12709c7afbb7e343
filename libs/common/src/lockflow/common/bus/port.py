"""The Bus port: publish validated events keyed by run id; consume with an explicit error policy.

Consumers commit an offset only after the handler's effect. An event that fails validation goes
to `<topic>.dlq` with the reason in headers; a handler that keeps failing after the policy's
retries also sends the event to the DLQ, so one poison event never blocks the partition. A failure
the policy calls transient (the database restarting) is not the event's fault: the handler is tried
again, with a growing pause, until it gets through, and nothing is dead-lettered.
"""

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, stop_after_attempt, wait_incrementing

from lockflow.common import metrics
from lockflow.common.errors import InvalidEvent
from lockflow.common.events import Event, parse_event, serialize_event
from lockflow.common.logging import get_logger
from lockflow.common.telemetry import Headers, context_from_headers, inject_headers, tracer

log = get_logger(__name__)

EVENTS_TOPIC = "events"
REPLIES_TOPIC = "replies"


def topic_for(event: Event, prefix: str = "lockflow") -> str:
    """Commands go to their stage's topic, requests to their service's, replies to the shared replies
    topic (unless the request named another); facts to the shared events topic."""
    if event.is_command:
        return f"{prefix}.commands.{event.stage}"
    if event.is_request:
        return requests_topic(prefix, str(getattr(event, "service", "")))
    if event.is_reply:
        return f"{prefix}.{REPLIES_TOPIC}"
    return f"{prefix}.{EVENTS_TOPIC}"


def requests_topic(prefix: str, service: str) -> str:
    """The topic a service's requests arrive on (apart from its commands, so a long stage attempt
    never holds up a question a person waits for)."""
    return f"{prefix}.requests.{service}"


@dataclass(frozen=True)
class DeliveredEvent:
    """An event as a consumer received it."""

    event: Event
    topic: str
    partition: int
    offset: int
    headers: Headers


@dataclass(frozen=True)
class RawRecord:
    """A message as bytes, unvalidated (for dead-letter inspection and tooling)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers

    def header(self, name: str) -> str | None:
        """The first header of that name, decoded."""
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), None)


Handler = Callable[[DeliveredEvent], Awaitable[None]]
RawHandler = Callable[[RawRecord], Awaitable[None]]


def _never(_exc: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class ErrorPolicy:
    """What a consumer does when its handler raises: retry, then dead-letter and move on; or, for a
    transient failure (a dependency away), wait and retry until it is back."""

    retries: int = 2
    backoff_seconds: float = 0.2
    transient: Callable[[BaseException], bool] = _never
    transient_backoff_max_seconds: float = 5.0


@dataclass
class Subscription:
    """A running consumer; stop() ends it."""

    topics: list[str]
    group: str
    task: asyncio.Task[None] | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def stop(self) -> None:
        """Stop consuming and wait for the loop to end."""
        self.stopped.set()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass


class Bus(abc.ABC):
    """Port for publishing and consuming events."""

    def __init__(self, *, prefix: str = "lockflow", error_policy: ErrorPolicy | None = None) -> None:
        self.prefix = prefix
        self.error_policy = error_policy or ErrorPolicy()

    async def start(self) -> None:
        """Connect (no-op for in-memory)."""

    async def stop(self) -> None:
        """Disconnect and stop every subscription."""

    def topic_for(self, event: Event) -> str:
        """The topic this event belongs on."""
        return topic_for(event, self.prefix)

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        """Validate and publish one event, keyed by its run id, with trace context in headers."""
        target = topic or self.topic_for(event)
        raw = serialize_event(event)
        with tracer().start_as_current_span(f"publish {event.type}", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("lockflow.run_id", event.run_id)
            span.set_attribute("messaging.destination.name", target)
            tags = [("event-type", event.type.encode())]
            if event.is_reply and event.correlation_id:
                # A requester skips other requesters' replies by this header, without parsing them.
                tags.append(("correlation-id", event.correlation_id.encode()))
            headers = inject_headers(tags)
            await self.publish_raw(target, key=event.run_id.encode(), value=raw, headers=headers)

    @abc.abstractmethod
    async def publish_raw(self, topic: str, *, key: bytes, value: bytes, headers: Headers) -> None:
        """Send bytes as they are (used for DLQ and for tests of invalid events)."""

    @abc.abstractmethod
    async def subscribe(self, *, topics: list[str], group: str, handler: Handler) -> Subscription:
        """Start consuming topics as a member of group, calling handler for each valid event."""

    @abc.abstractmethod
    async def subscribe_raw(self, *, topics: list[str], group: str, handler: RawHandler) -> Subscription:
        """Consume records as bytes without validation (e.g. a DLQ); committed after the handler."""

    @abc.abstractmethod
    async def tail_raw(self, *, topics: list[str], handler: RawHandler) -> Subscription:
        """Every record published to the topics from now on, as bytes, in no group and never committed.

        Ready when it returns: a record published after that is delivered (a requester subscribes
        before it asks, so no reply can slip past). Every tail sees every record (each requester
        process reads the shared replies topic and keeps its own).
        """

    async def _dispatch(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        headers: Headers,
        handler: Handler,
    ) -> None:
        """Validate, trace and handle one record; dead-letter it if invalid or the handler keeps failing."""
        try:
            event = parse_event(value)
        except InvalidEvent as exc:
            log.warning("event_invalid", topic=topic, offset=offset, reason=str(exc))
            metrics.BUS_MESSAGES.labels(topic=topic, outcome="invalid").inc()
            await self._dead_letter(topic, partition, offset, key, value, headers, f"invalid event: {exc}")
            return
        token = otel_context.attach(context_from_headers(headers))
        try:
            await self._handle_with_policy(
                DeliveredEvent(event, topic, partition, offset, headers), handler, key, value
            )
        finally:
            otel_context.detach(token)

    async def _handle_with_policy(
        self, delivered: DeliveredEvent, handler: Handler, key: bytes | None, value: bytes
    ) -> None:
        attempts = self.error_policy.retries + 1
        step = self.error_policy.backoff_seconds
        # tenacity directly, not lockflow.resilience (which builds on lockflow.common): linear backoff,
        # every Exception retried; cancellation is a BaseException, so a stopping consumer stops.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_incrementing(start=step, increment=step),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._handle_once(delivered, handler, attempt.retry_state.attempt_number)
            metrics.BUS_MESSAGES.labels(topic=delivered.topic, outcome="handled").inc()
        except Exception as exc:
            metrics.BUS_MESSAGES.labels(topic=delivered.topic, outcome="dead_lettered").inc()
            await self._dead_letter(
                delivered.topic,
                delivered.partition,
                delivered.offset,
                key,
                value,
                delivered.headers,
                f"handler failed after {attempts} attempts: {exc!r}",
            )

    async def _handle_once(self, delivered: DeliveredEvent, handler: Handler, attempt: int) -> None:
        """One attempt, waiting out a dependency that is away (not counted as an attempt: the same event
        will succeed once it is back); any other failure is logged and raised."""
        policy = self.error_policy
        waits = 0
        while True:
            try:
                await self._handle_in_span(delivered, handler)
                return
            except Exception as exc:
                event = delivered.event
                if not policy.transient(exc):
                    log.warning(
                        "handler_failed",
                        run_id=event.run_id,
                        event_type=event.type,
                        attempt=attempt,
                        error=repr(exc),
                    )
                    raise
                waits += 1
                growing = policy.backoff_seconds * 2 ** min(waits, 10)
                pause = min(growing, policy.transient_backoff_max_seconds)
                log.warning(
                    "handler_waiting_for_dependency",
                    run_id=event.run_id,
                    event_type=event.type,
                    retry_in=pause,
                    error=repr(exc),
                )
                await asyncio.sleep(pause)

    async def _handle_in_span(self, delivered: DeliveredEvent, handler: Handler) -> None:
        """The handler in its own consumer span; a failure is recorded on the span and raised."""
        event = delivered.event
        # Recorded here once; the span's own recording would add the same exception a second time.
        with tracer().start_as_current_span(
            f"process {event.type}", kind=SpanKind.CONSUMER, record_exception=False
        ) as span:
            span.set_attribute("lockflow.run_id", event.run_id)
            try:
                await handler(delivered)
            except Exception as exc:
                span.record_exception(exc)
                raise

    async def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        headers: Headers,
        reason: str,
    ) -> None:
        dlq_headers = [
            *[(k, v) for k, v in headers if not k.startswith("dlq-")],
            ("dlq-reason", reason[:2000].encode()),
            ("dlq-original-topic", topic.encode()),
            ("dlq-original-partition", str(partition).encode()),
            ("dlq-original-offset", str(offset).encode()),
        ]
        await self.publish_raw(f"{topic}.dlq", key=key or b"", value=value, headers=dlq_headers)
        metrics.DLQ_RECORDS.labels(topic=topic).inc()
