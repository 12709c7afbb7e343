"""Load on a served gateway (issue 11, item 8): read latency at a fixed request rate; prints, asserts nothing.

For each mode, a real gateway runs as its own process: `lockflow serve` in distributed mode on a fresh
PostgreSQL database (created through the configured superuser URL, dropped at the end) with Redis and
Kafka, and `lockflow up` in embedded mode on SQLite. Before it starts, N runs for two analysts (ana, bob)
are taken to gate 1 through the real service functions (request_run, the orchestrator's handler, the
ingest handler on a 2,000-row CSV), so each run's `state` holds a real profile. Bob shares a few runs
with ana through the API. Then an open-loop load generator in its own process (asyncio + httpx, Poisson
arrivals at a fixed rate, bounded duration, 127.0.0.1 only) sends, as ana,
`GET /runs?limit=25` and `GET /runs/{id}` (a random run of hers) at each rate and prints the achieved
rate, p50/p95/p99 latency (from each request's scheduled start, so a late request counts its queueing
too) and errors (any answer but 200, or a timeout).

A mode `distributed:N` serves the gateway from N processes (LOCKFLOW_GATEWAY_WORKERS=N).

Run: `eval "$(bash scripts/services.sh env)"; .venv/bin/python bench/gateway.py
[--runs 300] [--rates 50,200,500] [--seconds 10] [--modes distributed,distributed:2,embedded]`.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import create_engine, select, text, update

from lockflow.auth.keys import generate_private_pem
from lockflow.auth.testing import admin_headers, create_users
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.db import Database, OutboxRow
from lockflow.common.events import Event, IngestSource, parse_event
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.worker import StageDeps
from lockflow.devcluster import free_port
from lockflow.ingest.handlers import ingest_source
from lockflow.orchestrator import service
from lockflow.runstore import intake
from lockflow.sources.settings import SourceSettings

USERS = ("ana", "bob")
SHARED_WITH_ANA = 5
PAGE = 25
CLIENTS, CONNECTIONS_PER_CLIENT = 16, 8


# ---- the load generator (its own process) ----------------------------------------------------------


async def _drive(base: str, token: str, paths: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Send requests at `rate` per second (Poisson arrivals) for `seconds`; latencies from schedule.

    Many small clients, not one big one: httpcore's pool scans every connection for every queued
    request, so one client with hundreds of connections becomes the bottleneck itself.
    """
    rng = random.Random(7)
    limits = httpx.Limits(
        max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
    )
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) for _ in range(CLIENTS)
    ]
    try:
        for client in clients:  # warm the connections and the server's caches
            await asyncio.gather(*(client.get(path) for path in paths[:CONNECTIONS_PER_CLIENT]))

        async def one(client: httpx.AsyncClient, path: str, scheduled: float) -> None:
            try:
                answer = await client.get(path)
                if answer.status_code != 200:
                    errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
                    return
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            latencies.append(time.perf_counter() - scheduled)

        loop_start = time.perf_counter()
        at, tasks = loop_start, list[asyncio.Task[None]]()
        while at < loop_start + seconds:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client = clients[len(tasks) % CLIENTS]
            tasks.append(asyncio.create_task(one(client, rng.choice(paths), at)))
            at += rng.expovariate(rate)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - loop_start
    finally:
        for client in clients:
            await client.aclose()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "sent": len(tasks),
        "ok": len(latencies),
        "achieved": len(latencies) / elapsed,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": errors,
    }


def _drive_main(args: argparse.Namespace) -> None:
    job = json.loads(Path(args.drive).read_text())
    result = asyncio.run(_drive(job["base"], job["token"], job["paths"], job["rate"], job["seconds"]))
    print(json.dumps(result))


def _load(
    base: str, token: str, paths: list[str], rate: float, seconds: float, folder: Path
) -> dict[str, Any]:
    """Run the load generator as a separate process and read its figures (with its own CPU time)."""
    job = folder / "job.json"
    job.write_text(
        json.dumps({"base": base, "token": token, "paths": paths, "rate": rate, "seconds": seconds})
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, __file__, "--drive", str(job)], capture_output=True, text=True, timeout=seconds + 120
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result["client_cpu_ms"] = used * 1000 / max(1, result["sent"])
    return result


# ---- seeding through the real service functions ----------------------------------------------------


def _csv(folder: Path) -> Path:
    """A 2,000-row table of mixed columns, so the ingest profile in each run's state is a real one."""
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "channel": rng.choice(["web", "store", "phone"], n),
            "spend": rng.gamma(2.0, 50.0, n).round(2),
            "visits": rng.poisson(4, n),
            "discount": rng.uniform(0, 0.3, n).round(3),
            "signup": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
            "rating": rng.integers(1, 6, n),
            "returned": rng.choice(["yes", "no"], n, p=[0.1, 0.9]),
        }
    )
    frame["revenue"] = (frame["spend"] * 2.5 + frame["visits"] * 10 + rng.normal(0, 20, n)).round(2)
    path = folder / "data" / "orders.csv"
    frame.to_csv(path, index=False)
    return path


def _last_event(db: Database) -> Event:
    with db.transaction() as session:
        row = session.scalars(select(OutboxRow).order_by(OutboxRow.id.desc()).limit(1)).one()
        return parse_event(row.event_json)


def seed(db: Database, folder: Path, runs: int) -> dict[str, list[str]]:
    """Take `runs` runs (alternately ana's and bob's) to gate 1 as the orchestrator and ingest would."""
    path = _csv(folder)
    settings = SourceSettings(
        home=folder / "home", allowed_dirs=[path.parent], environment="test", redis_url=None
    )
    deps = StageDeps(
        artifacts=LocalArtifactStore(folder / "artifacts"), cache=MemoryCache(), db=db, settings=settings
    )
    owned: dict[str, list[str]] = {name: [] for name in USERS}
    for number in range(runs):
        owner = USERS[number % 2]
        run_id = intake.request_run(
            db,
            name=f"orders {number}",
            source=SourceSpec(path=str(path)),
            goal=Goal(target="revenue"),
            requested_by=owner,
        )
        service.handle_event(db, _last_event(db))
        command = _last_event(db)
        assert isinstance(command, IngestSource)
        service.handle_event(db, ingest_source(command, deps))
        owned[owner].append(run_id)
    # These events were applied here by hand; the gateway's relay must not deliver them a second time.
    with db.transaction() as session:
        session.execute(update(OutboxRow).values(published_at=datetime.now(UTC)))
    return owned


def _state_bytes(db: Database) -> float:
    with db.transaction() as session:
        sizes = session.execute(text("SELECT state FROM runs")).scalars().all()
    return sum(len(json.dumps(s) if not isinstance(s, str) else s) for s in sizes) / max(1, len(sizes))


# ---- one gateway per mode ----------------------------------------------------------------------------


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new PostgreSQL database for one bench run, dropped at the end."""
    base = os.environ.get("LOCKFLOW_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        raise SystemExit('distributed mode needs the services: eval "$(bash scripts/services.sh env)"')
    name = f"lockflow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def _process(name: str, command: list[str], env: dict[str, str], folder: Path) -> Iterator[tuple[str, int]]:
    """`lockflow <command>` on a free port until its /healthz answers; its base URL and pid."""
    port = free_port()
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - the child process owns it
    process = subprocess.Popen(
        [sys.executable, "-m", "lockflow.cli", *command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError((folder / f"{name}.log").read_text()[-3000:])
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not become healthy")
            time.sleep(0.3)
        print(f"  ({name}: pid {process.pid}, for py-spy)", flush=True)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextmanager
def gateway(mode: str, folder: Path, database_url: str, workers: int = 1) -> Iterator[tuple[str, str, int]]:
    """`lockflow serve` beside `lockflow serve-auth` (distributed) or `lockflow up` (embedded) on free
    ports: the gateway's base URL, the one people log in at, and the gateway's pid."""
    env = {
        **os.environ,
        "LOCKFLOW_MODE": mode,
        "LOCKFLOW_ENVIRONMENT": "test",
        "LOCKFLOW_DATABASE_URL": database_url,
        "LOCKFLOW_HOME": str(folder / "home"),
        "LOCKFLOW_ARTIFACT_DIR": str(folder / "artifacts"),
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(folder / "data")]),
        "LOCKFLOW_LOG_LEVEL": "WARNING",
        "LOCKFLOW_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
        "LOCKFLOW_GATEWAY_WORKERS": str(workers),
    }
    if mode != "distributed":
        env.pop("LOCKFLOW_REDIS_URL", None)
        with _process(f"gateway-{mode}", ["up"], env, folder) as (base, pid):
            yield base, base, pid
        return
    env["LOCKFLOW_SIGNING_KEY"] = generate_private_pem().decode()
    with _process("auth-distributed", ["serve-auth"], env, folder) as (auth, _):
        jwks = {**env, "LOCKFLOW_JWKS_URL": f"{auth}/.well-known/jwks.json"}
        with _process(f"gateway-{mode}", ["serve"], jwks, folder) as (base, pid):
            yield base, auth, pid


def bench_mode(spec: str, args: argparse.Namespace, rates: list[float]) -> None:
    """Seed, serve (`mode` or `mode:workers`), and print one line per endpoint and rate."""
    mode, _, count = spec.partition(":")
    workers = int(count or 1)
    with tempfile.TemporaryDirectory() as tmp, _database(mode, Path(tmp)) as url:
        folder = Path(tmp)
        (folder / "data").mkdir()
        db = Database(url)
        started = time.perf_counter()
        owned = seed(db, folder, args.runs)
        print(
            f"\n{spec}: {args.runs} runs seeded to gate 1 in {time.perf_counter() - started:.1f} s "
            f"(state JSON {_state_bytes(db) / 1024:.1f} KiB per run)",
            flush=True,
        )
        db.dispose()
        with (
            gateway(mode, folder, url, workers) as (base, auth, pid),
            httpx.Client(base_url=auth, timeout=30) as client,
        ):
            admin = admin_headers(client, folder / "home")
            people = create_users(client, admin, {name: ["analyst"] for name in USERS})
            for run_id in owned["bob"][:SHARED_WITH_ANA]:
                shared = client.post(
                    "/shares",
                    json={"object_type": "run", "object_id": run_id, "username": "ana"},
                    headers=people["bob"],
                )
                shared.raise_for_status()
            token = people["ana"]["Authorization"].removeprefix("Bearer ")
            cases = {
                f"GET /runs?limit={PAGE}": [f"/runs?limit={PAGE}"],
                "GET /runs/{id}": [f"/runs/{run_id}" for run_id in owned["ana"]],
            }
            for case, paths in cases.items():
                for rate in rates:
                    cpu = _cpu_seconds(pid)
                    r = _load(base, token, paths, rate, args.seconds, folder)
                    cpu_ms = (_cpu_seconds(pid) - cpu) * 1000 / max(1, r["ok"])
                    errors = sum(r["errors"].values())
                    print(
                        f"  {case:<20} {rate:>5.0f}/s asked  {r['achieved']:>6.1f}/s ok  "
                        f"p50 {r['p50']:>8.1f} ms  p95 {r['p95']:>8.1f} ms  p99 {r['p99']:>8.1f} ms  "
                        f"errors {errors}{' ' + json.dumps(r['errors']) if errors else ''}  "
                        f"(CPU per request: gateway {cpu_ms:.1f} ms, load generator "
                        f"{r['client_cpu_ms']:.1f} ms; load avg {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants (a gateway's workers), from /proc.

    Per request, it says what a request costs the gateway whatever else the machine is doing.
    """
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_cpu_seconds(int(child)) for child in children)


@contextmanager
def _database(mode: str, folder: Path) -> Iterator[str]:
    if mode == "distributed":
        with fresh_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{folder / 'lockflow.db'}"


def main() -> None:
    """Print the figures (or, with --drive, be the load generator)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rates", default="50,200,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", default="distributed,distributed:2,embedded")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        _drive_main(args)
        return
    # A stopped bench still stops its gateway and drops its database (the `finally` blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rates = [float(r) for r in args.rates.split(",")]
    print(f"{os.cpu_count()} cores; {args.seconds:.0f} s per rate; Poisson arrivals; latency from schedule")
    for mode in args.modes.split(","):
        bench_mode(mode, args, rates)


if __name__ == "__main__":
    main()
