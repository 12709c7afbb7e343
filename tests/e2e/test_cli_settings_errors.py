"""Every command that reads settings refuses a bad LOCKFLOW_* value in one line naming it, exit 2.

Each case is the `lockflow` command in its own process, as a person would run it: no traceback, no
pydantic report, and never the value of a secret or of a URL (which may carry a password).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = {
    "worker": ["worker", "quality"],
    "ingest worker": ["worker", "ingest"],
    "serve": ["serve", "--port", "1"],
    "serve-auth": ["serve-auth", "--port", "1"],
    "up": ["up", "--port", "1"],
    "run": ["run", "--yes"],
    "resume": ["resume", "no-such-run"],
    "admin create": ["admin", "create", "--password-stdin"],
    "source list": ["source", "list"],
    "source add": ["source", "add", "x", "--type", "file", "--config", "nope.yaml"],
}


def lockflow(args: list[str], home: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`lockflow ARGS` with only these LOCKFLOW_* variables set (the real services' ones removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    env.update(LOCKFLOW_HOME=str(home), **variables)
    if args[0] in ("run", "resume"):
        args = [*args, "--home", str(home)]
    return subprocess.run(
        [sys.executable, "-m", "lockflow.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], starts: str) -> str:
    """Exit 2 with exactly one line, on stderr, beginning as given."""
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(starts), done.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_kafka_bootstrap_is_one_line_naming_it_in_every_command(tmp_path: Path, command: str) -> None:
    done = lockflow(COMMANDS[command], tmp_path, LOCKFLOW_KAFKA_BOOTSTRAP="kafka-without-a-port")
    line = assert_one_line(done, "error: LOCKFLOW_KAFKA_BOOTSTRAP: must be host:port")
    assert line.endswith("(got 'kafka-without-a-port')")


@pytest.mark.parametrize("command", ["worker", "up", "run", "admin create", "source list"])
def test_the_default_secret_outside_development_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    done = lockflow(COMMANDS[command], tmp_path, LOCKFLOW_ENVIRONMENT="production")
    assert_one_line(done, "error: LOCKFLOW_SECRET_KEY must be set to a non-default value in production")


@pytest.mark.parametrize(
    ("command", "variables", "starts"),
    [
        (
            "up",
            {"LOCKFLOW_ACCESS_TOKEN_SECONDS": "5"},
            "error: LOCKFLOW_ACCESS_TOKEN_SECONDS must be between",
        ),
        (
            "serve-auth",
            {"LOCKFLOW_ARGON2_TIME_COST": "1"},
            "error: LOCKFLOW_ARGON2_MEMORY_KIB/LOCKFLOW_ARGON2_TIME_COST",
        ),
        ("admin create", {"LOCKFLOW_ACCESS_TOKEN_SECONDS": "5"}, "error: LOCKFLOW_ACCESS_TOKEN_SECONDS"),
        # The gateway alone verifies tokens against the auth service's key set: it must be named.
        ("serve", {}, "error: LOCKFLOW_JWKS_URL must name the auth service's key set"),
        ("worker", {"LOCKFLOW_LOG_LEVEL": "LOUD"}, "error: LOCKFLOW_LOG_LEVEL: must be one of DEBUG, INFO"),
        (
            "ingest worker",
            {"LOCKFLOW_MAX_FILE_BYTES": "lots"},
            "error: LOCKFLOW_MAX_FILE_BYTES: Input should be",
        ),
        ("run", {"LOCKFLOW_ALLOWED_DIRS": "/data"}, "error: LOCKFLOW_ALLOWED_DIRS: cannot be parsed"),
        ("source list", {"LOCKFLOW_MODE": "cluster"}, "error: LOCKFLOW_MODE: Input should be 'embedded' or"),
        (
            "up",
            {"LOCKFLOW_UPLOADS_PER_MINUTE": "many"},
            "error: LOCKFLOW_UPLOADS_PER_MINUTE: Input should be",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    tmp_path: Path, command: str, variables: dict[str, str], starts: str
) -> None:
    assert_one_line(lockflow(COMMANDS[command], tmp_path, **variables), starts)


@pytest.mark.parametrize("command", ["worker", "source list"])
def test_a_bad_database_url_is_named_without_repeating_it(tmp_path: Path, command: str) -> None:
    url = "postgresql+nodriver://lockflow:hunter2@db.internal/lockflow"
    done = lockflow(COMMANDS[command], tmp_path, LOCKFLOW_DATABASE_URL=url)
    assert_one_line(done, "error: LOCKFLOW_DATABASE_URL: not a database URL lockflow can use")
    assert "hunter2" not in done.stderr and "db.internal" not in done.stderr


def test_a_worker_that_cannot_reach_kafka_says_so_in_one_line_after_its_json_log(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        done = lockflow(
            ["worker", "quality"],
            tmp_path,
            LOCKFLOW_MODE="distributed",
            LOCKFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
            LOCKFLOW_LOG_LEVEL="WARNING",
        )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    *logged, last = done.stderr.splitlines()
    assert last.startswith(f"error: cannot reach Kafka at 127.0.0.1:{port} (LOCKFLOW_KAFKA_BOOTSTRAP)")
    assert len(logged) in (1, 2, 3) and all(json.loads(line)["logger"] == "aiokafka" for line in logged)
