"""The README, run as a newcomer would: its tested shell blocks, in order, as written, in a fresh home.

Blocks fenced as ```bash tested:embedded``` and ```bash tested:distributed``` are joined per path and run
by bash with `set -euo pipefail` (so every command must exit 0) from a checkout-like folder (the repo's
entries linked into it, the files ```yaml file:NAME``` blocks name written beside them). The distributed
path starts the real cluster (`lockflow cluster up`) against the services of scripts/services.sh and
drives a run through all five gates with the README's curl calls.
"""

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_cleanup import delete_topics_with_prefixes
from sqlalchemy import create_engine, text

from lockflow.common.runtime import WORKER_NAMES

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```bash tested:(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
FILE = re.compile(r"^```yaml file:(\S+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
# The cluster the README starts, and what it creates on the shared servers (removed before and after).
CLUSTER = "demo"
DATABASE = f"lockflow_{CLUSTER}"
TOPIC_PREFIX = f"lockflow-{CLUSTER}"


def readme_blocks(path: str) -> str:
    """The README's tested blocks of one path, joined in order."""
    blocks = [body for name, body in BLOCK.findall((ROOT / "README.md").read_text()) if name == path]
    assert blocks, f"README.md has no ```bash tested:{path}``` block"
    return "\n".join(blocks)


def checkout(folder: Path) -> Path:
    """A folder that looks like the repository to a shell (its entries linked), plus the README's files."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git",):
            (folder / entry.name).symlink_to(entry)
    for name, body in FILE.findall((ROOT / "README.md").read_text()):
        (folder / name).write_text(body)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_script(
    script: str, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """The script in bash, stopping at the first failing command; its whole output kept for the verdict."""
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fresh_env(home: Path) -> dict[str, str]:
    """The test's environment without lockflow's settings (a newcomer has none), in a new home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    return {**env, "LOCKFLOW_HOME": str(home), "COLUMNS": "120"}


def test_the_embedded_path_runs_as_written(tmp_path: Path) -> None:
    script = readme_blocks("embedded")
    done = run_script(script, checkout(tmp_path / "checkout"), fresh_env(tmp_path / "home"), timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert done.stdout.count("completed in") == 2, done.stdout[-4000:]


def _drop_cluster_state(database_url: str, bootstrap: str) -> None:
    """What an earlier run of the README left on the shared servers: its database and its topics."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND backend_type = 'client backend'"
            ),
            {"name": DATABASE},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}"'))
    admin.dispose()
    delete_topics_with_prefixes(bootstrap, [TOPIC_PREFIX], wait=True)


@pytest.fixture
def clean_servers(postgres_url: str, kafka_bootstrap: str, redis_url: str) -> Iterator[None]:
    """No trace of the README's cluster on the shared servers, before and after the test."""
    _drop_cluster_state(postgres_url, kafka_bootstrap)
    yield
    _drop_cluster_state(postgres_url, kafka_bootstrap)


def _stop_what_is_left(home: Path) -> list[int]:
    """SIGKILL any process of the README's cluster still running (after a failed test); their pids."""
    state = home / "clusters" / CLUSTER / "cluster.json"
    if not state.exists():
        return []
    left = []
    for member in json.loads(state.read_text())["members"]:
        try:
            os.kill(member["pid"], signal.SIGKILL)
            left.append(member["pid"])
        except ProcessLookupError:
            pass
    return left


def test_the_distributed_path_runs_as_written_through_all_five_gates(
    tmp_path: Path, clean_servers: None
) -> None:
    home = tmp_path / "home"
    env = {
        **fresh_env(home),
        # Ports of its own, so the test never meets another server on 8000/8001 (the README's defaults).
        "LOCKFLOW_CLUSTER_PORT": str(free_port()),
        "LOCKFLOW_CLUSTER_AUTH_PORT": str(free_port()),
    }
    script = readme_blocks("distributed")
    try:
        done = run_script(script, checkout(tmp_path / "checkout"), env, timeout=900)
    finally:
        left = _stop_what_is_left(home)
    output = done.stdout[-6000:] + done.stderr[-6000:]
    assert done.returncode == 0, output
    assert left == [], f"processes of the cluster outlived `cluster down`: {left}"
    processes = 2 + len(WORKER_NAMES)  # the gateway, the auth service, the orchestrator and every worker
    assert f"cluster 'demo' is up: {processes} processes" in done.stdout, output
    assert "# Report" in done.stdout, output  # the report of the run decided through all five gates
    assert f"cluster 'demo': stopped {processes} processes" in done.stdout, output
    assert not (home / "clusters" / CLUSTER / "cluster.json").exists()
    # Created once, private to its owner: the keys the cluster's processes share.
    for key in ("signing-key.pem", "secret-key"):
        assert (home / "clusters" / CLUSTER / key).stat().st_mode & 0o777 == 0o600
