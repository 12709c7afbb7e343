"""What metrics cost: the instrumentation of one stage command and one consumed record, and one scrape.

Prints figures, asserts nothing. The per-command cost is what `StageWorker.handle` and the Bus port add
to every command (queue wait, duration, outcome, last success, bus outcome); a scrape is what
Prometheus asks of a process every interval (`generate_latest` of its registry, process collector
included). Compare with a stage's own time (milliseconds to minutes: `bench/pipeline.py`).
Run: `.venv/bin/python bench/metrics_overhead.py [--n 200000]`.
"""

import argparse
import time
from datetime import UTC, datetime

from lockflow.common import metrics
from lockflow.common.pipeline import STAGES


def per_command(n: int) -> float:
    """Microseconds the metrics of one handled command take (what the worker and the bus record)."""
    occurred = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(n):
        stage = STAGES[i % len(STAGES)]
        metrics.STAGE_QUEUE_WAIT.labels(stage=stage).observe(metrics.seconds_since(occurred))
        metrics.STAGE_DURATION.labels(stage=stage).observe(0.01)
        metrics.STAGE_MESSAGES.labels(stage=stage, outcome="succeeded").inc()
        metrics.STAGE_LAST_SUCCESS.labels(stage=stage).set(metrics.now_seconds())
        metrics.BUS_MESSAGES.labels(topic=f"lockflow.commands.{stage}", outcome="handled").inc()
    return (time.perf_counter() - started) / n * 1e6


def per_scrape(n: int) -> tuple[float, int]:
    """Milliseconds and bytes of one /metrics answer with every stage's series present."""
    started = time.perf_counter()
    for _ in range(n):
        body, _ = metrics.exposition()
    return (time.perf_counter() - started) / n * 1e3, len(body)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    per_command(1_000)  # warm up (children created, code paths hot)
    print(f"metrics per handled command: {per_command(args.n):.1f} µs ({args.n:,} commands)")
    ms, size = per_scrape(200)
    print(f"one scrape of a worker's registry: {ms:.2f} ms, {size:,} bytes")


if __name__ == "__main__":
    main()
