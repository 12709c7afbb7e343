"""`lockflow source add|test` with hostile hosts and names: a clear message and exit code, nothing stored.

The CLI runs as its own process, as a user runs it (its log lines go to stderr, its output to stdout).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOCKFLOW = str(Path(sys.executable).parent / "lockflow")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "db.yaml").write_text("url: mysql://u:p@127.0.0.1:1/db\ntable: t\n")
    values = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    return {
        **values,
        "LOCKFLOW_HOME": str(tmp_path / "home"),
        "LOCKFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'lockflow.db'}",
        "CONFIG": str(tmp_path / "db.yaml"),
        "COLUMNS": "400",  # no wrapped lines
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = subprocess.run([LOCKFLOW, "source", *args], env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_an_internal_database_host_is_refused_with_how_to_allow_it(env: dict[str, str]) -> None:
    code, out, _ = run(env, "add", "shop", "--type", "database", "--config", env["CONFIG"])
    assert code == 2, out
    assert "refused to connect to 127.0.0.1" in out and "add 127.0.0.1 to LOCKFLOW_ALLOW_HOSTS" in out
    assert json.loads(run(env, "list")[1]) == []


def test_an_allowed_host_is_stored_and_a_failed_test_says_only_that_it_could_not_connect(
    env: dict[str, str],
) -> None:
    env = {**env, "LOCKFLOW_ALLOW_HOSTS": '["127.0.0.1"]'}
    assert run(env, "add", "shop", "--type", "database", "--config", env["CONFIG"])[0] == 0
    code, out, err = run(env, "test", "shop")
    assert code == 1
    assert json.loads(out)["message"] == "could not connect to 127.0.0.1:1 (connection failed or timed out)"
    assert "Connection refused" not in out and "Connection refused" in err  # the detail is in the log only


def test_a_name_with_a_slash_is_refused(env: dict[str, str]) -> None:
    code, out, _ = run(env, "add", "shop/2024", "--type", "database", "--config", env["CONFIG"])
    assert code == 2 and "invalid source name 'shop/2024'" in out and "letters, digits" in out
