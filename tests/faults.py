"""Private Kafka, PostgreSQL and Redis instances that a fault drill may stop, kill and restart.

The shared services of `scripts/services.sh` are used by every other test, so a drill never
touches them: it starts its own on free ports in a temp folder, the same way the script does
(Kafka's jars from the script's cache, KRaft storage formatted once; PostgreSQL from Debian's
binaries, run as the `postgres` user when we are root; `redis-server` without persistence), and
removes them afterwards. Each start waits until the service really answers; a service that
cannot start fails the test with the end of its log.
"""

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lockflow.devcluster import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
HOST = "127.0.0.1"
CACHE = Path(os.environ.get("LOCKFLOW_CACHE", Path.home() / ".cache" / "lockflow"))
KAFKA_VERSION = os.environ.get("LOCKFLOW_KAFKA_VERSION", "4.1.1")
KAFKA_LIBS = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
PG_BIN = Path(os.environ.get("LOCKFLOW_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def new_cluster_id() -> str:
    """A random KRaft cluster id the storage tool accepts as an argument."""
    # The tool reads an id starting with "-" as an option (Kafka's own Uuid.randomUuid avoids them).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def private_dir(name: str) -> Path:
    """A fresh folder under /tmp that a service's own user (postgres) can reach."""
    return Path(tempfile.mkdtemp(prefix=f"lockflow-drill-{name}-", dir="/tmp"))


@dataclass
class PrivateKafka:
    """One combined KRaft broker+controller, like scripts/services.sh's, on its own ports and folder."""

    root: Path = field(default_factory=lambda: private_dir("kafka"))
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for clients."""
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        """The broker's console output."""
        return self.root / "server.log"

    def _java(self, *args: str, tool: bool = False) -> list[str]:
        memory = (
            ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dlockflow.kafka.loglevel=WARN"]
            if tool
            else ["-Xmx384m", "-Xms128m"]
        )
        return [
            "java",
            *memory,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={SCRIPTS / 'kafka' / 'log4j2.xml'}",
            "-cp",
            f"{KAFKA_LIBS}/*",
            *args,
        ]

    def _configure(self) -> Path:
        if not (KAFKA_LIBS / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            raise RuntimeError(f"no Kafka jars in {KAFKA_LIBS}: run `bash scripts/services.sh up` once")
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        template = (SCRIPTS / "kafka" / "server.properties.template").read_text()
        config = self.root / "server.properties"
        config.write_text(
            template.replace("@KAFKA_PORT@", str(self.port))
            .replace("@CONTROLLER_PORT@", str(self.controller_port))
            .replace("@LOG_DIRS@", str(data))
        )
        if not (data / "meta.properties").exists():
            # A cluster id is 16 random bytes in URL-safe base64; made here to spare a JVM start.
            cluster_id = new_cluster_id()
            subprocess.run(
                self._java(
                    "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), tool=True
                ),
                check=True,
                capture_output=True,
                timeout=120,
            )
        return config

    def start(self, *, timeout: float = 120.0) -> None:
        """Start the broker and return once a client's metadata request succeeds."""
        config = self._configure()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}:\n{_tail(self.log)}")
            if _port_open(self.port) and _kafka_answers(self.bootstrap):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Kafka did not answer on {self.bootstrap}:\n{_tail(self.log)}")

    def stop(self, *, timeout: float = 60.0) -> None:
        """SIGTERM (a controlled shutdown) and wait; SIGKILL if it takes too long."""
        _stop(self.process, timeout=timeout)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same ports and data."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Kill (its data is thrown away, so no controlled shutdown is waited for) and delete the folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


def _kafka_answers(bootstrap: str) -> bool:
    """True when the broker serves a metadata request (the port opens before it does)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def ask() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    try:
        asyncio.run(asyncio.wait_for(ask(), timeout=8))
        return True
    except Exception:
        return False


def _stop(process: subprocess.Popen[bytes] | None, *, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user (as services.sh does)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temp folder), trust auth on loopback TCP only."""

    root: Path = field(default_factory=lambda: private_dir("pg"))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        """The cluster's data folder."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's log."""
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for a database of this cluster."""
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            _as_postgres([str(PG_BIN / args[0]), *args[1:]]),
            capture_output=True,
            timeout=timeout,
            cwd="/",
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace')}\n{_tail(self.log)}"
            )

    def start(self) -> None:
        """initdb on first start, then start the server and wait until it accepts connections."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"
            )
        options = f"-p {self.port} -c listen_addresses={HOST} -c unix_socket_directories='' -c fsync=off"
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options
        )

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server (fast: roll back open transactions and close every connection)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def restart(self) -> None:
        """Stop (every client connection is cut) and start again."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop and delete the cluster."""
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server of its own, without persistence."""

    root: Path = field(default_factory=lambda: private_dir("redis"))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """A redis:// URL."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self, *, timeout: float = 30.0) -> None:
        """Start and wait for PONG."""
        import redis

        log = self.root / "redis.log"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--dir",
                str(self.root),
                "--logfile",
                str(log),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{_tail(log)}")
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise TimeoutError(f"Redis did not answer on {self.url}:\n{_tail(log)}")

    def stop(self) -> None:
        """SIGTERM and wait."""
        _stop(self.process, timeout=20)
        self.process = None

    def remove(self) -> None:
        """Stop and delete the folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def cluster_env(
    root: Path, *, kafka_bootstrap: str, database_url: str, redis_url: str, topic_prefix: str, **extra: str
) -> dict[str, str]:
    """The environment of a distributed deployment (every process the same) on these services."""
    from lockflow.auth.keys import generate_private_pem

    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "LOCKFLOW_MODE": "distributed",
        "LOCKFLOW_ENVIRONMENT": "test",
        "LOCKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOCKFLOW_DATABASE_URL": database_url,
        "LOCKFLOW_REDIS_URL": redis_url,
        "LOCKFLOW_TOPIC_PREFIX": topic_prefix,
        "LOCKFLOW_HOME": str(root / "home"),
        "LOCKFLOW_ARTIFACT_DIR": str(root / "artifacts"),
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(data_dir)]),
        "LOCKFLOW_LOG_LEVEL": "INFO",
        # Distributed mode verifies tokens with one key shared by every process (kept across restarts).
        "LOCKFLOW_SIGNING_KEY": generate_private_pem().decode(),
        **extra,
    }


class Throttle:
    """Slow a process down by stopping it most of the time (SIGSTOP/SIGCONT) and giving it the
    lowest CPU priority, so a drill can catch a stage that takes milliseconds while it runs, even
    when a busy machine wakes the throttling thread late. Killing a stopped process works."""

    def __init__(self, pid: int, *, run_ms: float = 2, stop_ms: float = 98) -> None:
        self.pid, self.run_s, self.stop_s = pid, run_ms / 1000, stop_ms / 1000
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            while not self._done.is_set():
                os.kill(self.pid, signal.SIGSTOP)
                time.sleep(self.stop_s)
                os.kill(self.pid, signal.SIGCONT)
                time.sleep(self.run_s)
        except ProcessLookupError:
            return

    def __enter__(self) -> "Throttle":
        self._priority = os.getpriority(os.PRIO_PROCESS, self.pid)
        os.setpriority(os.PRIO_PROCESS, self.pid, 19)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
        # Raising a priority again needs root; a process the drill killed is gone anyway.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, self.pid, self._priority)


# The routes the auth service serves itself (distributed mode); every other one is the gateway's.
AUTH_ROUTES = ("/auth", "/shares", "/audit")
# Auto-approve: what the drills answer at each gate (gate 5 by the approver, with every action).
ANSWERS: dict[str, tuple[str, dict[str, Any]]] = {
    "source_review": ("approve", {}),
    "quality_review": ("accept_as_is", {}),
    "analytics_review": ("accept", {}),
    "insight_review": ("accept", {}),
    "action_selection": ("choose", {"selected": "all"}),
}
GATES = list(ANSWERS)
# The facts of a run whose gates are answered as above, in order (commands are not counted here:
# a re-sent command is a new attempt, not a duplicate).
FACTS = [
    "RunRequested",
    "SourceIngested",
    "DecisionRequested",
    "DecisionMade",
    "QualityAssessed",
    "DecisionRequested",
    "DecisionMade",
    "AnalyticsCompleted",
    "DecisionRequested",
    "DecisionMade",
    "InsightsGenerated",
    "DecisionRequested",
    "DecisionMade",
    "ActionsRecommended",
    "DecisionRequested",
    "DecisionMade",
    "ReportCompiled",
    "RunCompleted",
]


@dataclass
class Pilot:
    """Drives runs through a served gateway as two people would: an analyst who starts runs and
    decides gates 1-4, an approver for gate 5 (separation of duties). Waits tolerate a gateway
    that is briefly away (restarts) by retrying connection errors."""

    url: str
    analyst: dict[str, str]
    approver: dict[str, str]
    admin: dict[str, str]
    auth_url: str = ""  # the auth service's own process: logins, users, shares and the audit log
    timeout: float = 120.0
    # Every 500 the gateway answered: a fault may make it say 503 (try again), never "I broke".
    server_errors: list[str] = field(default_factory=list)

    def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried while the gateway does not answer (restarting) or answers 5xx."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                base = self.auth_url if path.startswith(AUTH_ROUTES) and self.auth_url else self.url
                answer = httpx.request(
                    method, base + path, headers=headers or self.analyst, timeout=30, **kwargs
                )
                if answer.status_code < 500:
                    return answer
                problem = f"{answer.status_code} {answer.text[:300]}"
                if answer.status_code == 500:
                    self.server_errors.append(f"{method} {path}: {problem}")
            except httpx.HTTPError as exc:
                problem = repr(exc)
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: no good answer within {self.timeout}s: {problem}")
            time.sleep(0.3)

    def start_run(self, path: Path) -> str:
        """Start a run on a file; shared with the approver."""
        created = self.call("POST", "/runs", json={"path": str(path), "goal": {"target": "revenue"}})
        assert created.status_code == 201, created.text
        run_id = str(created.json()["id"])
        approver = self.call("GET", "/auth/me", headers=self.approver).json()["username"]
        shared = self.call(
            "POST", "/shares", json={"object_type": "run", "object_id": run_id, "username": approver}
        )
        assert shared.status_code == 204, shared.text
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        """The run as the analyst sees it."""
        answer = self.call("GET", f"/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_for_gate(self, run_id: str, gate: str) -> dict[str, Any]:
        """Poll until the run has an open request at this gate."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            assert run["status"] not in ("failed", "aborted"), f"run ended: {run['status']}: {run['error']}"
            for request in self.call("GET", "/decisions", params={"run_id": run_id}).json():
                if request["gate"] == gate and request["status"] == "open":
                    return dict(request)
            time.sleep(0.2)
        raise AssertionError(f"no open {gate} request within {self.timeout}s: {self.run(run_id)}")

    def decide(self, request: dict[str, Any]) -> None:
        """Answer a request as ANSWERS says (gate 5: every recommended action, by the approver)."""
        option, params = ANSWERS[request["gate"]]
        headers = self.analyst
        if request["gate"] == "action_selection":
            params = {"selected": [item["id"] for item in request["context"]["items"]]}
            headers = self.approver
        body = {"option": option, "params": params, "rationale": "drill"}
        answer = self.call("POST", f"/decisions/{request['id']}", headers=headers, json=body)
        assert answer.status_code == 200, answer.text

    def pass_gate(self, run_id: str, gate: str) -> dict[str, Any]:
        """Wait for the gate and answer it; the request that was answered."""
        request = self.wait_for_gate(run_id, gate)
        self.decide(request)
        return request

    def wait_for_status(self, run_id: str, status: str) -> dict[str, Any]:
        """Poll until the run has this status (fails at once if it failed or was aborted)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] == status:
                return run
            assert run["status"] not in ("failed", "aborted"), f"run ended: {run['status']}: {run['error']}"
            time.sleep(0.2)
        raise AssertionError(f"run did not reach {status}: {self.run(run_id)}")

    def audit(self, run_id: str) -> list[dict[str, Any]]:
        """Every audit record about this run."""
        records: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.call(
                "GET", "/audit", headers=self.admin, params={"after": after, "limit": 1000}
            ).json()
            if not page:
                return [r for r in records if r["run_id"] == run_id]
            records.extend(page)
            after = page[-1]["id"]

    def check_complete(self, run_id: str) -> dict[str, Any]:
        """The run completed with every fact once, every decision once, every decision audited once
        and an intact audit chain; returns the run."""
        run = self.wait_for_status(run_id, "completed")
        assert not self.server_errors, f"the gateway answered 500: {self.server_errors}"
        timeline = self.call("GET", f"/runs/{run_id}/timeline").json()
        event_ids = [e["event_id"] for e in timeline]
        assert len(event_ids) == len(set(event_ids)), "an event is in the timeline twice"
        facts = [e["type"] for e in timeline if not e.get("stage") or e["type"] == "StageFailed"]
        assert facts == FACTS, f"facts lost or duplicated:\n{facts}"
        gates = [e["gate"] for e in timeline if e["type"] == "DecisionRequested"]
        assert gates == GATES, gates
        assert [(d["gate"], d["option"]) for d in run["decisions"]] == [(g, ANSWERS[g][0]) for g in GATES]
        audited = [(r["gate"], r["choice"]) for r in self.audit(run_id) if r["action"] == "decision"]
        assert audited == [(g, ANSWERS[g][0]) for g in GATES], audited
        verify = self.call("GET", "/audit/verify", headers=self.admin).json()
        assert verify["ok"], verify
        succeeded = [a["step"] for a in run["attempts"] if a["status"] == "succeeded"]
        assert len(succeeded) == len(set(succeeded)), f"a step succeeded twice: {run['attempts']}"
        report = self.call("GET", f"/runs/{run_id}/report", params={"format": "json"})
        assert report.status_code == 200, report.text
        assert [d["gate"] for d in report.json()["decisions"]] == GATES
        return run
