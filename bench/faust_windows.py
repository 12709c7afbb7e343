"""Does faust-streaming count every record in exactly one closed window across a SIGKILL?

    eval "$(bash scripts/services.sh env)"; python bench/faust_windows.py [--seconds 10] [--rate 100]

The check that decided the stream worker's engine (docs/architecture.md, "Why not faust-streaming"),
run on the version pinned in pyproject.toml. faust-streaming is not one of lockflow's dependencies, so
it runs from its own environment (made once under ~/.cache/lockflow, pip from the registry):

A librdkafka producer sends `rate` records per second for `seconds` seconds into a one-partition
topic (the Kafka timestamp is the event time). A faust worker (its own process) counts them in a
tumbling windowed table (2 s windows, 2 s expiry, changelog topic, the chosen processing guarantee)
and writes each window's count to an output topic when faust closes the window. Twice: once left
alone (the control: the probe itself is right), once SIGKILLed mid-window and started again. Per
run it prints the records produced, the records counted in closed windows, those lost, those
counted twice and the windows never closed, against the counts of the delivery reports. Exit 1 when
the control run is wrong (the probe is broken); the faulted run's result is the finding.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

WINDOW_SECONDS = 2.0
EXPIRES_SECONDS = 2.0
FAUST_VERSION = "faust-streaming==0.15.3"  # the pin in pyproject.toml's constraint-dependencies
PROBE_ENV = Path.home() / ".cache" / "lockflow" / "faust-probe-env"

APP = '''
import json, sys
from datetime import timedelta
import faust

bootstrap, topic, out_topic, guarantee, datadir = sys.argv[1:6]
app = faust.App(
    "probe-" + topic, broker="kafka://" + bootstrap, store="memory://", datadir=datadir,
    processing_guarantee=guarantee, topic_partitions=1, table_cleanup_interval=0.5,
    web_enabled=False, consumer_auto_offset_reset="earliest",
    broker_session_timeout=6.0, broker_heartbeat_interval=1.0,
)
source = app.topic(topic, value_serializer="raw", partitions=1)
windows_out = app.topic(out_topic, value_serializer="raw", partitions=1)

async def closed(key, value):
    """A window faust closed: its start and count, to the output topic."""
    await windows_out.send(value=json.dumps({"start": key[1][0], "count": value}).encode())

counts = app.Table(
    "counts", default=int, partitions=1, on_window_close=closed,
).tumbling({window}, expires=timedelta(seconds={expires}))

@app.agent(source)
async def count(records):
    async for _ in records:
        counts["all"] += 1

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()
'''


def probe_python() -> Path:
    """The Python of an environment holding faust-streaming and librdkafka's client (made once)."""
    python = PROBE_ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PROBE_ENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", FAUST_VERSION, "aiokafka==0.14.0"],
            check=True,
        )
    return python


def start_worker(python: Path, app_file: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """One faust worker process, its output to a log file."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(python), str(app_file), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_started(log: Path, *, workers: int, timeout: float) -> None:
    """Until every worker started has printed faust's start-up "OK" (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while log.read_bytes().count(b" OK ") < workers and time.monotonic() < deadline:
        time.sleep(0.5)


def produce(bootstrap: str, topic: str, *, seconds: float, rate: int, on_half) -> Counter[int]:
    """Send `rate` records a second for `seconds`; the records per window, from the delivery reports."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    per_window: Counter[int] = Counter()

    def delivered(err, msg) -> None:
        if err is None:
            per_window[int(msg.timestamp()[1] // (WINDOW_SECONDS * 1000))] += 1

    started = time.monotonic()
    sent = 0
    halved = False
    while (elapsed := time.monotonic() - started) < seconds:
        while sent < elapsed * rate:
            producer.produce(topic, b'{"n": %d}' % sent, on_delivery=delivered)
            sent += 1
        producer.poll(0)
        if not halved and elapsed > seconds / 2:
            halved = True
            on_half()
        time.sleep(0.01)
    producer.flush(30)
    return per_window


def read_windows(bootstrap: str, topic: str) -> list[dict]:
    """Every window faust wrote to the output topic."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    windows, idle_since = [], time.monotonic()
    while time.monotonic() - idle_since < 3:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            windows.append(json.loads(msg.value()))
            idle_since = time.monotonic()
    consumer.close()
    return windows


def run_once(
    python: Path, bootstrap: str, *, guarantee: str, kill: bool, seconds: float, rate: int, verbose: bool
) -> dict:
    """One probe run: produce, optionally SIGKILL and restart the worker mid-way, compare."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"faustprobe-{uuid.uuid4().hex[:8]}"
    out_topic = f"{topic}.windows"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1), NewTopic(out_topic, 1, 1)]).values():
        future.result()
    work = Path(tempfile.mkdtemp(prefix="faust-probe-"))
    app_file = work / "probe_app.py"
    app_file.write_text(
        APP.replace("{window}", str(WINDOW_SECONDS)).replace("{expires}", str(EXPIRES_SECONDS))
    )
    log = work / "worker.log"
    args = [bootstrap, topic, out_topic, guarantee, str(work / "data")]
    workers = [start_worker(python, app_file, args, log)]
    time.sleep(8)  # faust joins its group and creates the changelog before the first record

    def kill_and_restart() -> None:
        if kill:
            os.killpg(workers[-1].pid, signal.SIGKILL)
            workers[-1].wait()
            workers.append(start_worker(python, app_file, args, log))

    expected = produce(bootstrap, topic, seconds=seconds, rate=rate, on_half=kill_and_restart)
    # Every window closes once the wall clock passes its end by the expiry (faust expires on wall time),
    # after the restarted worker has joined (the dead member leaves after the 6 s session timeout).
    wait_started(log, workers=len(workers), timeout=90)
    time.sleep(WINDOW_SECONDS + EXPIRES_SECONDS + 6)
    closed = read_windows(bootstrap, out_topic)
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:  # a worker stuck in recovery does not stop on SIGTERM
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    counted: Counter[int] = Counter()
    closings: Counter[int] = Counter()
    for window in closed:
        start = int(window["start"] // WINDOW_SECONDS)
        counted[start] += int(window["count"])
        closings[start] += 1
    if verbose:
        print("  produced per window:", dict(sorted(expected.items())))
        print("  counted per window: ", dict(sorted(counted.items())))
    produced = sum(expected.values())
    lost = sum(max(0, n - counted[w]) for w, n in expected.items())
    doubled = sum(max(0, counted[w] - n) for w, n in expected.items())
    return {
        "run": "SIGKILL + restart" if kill else "left alone (control)",
        "produced": produced,
        "counted": sum(counted.values()),
        "lost": lost,
        "counted_twice": doubled,
        "windows": len(expected),
        "never_closed": sum(1 for w in expected if closings[w] == 0),
        "closed_twice": sum(1 for w in closings if closings[w] > 1),
        "log": str(log),
    }


def main() -> int:
    """Run the control and the faulted probe, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rate",
        type=int,
        default=100,
        help="records per second; keep it below what faust keeps up with on the machine: it expires "
        "windows on "
        "the wall clock, so a lagging worker drops records even when nothing fails",
    )
    parser.add_argument("--verbose", action="store_true", help="print the records per window")
    parser.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="exactly_once")
    options = parser.parse_args()
    bootstrap = os.environ.get("LOCKFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    python = probe_python()
    print(
        f"{FAUST_VERSION}, processing_guarantee={options.guarantee}, {WINDOW_SECONDS:g} s tumbling windows, "
        f"{EXPIRES_SECONDS:g} s expiry, {options.rate} records/s for {options.seconds:g} s, Kafka {bootstrap}"
    )
    print(
        f"{'run':<22} {'produced':>8} {'counted':>8} {'lost':>6} {'twice':>6} {'windows':>7} "
        f"{'never closed':>12} {'closed twice':>12}"
    )
    results = []
    for kill in (False, True):
        r = run_once(
            python,
            bootstrap,
            guarantee=options.guarantee,
            kill=kill,
            seconds=options.seconds,
            rate=options.rate,
            verbose=options.verbose,
        )
        results.append(r)
        print(
            f"{r['run']:<22} {r['produced']:>8} {r['counted']:>8} {r['lost']:>6} {r['counted_twice']:>6} "
            f"{r['windows']:>7} {r['never_closed']:>12} {r['closed_twice']:>12}   log: {r['log']}",
            flush=True,
        )
    control = results[0]
    if control["lost"] or control["counted_twice"]:
        print("the control run is wrong: the probe, not faust, is broken")
        return 1
    faulted = results[1]
    verdict = (
        "loses or double-counts windows"
        if faulted["lost"] or faulted["counted_twice"]
        else "kept every window"
    )
    print(f"faust-streaming across a SIGKILL: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
