"""`lockflow cluster`: every service as its own background process on this machine, against real services.

A cluster is a folder (`<home>/clusters/<name>/`) holding what `up` decided once and every later command
reads: `cluster.json` (the endpoints, ports and each process's pid with its start time), the signing key
and the secret key (created once, mode 0600), one log per process, the shared home and the folder runs
may read files from. `down` stops exactly the processes `up` started: a pid counts as ours only while its
start time is the one recorded, so a pid the system has since given to another program is left alone.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lockflow.common.errors import InvalidInput, LockflowError
from lockflow.common.runtime import WORKER_NAMES
from lockflow.devcluster import free_port, service_command

STATE_FILE = "cluster.json"
DEFAULT_NAME = "default"
# The endpoints scripts/services.sh starts (its `env` prints the same), used when none is given.
LOCAL_SERVICES = {
    "LOCKFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    "LOCKFLOW_DATABASE_URL": "postgresql+psycopg2://lockflow:lockflow@127.0.0.1:5432/lockflow",
    "LOCKFLOW_REDIS_URL": "redis://127.0.0.1:6379/0",
}
REPLICABLE = WORKER_NAMES  # the gateway and the auth service each listen on one port
STOP_SECONDS = 20.0


class ClusterError(LockflowError):
    """A cluster could not be started, found or stopped; the message says why and what to do."""


@dataclass
class Member:
    """One process of the cluster: what it is, where it listens, and how to tell it is still ours."""

    name: str  # gateway, auth, orchestrator, a stage; replicas are quality-2, quality-3 ...
    service: str
    pid: int
    started: int  # the process's start time in clock ticks since boot (/proc/<pid>/stat field 22)
    ready_url: str
    log: str


@dataclass
class ClusterState:
    """What `cluster up` started: read by status, logs and down."""

    name: str
    root: str
    url: str
    auth_url: str
    database_url: str
    topic_prefix: str
    members: list[Member] = field(default_factory=list)

    def save(self) -> None:
        """Write the state file (atomically: a reader never sees half of it)."""
        path = Path(self.root) / STATE_FILE
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self), indent=2))
        partial.replace(path)

    @classmethod
    def load(cls, root: Path) -> "ClusterState":
        """The state of the cluster in `root`; ClusterError when none was started there."""
        path = root / STATE_FILE
        if not path.exists():
            raise ClusterError(f"no cluster in {root}; start one with `lockflow cluster up`")
        raw = json.loads(path.read_text())
        members = [Member(**m) for m in raw.pop("members")]
        return cls(**raw, members=members)


@dataclass(frozen=True)
class ClusterOptions:
    """What `cluster up` was asked for; every endpoint falls back to the environment, then to services.sh."""

    home: Path
    name: str = DEFAULT_NAME
    port: int = 8000
    auth_port: int = 8001
    replicas: dict[str, int] = field(default_factory=dict)
    kafka_bootstrap: str | None = None
    database_url: str | None = None
    redis_url: str | None = None
    artifact_url: str | None = None


def cluster_root(home: Path, name: str) -> Path:
    """The folder of cluster `name` under lockflow's home."""
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 40:
        raise InvalidInput(f"cluster name {name!r}: letters, digits, '-' and '_' only, at most 40")
    return home / "clusters" / name


def parse_replicas(values: Iterable[str]) -> dict[str, int]:
    """`quality=2` style options as a mapping; InvalidInput naming the one that is wrong."""
    replicas: dict[str, int] = {}
    for value in values:
        service, _, count = value.partition("=")
        if service not in REPLICABLE:
            raise InvalidInput(f"--replicas {value!r}: the service must be one of {', '.join(REPLICABLE)}")
        if not count.isdigit() or not 1 <= int(count) <= 8:
            raise InvalidInput(f"--replicas {value!r}: the count must be a whole number from 1 to 8")
        replicas[service] = int(count)
    return replicas


def shared_env(options: ClusterOptions, root: Path) -> dict[str, str]:
    """The environment every process of the cluster shares (the same home, key, store and endpoints)."""
    named = options.name != DEFAULT_NAME

    def endpoint(given: str | None, key: str) -> str:
        return given or os.environ.get(key) or LOCAL_SERVICES[key]

    database_url = endpoint(options.database_url, "LOCKFLOW_DATABASE_URL")
    if named and not options.database_url:
        database_url = make_url(database_url).set(database=f"lockflow_{options.name}").render_as_string(False)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        "LOCKFLOW_MODE": "distributed",
        "LOCKFLOW_ENVIRONMENT": "production",
        "LOCKFLOW_HOME": str(root / "home"),
        "LOCKFLOW_KAFKA_BOOTSTRAP": endpoint(options.kafka_bootstrap, "LOCKFLOW_KAFKA_BOOTSTRAP"),
        "LOCKFLOW_DATABASE_URL": database_url,
        "LOCKFLOW_REDIS_URL": endpoint(options.redis_url, "LOCKFLOW_REDIS_URL"),
        "LOCKFLOW_TOPIC_PREFIX": f"lockflow-{options.name}" if named else "lockflow",
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(data)]),
        "LOCKFLOW_SIGNING_KEY_FILE": str(_signing_key(root)),
        "LOCKFLOW_SECRET_KEY": _secret_key(root),
    }
    artifact_url = options.artifact_url or os.environ.get("LOCKFLOW_ARTIFACT_URL")
    if artifact_url:
        env["LOCKFLOW_ARTIFACT_URL"] = artifact_url
    else:  # one machine: one folder every process reads and writes
        env["LOCKFLOW_ARTIFACT_DIR"] = str(root / "artifacts")
    return env


def _signing_key(root: Path) -> Path:
    """The cluster's token signing key (RSA, PEM), created the first time and kept."""
    from lockflow.auth.keys import generate_private_pem

    path = root / "signing-key.pem"
    if not path.exists():
        _write_private(path, generate_private_pem())
    return path


def _secret_key(root: Path) -> str:
    """The cluster's secret key (it seals source secrets), created the first time and kept."""
    path = root / "secret-key"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(48).encode())
    return path.read_text().strip()


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def ensure_database(database_url: str) -> None:
    """Create the cluster's own PostgreSQL database unless it exists (via the server's `postgres` one)."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql") or not url.database:
        return
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    except Exception as exc:  # any driver error means the same to the person starting the cluster
        raise ClusterError(
            f"could not reach or create database {url.database!r} on {url.host}:{url.port}: "
            f"{type(exc).__name__}; is PostgreSQL up (bash scripts/services.sh up)?"
        ) from None
    finally:
        admin.dispose()


def process_start_time(pid: int) -> int | None:
    """The start time of a live process (clock ticks since boot); None if no such process or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def is_running(member: Member) -> bool:
    """Whether the member's pid is still the process `up` started."""
    return process_start_time(member.pid) == member.started


def is_ready(member: Member) -> bool:
    """Whether the member answers its readiness endpoint with 200."""
    try:
        return httpx.get(member.ready_url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start(
    options: ClusterOptions, *, timeout: float = 180.0, report: Callable[[str], None] = print
) -> ClusterState:
    """Start every process detached, wait until each is ready, and record them; stop them all on failure."""
    root = cluster_root(options.home, options.name)
    if (root / STATE_FILE).exists() and any(is_running(m) for m in ClusterState.load(root).members):
        again = "" if options.name == DEFAULT_NAME else f" --name {options.name}"
        raise ClusterError(
            f"cluster {options.name!r} is already running; `lockflow cluster down{again}` first"
        )
    root.mkdir(parents=True, exist_ok=True)
    env = shared_env(options, root)
    ensure_database(env["LOCKFLOW_DATABASE_URL"])
    state = ClusterState(
        name=options.name,
        root=str(root),
        url=f"http://127.0.0.1:{options.port}",
        auth_url=f"http://127.0.0.1:{options.auth_port}",
        database_url=make_url(env["LOCKFLOW_DATABASE_URL"]).render_as_string(hide_password=True),
        topic_prefix=env["LOCKFLOW_TOPIC_PREFIX"],
    )
    for name, service in _members(options.replicas):
        state.members.append(_spawn(name, service, options, env, root))
    state.save()
    try:
        _wait_ready(state, timeout=timeout, report=report)
    except ClusterError:
        stop(state)
        raise
    return state


def _members(replicas: dict[str, int]) -> list[tuple[str, str]]:
    """(process name, service) for every process: each worker times its replicas, then auth and gateway."""
    members = []
    for service in WORKER_NAMES:
        for n in range(1, replicas.get(service, 1) + 1):
            members.append((service if n == 1 else f"{service}-{n}", service))
    return [*members, ("auth", "auth"), ("gateway", "gateway")]


def _spawn(name: str, service: str, options: ClusterOptions, env: dict[str, str], root: Path) -> Member:
    """Start one member in a session of its own (it outlives this command), its output in its log."""
    metrics_port = free_port() if service in WORKER_NAMES else None
    module, args, own = service_command(
        service, port=options.port, auth_port=options.auth_port, metrics_port=metrics_port
    )
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env, **own},
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = process_start_time(process.pid)
    if started is None:
        raise ClusterError(f"{name} exited at once; see {log}")
    if service == "gateway":
        ready = f"http://127.0.0.1:{options.port}/readyz"
    elif service == "auth":
        ready = f"http://127.0.0.1:{options.auth_port}/healthz"
    else:
        ready = f"http://127.0.0.1:{metrics_port}/readyz"
    return Member(name=name, service=service, pid=process.pid, started=started, ready_url=ready, log=str(log))


def _wait_ready(state: ClusterState, *, timeout: float, report: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(state.members)
    while waiting:
        for member in list(waiting):
            if not is_running(member):
                tail = Path(member.log).read_text(errors="replace")[-2000:]
                raise ClusterError(
                    f"{member.name} exited before it was ready; its log ({member.log}) ends:\n{tail}"
                )
            if is_ready(member):
                waiting.remove(member)
                report(f"  {member.name} ready")
        if waiting and time.monotonic() > deadline:
            names = ", ".join(m.name for m in waiting)
            raise ClusterError(f"not ready after {timeout:.0f} s: {names}; see the logs in {state.root}/logs")
        if waiting:
            time.sleep(0.5)


def stop(state: ClusterState, *, wait_seconds: float = STOP_SECONDS) -> list[str]:
    """SIGTERM every member still ours, SIGKILL whoever outlasts `wait_seconds`; the names stopped."""
    ours = [m for m in state.members if is_running(m)]
    for member in ours:
        _signal(member, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while any(is_running(m) for m in ours) and time.monotonic() < deadline:
        time.sleep(0.2)
    for member in ours:
        if is_running(member):
            _signal(member, signal.SIGKILL)
    (Path(state.root) / STATE_FILE).unlink(missing_ok=True)
    return [m.name for m in ours]


def _signal(member: Member, signum: int) -> None:
    try:
        os.kill(member.pid, signum)
    except ProcessLookupError:
        pass


def status_rows(state: ClusterState) -> list[dict[str, Any]]:
    """One row per member: running (still ours), ready (answers its readiness endpoint), where it logs."""
    rows = []
    for member in state.members:
        running = is_running(member)
        rows.append(
            {
                "name": member.name,
                "pid": member.pid,
                "running": running,
                "ready": running and is_ready(member),
                "log": member.log,
            }
        )
    return rows


def member_logs(state: ClusterState, service: str | None) -> list[Member]:
    """The members whose logs `logs [SERVICE]` shows: all, or one service's (its replicas too)."""
    if service is None:
        return state.members
    chosen = [m for m in state.members if service in (m.name, m.service)]
    if not chosen:
        names = ", ".join(sorted({m.service for m in state.members}))
        raise ClusterError(f"no process {service!r} in cluster {state.name!r}; it has: {names}")
    return chosen


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log file."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        return "\n".join(handle.read().decode(errors="replace").splitlines()[-lines:])
