"""Figures for a broker outage's log flood; prints them, asserts nothing.

One process logs aiokafka's `Unable connect to node with id 1: ...` at the rate the consumers did in
the 40 s outage of issue 11 (~15,900 records, ~400 per second), once with the repeat limiter of
`lockflow.common.logging` (10 s window) and once through a plain standard-library handler (what the
process wrote before), and counts the lines and bytes each wrote and the cost per record.
Run: `.venv/bin/python bench/log_flood.py [--seconds 40] [--per-second 400]`.
"""

import argparse
import subprocess
import sys
import textwrap

EMIT = """
import logging, sys, time
{configure}
log = logging.getLogger("aiokafka")
error = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9092)")
started = time.perf_counter()
sent = 0
while sent < {seconds} * {per_second}:
    due = started + sent / {per_second}
    pause = due - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    t0 = time.perf_counter()
    log.error("Unable connect to node with id %s: %s", 1, error)
    spent = time.perf_counter() - t0
    sent += 1
    globals().setdefault("cost", []).append(spent)
print(sent, sum(cost) / len(cost) * 1e6, file=sys.__stdout__)
"""
LIMITED = "from lockflow.common.logging import configure_logging\nconfigure_logging(service='bench')"
PLAIN = "logging.basicConfig(stream=sys.stderr, format='%(message)s')"


def measure(configure: str, *, seconds: float, per_second: int) -> tuple[int, float, int, int]:
    """Records sent, µs per record, lines and bytes the process wrote to standard error."""
    code = textwrap.dedent(EMIT).format(configure=configure, seconds=seconds, per_second=per_second)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sent, micros = done.stdout.split()
    return int(sent), float(micros), len(done.stderr.splitlines()), len(done.stderr.encode())


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--per-second", type=int, default=400)
    args = parser.parse_args()
    print(f"outage of {args.seconds:g} s, {args.per_second} connection errors/s in one process")
    print(f"{'handler':<34} {'records':>8} {'lines':>7} {'bytes':>9} {'µs/record':>10}")
    for name, configure in (("lockflow JSON + repeat limiter", LIMITED), ("plain stdlib (before)", PLAIN)):
        sent, micros, lines, size = measure(configure, seconds=args.seconds, per_second=args.per_second)
        print(f"{name:<34} {sent:>8} {lines:>7} {size:>9} {micros:>10.1f}")


if __name__ == "__main__":
    main()
