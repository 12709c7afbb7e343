"""OpenTelemetry, set up once per process; W3C trace context carried in Kafka headers."""

from collections.abc import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None

Headers = list[tuple[str, bytes]]


def setup_tracing(
    *, service: str, otlp_endpoint: str | None = None, extra_processors: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """Install the tracer provider for this process (once); export over OTLP only when configured."""
    global _provider
    if _provider is not None:
        for processor in extra_processors:
            _provider.add_span_processor(processor)
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def tracer(name: str = "lockflow") -> trace.Tracer:
    """The process tracer."""
    return trace.get_tracer(name)


def inject_headers(headers: Headers | None = None) -> Headers:
    """Return Kafka headers carrying the current trace context (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    out = list(headers or [])
    out.extend((k, v.encode()) for k, v in carrier.items())
    return out


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    """Extract the trace context a producer put in the headers."""
    carrier = {
        k: v.decode(errors="replace") for k, v in (headers or []) if k in ("traceparent", "tracestate")
    }
    return propagate.extract(carrier)


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """A context whose parent is the given W3C traceparent (used to continue a run's trace)."""
    return propagate.extract({"traceparent": traceparent} if traceparent else {})


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id part of a traceparent header."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) >= 4 else None
