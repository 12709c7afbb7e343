"""Figures for the whole pipeline; prints them, asserts nothing.

1. Embedded demo on the bundled sample: wall time and peak memory of `lockflow run --yes`.
2. Distributed (each service its own process, real Kafka + PostgreSQL + Redis): the time from a
   decision's POST to the next stage's command picked up by its worker (the worker's
   `stage_started` log line), median and p99 over the gates of --runs runs; once as shipped (the
   outbox relay woken by the commit) and once with LOCKFLOW_OUTBOX_WAKE=false (the peer: every
   outbox row waits for the relays' sweep, LOCKFLOW_OUTBOX_SWEEP_SECONDS=1).

Needs the services for part 2: `bash scripts/services.sh up && eval "$(bash scripts/services.sh env)"`.
Run: `.venv/bin/python bench/pipeline.py [--runs 20] [--skip-sweep-only]`. The load average is printed
with the figures.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from lockflow.auth.testing import admin_headers, create_users, share_run
from lockflow.devcluster import DevCluster

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "lockflow" / "data" / "sample_sales.csv"
ANSWERS = {
    "source_review": ("approve", {}),
    "quality_review": ("accept_as_is", {}),
    "analytics_review": ("accept", {}),
    "insight_review": ("accept", {}),
}


def embedded_demo() -> None:
    """Time the README's first command's job and read its peak RSS."""
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "lockflow.cli", "run", str(SAMPLE), "--yes", "--home", home],
            # Embedded defaults: not the services' database or broker from the environment.
            env={k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")},
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"demo failed:\n{done.stdout}\n{done.stderr}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = sum(1 for _ in SAMPLE.open()) - 1
    print(f"embedded demo ({rows} rows, every stage, --yes): wall {wall:.2f} s, peak RSS {peak_mib:.0f} MiB")


def _stage_starts(logs: Path) -> list[tuple[datetime, str]]:
    starts = []
    for path in logs.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"stage_started"' in line:
                entry = json.loads(line)
                starts.append(
                    (datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")), entry["run_id"])
                )
    return sorted(starts)


def _drive(
    client: httpx.Client, run_id: str, posts: list[tuple[datetime, str]], approver: dict[str, str]
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] == "completed":
            return
        if run["status"] in ("failed", "aborted"):
            raise SystemExit(f"run {run_id} ended {run['status']}: {run['error']}")
        for request in client.get("/decisions", params={"run_id": run_id}).json():
            option, params = ANSWERS.get(request["gate"], ("choose", None))
            if params is None:
                params = {"selected": [i["id"] for i in request["context"]["items"]][:3]}
            posted = datetime.now(UTC)
            # Gate 5 is the approver's (not the run's starter: separation of duties).
            headers = approver if request["gate"] == "action_selection" else None
            client.post(
                f"/decisions/{request['id']}", json={"option": option, "params": params}, headers=headers
            ).raise_for_status()
            posts.append((posted, run_id))
        time.sleep(0.02)
    raise SystemExit(f"run {run_id} did not complete")


def load() -> str:
    """The 1/5/15-minute load averages and the core count."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def distributed_decision_latency(runs: int, *, wake: bool = True) -> list[float]:
    """POST -> next stage_started (ms) over every gate of `runs` runs; printed as median and p99."""
    base = os.environ.get("LOCKFLOW_DATABASE_URL")
    if not base or not os.environ.get("LOCKFLOW_KAFKA_BOOTSTRAP"):
        raise SystemExit('start the services first: eval "$(bash scripts/services.sh env)"')
    name = f"lockflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    with tempfile.TemporaryDirectory() as work:
        env = {
            "LOCKFLOW_MODE": "distributed",
            "LOCKFLOW_DATABASE_URL": base.rsplit("/", 1)[0] + f"/{name}",
            "LOCKFLOW_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "LOCKFLOW_HOME": work,
            "LOCKFLOW_ARTIFACT_DIR": f"{work}/artifacts",
            "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(SAMPLE.parent)]),
            "LOCKFLOW_OUTBOX_WAKE": "true" if wake else "false",
            "LOCKFLOW_OUTBOX_SWEEP_SECONDS": "1",
        }
        cluster = DevCluster(env=env, logs=Path(work) / "logs")
        posts: list[tuple[datetime, str]] = []
        try:
            # Inside the try: a start that times out (a loaded machine) still stops what it launched.
            cluster.start()
            client = httpx.Client(base_url=cluster.url, timeout=30)
            auth = httpx.Client(base_url=cluster.auth_url, timeout=30)
            people = create_users(
                auth, admin_headers(auth, Path(work)), {"analyst": ["analyst"], "approver": ["approver"]}
            )
            client.headers.update(people["analyst"])
            started = time.perf_counter()
            for _ in range(runs):
                run_id = client.post(
                    "/runs", json={"path": str(SAMPLE), "goal": {"target": "revenue"}}
                ).json()["id"]
                share_run(auth, people["analyst"], run_id, "approver")
                _drive(client, run_id, posts, people["approver"])
            elapsed = time.perf_counter() - started
            starts = _stage_starts(cluster.logs)
        finally:
            cluster.stop()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    latencies = []
    for posted, run_id in posts:
        following = [t for t, r in starts if r == run_id and t >= posted]
        if following:
            latencies.append((min(following) - posted).total_seconds() * 1000)
    label = "outbox woken at commit" if wake else "sweep only (LOCKFLOW_OUTBOX_WAKE=false)"
    print(
        f"distributed, {label}: {runs} runs x 5 gates in {elapsed:.1f} s "
        f"({elapsed / runs:.1f} s per run incl. decisions); {load()}"
    )
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"  decision POST -> next stage's command picked up: median {statistics.median(latencies):.0f} ms, "
        f"p90 {cuts[89]:.0f} ms, p99 {cuts[98]:.0f} ms, max {max(latencies):.0f} ms (n={len(latencies)})"
    )
    return latencies


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--skip-distributed", action="store_true")
    parser.add_argument("--skip-sweep-only", action="store_true", help="not the sweep-only peer")
    args = parser.parse_args()
    print(f"start: {load()}")
    embedded_demo()
    if not args.skip_distributed:
        woken = distributed_decision_latency(args.runs, wake=True)
        if not args.skip_sweep_only:
            swept = distributed_decision_latency(args.runs, wake=False)
            print(
                f"  median {statistics.median(swept) / statistics.median(woken):.1f}x lower with the "
                "wake-up than with the sweep alone"
            )
    print(f"end: {load()}")
