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

from lockflow.bootstrap import WORKER_NAMES


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DevCluster:
    """The gateway and one process per worker, sharing Kafka, PostgreSQL, Redis and an artifact folder."""

    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.port}"

    # Where each process's log stood when it was last started: a restart appends to the same
    # file, so readiness is looked for after that point.
    log_marks: dict[str, int] = field(default_factory=dict)

    def _spawn(self, name: str, args: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        path = self.logs / f"{name}.log"
        self.log_marks[name] = path.stat().st_size if path.exists() else 0
        log = open(path, "ab")  # noqa: SIM115 - the child process owns it
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "lockflow.cli", *args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start(self, *, timeout: float = 90.0) -> None:
        """Start the workers and the gateway; return when each says it is ready."""
        for name in WORKER_NAMES:
            self._spawn(name, ["worker", name])
        self._spawn("gateway", ["serve", "--port", str(self.port)])
        deadline = time.monotonic() + timeout
        for name in WORKER_NAMES:
            self._wait_for_line(name, f"lockflow worker {name} ready", deadline)
        self._wait_healthy(deadline)

    def _wait_for_line(self, name: str, line: str, deadline: float) -> None:
        path = self.logs / f"{name}.log"
        while time.monotonic() < deadline:
            self._check_alive()
            if path.exists() and line in self.log_since_start(name):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not become ready; see {path}")

    def log_since_start(self, name: str) -> str:
        """What the process has logged since it was last started."""
        with open(self.logs / f"{name}.log", "rb") as log:
            log.seek(self.log_marks.get(name, 0))
            return log.read().decode(errors="replace")

    def _wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"gateway not healthy; see {self.logs}/gateway.log")

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

    def launch(self, name: str) -> None:
        """Start one process again (a worker by its name, or "gateway") without waiting for it."""
        if name == "gateway":
            self._spawn(name, ["serve", "--port", str(self.port)])
        else:
            self._spawn(name, ["worker", name])

    def wait_ready(self, name: str, *, timeout: float = 90.0) -> None:
        """Return when a launched process says it is ready (the gateway: answers /healthz)."""
        deadline = time.monotonic() + timeout
        if name == "gateway":
            self._wait_healthy(deadline)
        else:
            self._wait_for_line(name, f"lockflow worker {name} ready", deadline)

    def restart(self, name: str, *, timeout: float = 90.0) -> None:
        """Start one process again and wait until it is ready."""
        self.launch(name)
        self.wait_ready(name, timeout=timeout)

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

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
