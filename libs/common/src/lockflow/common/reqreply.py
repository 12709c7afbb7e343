"""Request/reply over the Bus: a question one process asks another service and waits for.

The requester publishes a `Request` to `<prefix>.requests.<service>` with a fresh correlation id,
its replies topic and the moment it stops waiting; it has a tail on `<prefix>.replies` (no group,
from its end, so every requester process sees every reply and keeps those whose `correlation-id`
header it waits for). The service's `RequestWorker` answers with the request's reply or a
`RequestFailed` naming the error's family, which the requester raises again as the same
`LockflowError`, so callers see the answers and errors they saw when the work ran in their process.
No answer in time is `TimedOut`; a bus that does not take the request is `Unavailable`.

Requests are at most once: the worker's offset is committed when it takes a request, not when it
answers, and nothing retries. A request lost with a crashed worker ends as a timeout for a person
who can ask again; a request that outlived its requester is skipped (`expires_at`).
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import anyio

from lockflow.common.bus import Bus, DeliveredEvent, RawRecord, Subscription
from lockflow.common.bus.port import REPLIES_TOPIC, requests_topic
from lockflow.common.errors import (
    Conflict,
    InvalidEvent,
    InvalidInput,
    LockflowError,
    NotFound,
    TimedOut,
    TooLarge,
    Unavailable,
)
from lockflow.common.events import (
    ErrorKind,
    Event,
    Payload,
    Reply,
    Request,
    RequestFailed,
    RequestFailedPayload,
    parse_event,
    serialize_event,
    utcnow,
)
from lockflow.common.ids import new_id
from lockflow.common.logging import get_logger
from lockflow.common.worker import StageDeps

log = get_logger(__name__)
R = TypeVar("R", bound=Reply)
RequestHandler = Callable[[Request, StageDeps], Reply]
# Kafka's default message limit is 1 MiB; an answer near it is refused by the worker, not the broker.
MAX_REPLY_BYTES = 1_000_000

# Most specific first: TooLarge is an InvalidInput.
_KINDS: tuple[tuple[type[LockflowError], ErrorKind], ...] = (
    (TooLarge, "too_large"),
    (InvalidInput, "invalid_input"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (LockflowError, "refused"),
)
_ERRORS: dict[str, type[LockflowError]] = {kind: cls for cls, kind in _KINDS}


class RemoteError(RuntimeError):
    """The service failed unexpectedly while answering (a bug there); not the caller's input."""


def error_kind(exc: BaseException) -> ErrorKind:
    """The family of an error as it travels in a RequestFailed."""
    return next((kind for cls, kind in _KINDS if isinstance(exc, cls)), "unexpected")


def raise_failure(failed: RequestFailedPayload, *, service: str) -> None:
    """Raise the error a RequestFailed reports, as the class it was raised as in the service."""
    error = _ERRORS.get(failed.kind)
    if error is None:
        raise RemoteError(f"the {service} service failed on {failed.request_type}: {failed.message}")
    raise error(failed.message)


def replies_topic(prefix: str) -> str:
    """The topic every requester's replies arrive on."""
    return f"{prefix}.{REPLIES_TOPIC}"


class Requester:
    """Asks services over the bus and waits for their answers, each within a timeout."""

    def __init__(self, bus: Bus, *, timeout_seconds: float, producer: str = "lockflow") -> None:
        self.bus = bus
        self.timeout_seconds = timeout_seconds
        self.producer = producer
        self._pending: dict[str, asyncio.Future[Event]] = {}
        self._tail: Subscription | None = None
        self._starting = asyncio.Lock()

    @property
    def topic(self) -> str:
        """Where this requester's replies arrive."""
        return replies_topic(self.bus.prefix)

    async def start(self) -> None:
        """Start reading replies (before the first question, so no answer can be missed)."""
        async with self._starting:
            if self._tail is None:
                self._tail = await self.bus.tail_raw(topics=[self.topic], handler=self._on_reply)

    async def stop(self) -> None:
        """Stop reading replies; questions still waiting end as unavailable."""
        if self._tail is not None:
            await self._tail.stop()
            self._tail = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Unavailable("the process is stopping; ask again"))

    async def ask(
        self,
        request_type: type[Request],
        payload: Payload,
        *,
        expect: type[R],
        run_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> R:
        """Send one request and return its reply; or raise what the service raised, TimedOut, Unavailable."""
        timeout = timeout_seconds or self.timeout_seconds
        correlation = new_id()
        request = request_type(  # type: ignore[call-arg]
            run_id=run_id or correlation,
            producer=self.producer,
            correlation_id=correlation,
            reply_to=self.topic,
            expires_at=utcnow() + timedelta(seconds=timeout),
            payload=payload,
        )
        service, what = request_type.service, _purpose(request_type)
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        ends_at = time.monotonic() + timeout
        try:
            await self._send(request, service=service, what=what, ends_at=ends_at)
            try:
                reply = await asyncio.wait_for(future, max(0.0, ends_at - time.monotonic()))
            except TimeoutError:
                log.warning("request_timed_out", service=service, request_type=request.type, seconds=timeout)
                raise TimedOut(
                    f"the {service} service did not answer {what} within {timeout:g}s "
                    f"(LOCKFLOW_REQUEST_TIMEOUT_SECONDS); check that it is running "
                    f"(`lockflow worker {service}`) and try again"
                ) from None
        finally:
            self._pending.pop(correlation, None)
        if isinstance(reply, RequestFailed):
            raise_failure(reply.payload, service=service)
        if not isinstance(reply, expect):
            raise RemoteError(f"the {service} service answered {request.type} with {reply.type}")
        return reply

    async def _send(self, request: Request, *, service: str, what: str, ends_at: float) -> None:
        """Publish before the deadline (reading replies first); a broker that does not take it is
        Unavailable (503), not a hang."""
        try:
            await asyncio.wait_for(self.start(), max(0.0, ends_at - time.monotonic()))
            await asyncio.wait_for(self.bus.publish(request), max(0.0, ends_at - time.monotonic()))
        except LockflowError:
            raise
        except Exception as exc:  # the adapter's own errors (broker down, timeouts): say so in one line
            log.warning("request_not_sent", service=service, request_type=request.type, error=repr(exc))
            raise Unavailable(
                f"the {service} service cannot be asked for {what} now: the message bus did not take the "
                f"request ({type(exc).__name__}); try again shortly"
            ) from exc

    async def _on_reply(self, record: RawRecord) -> None:
        correlation = record.header("correlation-id")
        future = self._pending.get(correlation) if correlation else None
        if future is None or future.done():
            return  # another requester's reply, or one that came after its question timed out
        try:
            future.set_result(parse_event(record.value))
        except InvalidEvent as exc:
            future.set_exception(RemoteError(f"the reply to a request did not match its contract: {exc}"))


def _purpose(request_type: type[Request]) -> str:
    """What a request asks for, as a person reads it ("the preview of gate 2's fixes")."""
    return request_type.purpose or request_type.__name__


@dataclass
class RequestSubscription(Subscription):
    """The request consumer and the answers it has under way; stop() ends both."""

    consumer: Subscription | None = None
    answering: set[asyncio.Task[None]] = field(default_factory=set)

    async def stop(self) -> None:
        """Stop taking requests, then cancel the answers still being worked on."""
        if self.consumer is not None:
            await self.consumer.stop()
        for task in list(self.answering):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass(frozen=True)
class RequestWorker:
    """A service's table of request handlers bound to its dependencies; answers several at once."""

    service: str
    handlers: dict[str, RequestHandler]
    deps: StageDeps
    # A slow source health check must not hold up a preview behind it.
    concurrency: int = 4

    def requests_topic(self, prefix: str) -> str:
        """The topic this service's requests arrive on."""
        return requests_topic(prefix, self.service)

    async def start(self, bus: Bus) -> RequestSubscription:
        """Join the service's request group; each request is answered in a task of its own."""
        subscription = RequestSubscription(topics=[self.requests_topic(bus.prefix)], group="")
        slots = asyncio.Semaphore(self.concurrency)

        async def take(delivered: DeliveredEvent) -> None:
            await slots.acquire()  # at the limit, the consumer waits: back-pressure on the topic
            task = asyncio.create_task(self._answer(bus, delivered.event))
            subscription.answering.add(task)
            task.add_done_callback(subscription.answering.discard)
            task.add_done_callback(lambda _done: slots.release())

        group = f"{bus.prefix}-{self.service}-requests"
        subscription.group = group
        subscription.consumer = await bus.subscribe(topics=subscription.topics, group=group, handler=take)
        return subscription

    async def _answer(self, bus: Bus, request: Event) -> None:
        if not isinstance(request, Request):
            log.warning("request_not_handled", service=self.service, event_type=request.type)
            return
        if request.expires_at <= utcnow():
            log.info("request_expired", service=self.service, request_type=request.type)
            return
        if not request.reply_to.startswith(replies_topic(bus.prefix)):
            log.warning("request_reply_to_refused", service=self.service, reply_to=request.reply_to[:200])
            return
        started = time.monotonic()
        reply = await self._reply(request)
        reply = _within_size(reply, request)
        await bus.publish(reply, topic=request.reply_to)
        log.info(
            "request_answered",
            service=self.service,
            request_type=request.type,
            reply_type=reply.type,
            correlation_id=request.correlation_id,
            seconds=round(time.monotonic() - started, 3),
        )

    async def _reply(self, request: Request) -> Reply:
        handler = self.handlers.get(request.type)
        if handler is None:
            message = f"the {self.service} service does not answer {request.type}"
            return _failed(request, "unexpected", message)
        try:
            return await anyio.to_thread.run_sync(handler, request, self.deps)
        except LockflowError as exc:
            return _failed(request, error_kind(exc), str(exc))
        except Exception as exc:  # a bug: the caller gets a 500, the traceback stays in this log
            log.exception("request_crashed", service=self.service, request_type=request.type, error=repr(exc))
            return _failed(request, "unexpected", f"{type(exc).__name__}: {exc}")


def _failed(request: Request, kind: ErrorKind, message: str) -> Reply:
    payload = RequestFailedPayload(request_type=request.type, kind=kind, message=message[:4000])
    return request.follow(RequestFailed, payload, producer=request.service)


def _within_size(reply: Reply, request: Request) -> Reply:
    """The reply, or a RequestFailed saying it is too large for one message."""
    size = len(serialize_event(reply))
    if size <= MAX_REPLY_BYTES:
        return reply
    return _failed(
        request,
        "too_large",
        f"the answer to {_purpose(type(request))} is {size:,} bytes, more than one message carries "
        f"({MAX_REPLY_BYTES:,}); ask for less (e.g. fewer fixes at once)",
    )
