"""One Bus port, two adapters: Kafka (aiokafka) and in-memory."""

from lockflow.common.bus.port import (
    Bus,
    DeliveredEvent,
    ErrorPolicy,
    Handler,
    RawHandler,
    RawRecord,
    Subscription,
    topic_for,
)

__all__ = [
    "Bus",
    "DeliveredEvent",
    "ErrorPolicy",
    "Handler",
    "RawHandler",
    "RawRecord",
    "Subscription",
    "topic_for",
]
