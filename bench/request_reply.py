"""Round trip of one request/reply (a trivial TestSource answer) on real Kafka and on the in-memory bus.

Run: eval "$(bash scripts/services.sh env)"; .venv/bin/python bench/request_reply.py [--asks 200]
Prints p50/p95/max of sequential asks, and the time of the same number asked at once.
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus import Bus
from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.cache import MemoryCache
from lockflow.common.events import (
    Reply,
    Request,
    SourceTested,
    SourceTestedPayload,
    TestSource,
    TestSourcePayload,
)
from lockflow.common.logging import configure_logging
from lockflow.common.models import SourceHealth
from lockflow.common.reqreply import Requester, RequestWorker
from lockflow.common.runtime import request_topics
from lockflow.common.worker import StageDeps


def answer(request: Request, deps: StageDeps) -> Reply:
    """A health check that does nothing: the figure is the transport's."""
    health = SourceHealth(ok=True, reachable=True, authorised=True, readable=True, seconds=0.0)
    return request.follow(SourceTested, SourceTestedPayload(health=health), producer="bench")


async def measure(name: str, worker_bus: Bus, asker_bus: Bus, asks: int, folder: Path) -> None:
    deps = StageDeps(artifacts=LocalArtifactStore(folder), cache=MemoryCache())
    subscription = await RequestWorker(service="ingest", handlers={"TestSource": answer}, deps=deps).start(
        worker_bus
    )
    requester = Requester(asker_bus, timeout_seconds=30)

    async def one() -> float:
        started = time.perf_counter()
        await requester.ask(TestSource, TestSourcePayload(ref="x"), expect=SourceTested)
        return (time.perf_counter() - started) * 1000

    await one()  # the worker's group joins on the first request
    times = sorted([await one() for _ in range(asks)])
    started = time.perf_counter()
    await asyncio.gather(*[one() for _ in range(asks)])
    together = (time.perf_counter() - started) * 1000
    p95 = times[int(len(times) * 0.95) - 1]
    print(
        f"{name:8s} {asks} sequential asks: p50 {statistics.median(times):7.2f} ms  p95 {p95:7.2f} ms  "
        f"max {times[-1]:7.2f} ms;  {asks} at once: {together:8.1f} ms"
    )
    await requester.stop()
    await subscription.stop()


async def main(asks: int) -> None:
    configure_logging(service="bench", level="WARNING")  # one line per answer would drown the figures
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        memory = InMemoryBus(prefix="bench")
        await measure("memory", memory, memory, asks, Path(folder))
        await memory.stop()
        bootstrap = os.environ["LOCKFLOW_KAFKA_BOOTSTRAP"]
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        worker, asker = (KafkaBus(bootstrap=bootstrap, client_id=n, prefix=prefix) for n in ("w", "a"))
        await worker.ensure_topics(request_topics(prefix))
        await worker.start()
        await asker.start()
        await measure("kafka", worker, asker, asks, Path(folder))
        await worker.stop()
        await asker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--asks", type=int, default=200)
    asyncio.run(main(parser.parse_args().asks))
