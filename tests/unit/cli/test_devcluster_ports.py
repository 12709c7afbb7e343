"""The dev cluster starts a worker again on another metrics port when something took its port first."""

import subprocess
import sys
from pathlib import Path

import pytest

from lockflow.devcluster import MAX_PORT_RETRIES, DevCluster

CLASH = "import sys; print('OSError: [Errno 98] Address already in use'); sys.exit(1)"
OTHER = "import sys; print('something else broke'); sys.exit(1)"
UP = "import time; print('lockflow worker quality ready', flush=True); time.sleep(30)"


def _cluster(tmp_path: Path, scripts: list[str]) -> tuple[DevCluster, list[int]]:
    cluster = DevCluster(env={}, logs=tmp_path)
    ports: list[int] = []

    def launch(name: str) -> None:  # a stand-in worker: each start runs the next script
        ports.append(cluster.metrics_ports.setdefault(name, 1))
        log = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        cluster.log_starts[name] = log.tell()
        cluster.processes[name] = subprocess.Popen([sys.executable, "-c", scripts.pop(0)], stdout=log)

    cluster.launch = launch  # type: ignore[method-assign]
    return cluster, ports


def test_a_worker_whose_port_was_taken_starts_again_on_another(tmp_path: Path) -> None:
    cluster, ports = _cluster(tmp_path, [CLASH, UP])
    try:
        cluster.launch("quality")
        cluster.processes["quality"].wait()
        cluster.wait_ready("quality", timeout=20)
        assert len(ports) == 2 and ports[0] != ports[1] == cluster.metrics_ports["quality"]
        assert cluster.port_retries == {"quality": 1}
    finally:
        for process in cluster.processes.values():
            process.kill()


def test_any_other_exit_and_too_many_clashes_are_raised_with_the_log(tmp_path: Path) -> None:
    cluster, _ = _cluster(tmp_path, [OTHER])
    cluster.launch("quality")
    cluster.processes["quality"].wait()
    with pytest.raises(RuntimeError, match="something else broke"):
        cluster.wait_ready("quality", timeout=20)
    cluster, ports = _cluster(tmp_path / "again", [CLASH] * (MAX_PORT_RETRIES + 1))
    (tmp_path / "again").mkdir()
    cluster.launch("quality")
    with pytest.raises(RuntimeError, match="Address already in use"):
        while True:
            for process in cluster.processes.values():
                process.wait()
            cluster.wait_ready("quality", timeout=20)
    assert len(ports) == MAX_PORT_RETRIES + 1
