"""structlog JSON logging with run_id and trace_id bound from context, repeated errors rate limited.

Every line a process writes is one JSON object: structlog's own events and the standard library's
records (aiokafka, kafka, faust, uvicorn, sqlalchemy, httpx, alembic, warnings) go through one handler
and one renderer. A warning or error repeated with the same logger and message template (an outage
makes a client log the same connection error thousands of times) is written at most once per window
(10 s); the next line written for it carries `"repeated": N`, the number left out since the last one,
and at exit the last left-out record of each kind is written with its count, so nothing goes uncounted.
"""

import atexit
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog
from opentelemetry import trace

REPEAT_WINDOW_SECONDS = 10.0
# Libraries whose INFO lines are chatter (connection churn, every SQL statement, every request).
NOISY_LOGGERS = ("aiokafka", "kafka", "faust", "uvicorn.access", "httpx", "httpcore", "sqlalchemy")
_REPEATED = "lockflow_repeated"  # the record attribute carrying the count to the renderer
_configured = False


def _add_trace_id(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event_dict.setdefault("trace_id", format(span.trace_id, "032x"))
    return event_dict


def _add_repeated(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    repeated = getattr(event_dict.get("_record"), _REPEATED, 0)
    if repeated:
        event_dict["repeated"] = repeated
    return event_dict


class RepeatLimiter(logging.Filter):
    """Lets the first of a repeated warning or error through, then one per window, counting the rest.

    Records are alike when they share the logger and the message template (the format string of a
    standard-library record, the event name of a structlog one), whatever their arguments.
    """

    def __init__(
        self,
        window: float = REPEAT_WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1024,
    ) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self.max_kinds = max_kinds
        # kind -> [when its last line was written, records left out since, the last one left out]
        self._kinds: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to write the record now; a written one carries the count of those left out before it."""
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, _template(record))
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                seen[2] = record
                return False
            setattr(record, _REPEATED, seen[1] if seen is not None else 0)
            self._kinds[kind] = [now, 0, None]
            self._kinds.move_to_end(kind)
            while len(self._kinds) > self.max_kinds:
                self._kinds.popitem(last=False)
        return True

    def left_out(self) -> list[logging.LogRecord]:
        """The last left-out record of each kind, carrying how many more were left out; then forget them."""
        pending = []
        with self._lock:
            for seen in self._kinds.values():
                if seen[1]:
                    setattr(seen[2], _REPEATED, seen[1] - 1)
                    pending.append(seen[2])
                    seen[1], seen[2] = 0, None
        return pending


def _template(record: logging.LogRecord) -> str:
    if isinstance(record.msg, dict):  # a structlog event routed through the standard library
        return str(record.msg.get("event"))
    return str(record.msg)


def configure_logging(
    *,
    service: str,
    level: str = "INFO",
    stream: TextIO | None = None,
    path: Path | None = None,
    repeat_window: float = REPEAT_WINDOW_SECONDS,
) -> None:
    """Set JSON logs for this process once; later calls are no-ops.

    Lines go to `stream` (standard error by default) or, with `path`, to that file (Python warnings
    too), so a terminal shows only what the program prints.
    """
    global _configured
    if _configured:
        return
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", encoding="utf-8", buffering=1)  # line-buffered: a crash loses nothing
        logging.captureWarnings(True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_id,
    ]
    limiter = RepeatLimiter(repeat_window)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(limiter)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.add_logger_name,
                _add_repeated,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    atexit.register(_write_left_out, handler, limiter)
    _configured = True


def _write_left_out(handler: logging.StreamHandler[TextIO], limiter: RepeatLimiter) -> None:
    """At exit: the count of each kind of record left out since its last line (else it would be lost)."""
    if getattr(handler.stream, "closed", False):  # e.g. a test runner's captured stream, gone by now
        return
    for record in limiter.left_out():
        handler.acquire()
        try:
            handler.emit(record)
        finally:
            handler.release()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger for a module."""
    return structlog.get_logger(name)
