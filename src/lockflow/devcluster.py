"""Start every lockflow service as its own OS process (distributed mode), for e2e tests and benchmarks."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lockflow.common.runtime import WORKER_NAMES

MAX_PORT_RETRIES = 3


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_command(
    service: str, *, port: int, auth_port: int, metrics_port: int | None = None
) -> tuple[str, list[str], dict[str, str]]:
    """How to start one service as a process: the module to run, its arguments and its own variables."""
    if service == "gateway":
        auth = f"http://127.0.0.1:{auth_port}"
        own = {"LOCKFLOW_JWKS_URL": f"{auth}/.well-known/jwks.json", "LOCKFLOW_AUTH_URL": auth}
        return "lockflow.cli", ["serve", "--port", str(port)], own
    if service == "auth":
        # The gateway forwards logins from loopback: its X-Forwarded-For names the real client, so the
        # failed-login limit per address counts each client, not the gateway.
        proxies = {"LOCKFLOW_TRUSTED_PROXIES": '["127.0.0.1/32"]'}
        return "lockflow.cli", ["serve-auth", "--port", str(auth_port)], proxies
    if service not in WORKER_NAMES:
        raise ValueError(f"unknown service {service!r}")
    # Each service from its own composition root, so none loads another service's code.
    own = {"LOCKFLOW_METRICS_PORT": str(metrics_port)} if metrics_port is not None else {}
    return f"lockflow.{service}.bootstrap", [], own


@dataclass
class DevCluster:
    """The gateway, the auth service and one process per worker, sharing Kafka, PostgreSQL, Redis and the
    artifact store.

    People log in, manage users and share runs at `auth_url` (the auth service's own process); every
    other route is the gateway's at `url`, which verifies tokens with the auth service's JWKS.

    With `private` set, each process gets a folder of its own under it (its home, temp dir and working
    dir: `<private>/<name>/`), as separate machines would, so nothing but the services connects them.
    """

    env: dict[str, str]
    logs: Path
    private: Path | None = None
    port: int = field(default_factory=free_port)
    auth_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Each worker's /metrics, /healthz and /readyz port (LOCKFLOW_METRICS_PORT), kept across restarts.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # Where each process's log stood when it was started: after a restart, only its new lines count.
    log_starts: dict[str, int] = field(default_factory=dict)
    # Workers started again on a new metrics port because another process took theirs first.
    port_retries: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def home(self, name: str) -> Path:
        """The LOCKFLOW_HOME process `name` runs with."""
        return self.private / name / "home" if self.private else Path(self.env["LOCKFLOW_HOME"])

    def _own_dirs(self, name: str) -> tuple[dict[str, str], Path | None]:
        """The env and working dir that give process `name` folders no other process sees."""
        if self.private is None:
            return {}, None
        root = self.private / name
        for sub in ("home", "tmp", "work"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        tmp = str(root / "tmp")
        return {"LOCKFLOW_HOME": str(root / "home"), "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp}, root / "work"

    def metrics_url(self, name: str) -> str:
        """A worker's metrics base URL (/metrics, /healthz, /readyz); the gateway's is its own."""
        return self.url if name == "gateway" else f"http://127.0.0.1:{self.metrics_ports[name]}"

    @property
    def auth_url(self) -> str:
        """The auth service's base URL (login, refresh, users, shares, audit, JWKS)."""
        return f"http://127.0.0.1:{self.auth_port}"

    def _spawn(self, name: str, module: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        own, cwd = self._own_dirs(name)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child process owns it
        self.log_starts[name] = log.tell()
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **self.env, **own, **(env or {})},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start(self, *, timeout: float = 90.0) -> None:
        """Start the workers, the auth service and the gateway; return when each says it is ready."""
        for name in WORKER_NAMES:
            self.launch(name)
        self.launch("auth")
        self.launch("gateway")
        deadline = time.monotonic() + timeout
        for name in (*WORKER_NAMES, "auth", "gateway"):
            self.wait_ready(name, deadline=deadline)

    def launch(self, name: str) -> None:
        """Start one process (a worker by its name, "auth" or "gateway") without waiting for it."""
        metrics_port = (
            None if name in ("gateway", "auth") else self.metrics_ports.setdefault(name, free_port())
        )
        module, args, own = service_command(
            name, port=self.port, auth_port=self.auth_port, metrics_port=metrics_port
        )
        self._spawn(name, module, args, env=own)

    def wait_ready(self, name: str, *, timeout: float = 90.0, deadline: float | None = None) -> None:
        """Return when a launched process is ready: a worker says so, a web service answers /healthz."""
        deadline = deadline if deadline is not None else time.monotonic() + timeout
        if name == "gateway":
            self._wait_healthy(name, self.url, deadline)
        elif name == "auth":
            self._wait_healthy(name, self.auth_url, deadline)
        else:
            self._wait_for_line(name, f"lockflow worker {name} ready", deadline)

    def restart(self, name: str, *, timeout: float = 90.0) -> None:
        """Start one process again and wait until it is ready."""
        self.launch(name)
        self.wait_ready(name, timeout=timeout)

    def kill(self, name: str) -> None:
        """SIGKILL one process (a crash: no shutdown code runs) and reap it."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def terminate(self, name: str) -> None:
        """SIGTERM one process (a controlled stop, as a supervisor does) and wait for it."""
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_healthy(self, name: str, url: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{name} not healthy; see {self.logs}/{name}.log")

    def _wait_for_line(self, name: str, line: str, deadline: float) -> None:
        path = self.logs / f"{name}.log"
        while time.monotonic() < deadline:
            self._check_alive()
            if path.exists() and line in self.log_since_start(name):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not become ready; see {path}")

    def log_since_start(self, name: str) -> str:
        """What the process has logged since it was last started (a restart appends to the same file)."""
        with (self.logs / f"{name}.log").open("rb") as handle:
            handle.seek(self.log_starts.get(name, 0))
            return handle.read().decode(errors="replace")

    def stop_worker(self, name: str) -> None:
        """Terminate one worker process (the others keep running) and wait for it."""
        self.terminate(name)

    def start_worker(self, name: str, *, timeout: float = 60.0) -> None:
        """Start one worker process again; return when it says it is ready."""
        self.restart(name, timeout=timeout)

    def _check_alive(self) -> None:
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            if self._lost_its_port(name):
                # free_port() only finds a port that was free: something (a client's ephemeral port)
                # may bind it before the worker does. Another port, and the worker starts again.
                self.port_retries[name] = self.port_retries.get(name, 0) + 1
                self.metrics_ports[name] = free_port()
                self.launch(name)
                continue
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def _lost_its_port(self, name: str) -> bool:
        """Whether a worker exited because its metrics port was taken (three new ports at most)."""
        return (
            name in self.metrics_ports
            and self.port_retries.get(name, 0) < MAX_PORT_RETRIES
            and "Address already in use" in self.log_since_start(name)
        )

    def stop(self) -> None:
        """Terminate every process and wait for it."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
