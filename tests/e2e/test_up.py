"""`lockflow up` serves the API with every service in one process (embedded mode)."""

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from lockflow.auth.testing import admin_headers, create_users
from lockflow.devcluster import free_port

pytestmark = pytest.mark.e2e


def test_up_serves_a_run_that_can_be_aborted_at_a_gate(tmp_path: Path, sales: pd.DataFrame) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin", "LOCKFLOW_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "lockflow.cli", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if client.get("/healthz").json()["mode"] == "embedded":
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "lockflow up did not answer"
                time.sleep(0.3)
        # First start: a local admin whose password is in a file only its owner may read.
        password_file = home / "auth" / "initial-admin-password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert client.get("/runs").status_code == 401
        client.headers.update(create_users(client, admin_headers(client, home), {"ana": ["analyst"]})["ana"])
        created = client.post(
            "/runs/upload",
            files={"file": ("s.csv", sales.to_csv(index=False).encode())},
            data={"target": "revenue"},
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        while not (requests := client.get("/decisions", params={"run_id": run_id}).json()):
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        aborted = client.post(
            f"/decisions/{requests[0]['id']}", json={"option": "abort", "rationale": "wrong file"}
        )
        assert aborted.status_code == 200
        while (run := client.get(f"/runs/{run_id}").json())["status"] != "aborted":
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        assert "wrong file" in run["error"]
    finally:
        process.terminate()
        process.wait(timeout=20)
    printed = process.stdout.read().decode() if process.stdout else ""
    assert "created the first user 'admin'" in printed and str(password_file) in printed
    assert f"web UI: open http://127.0.0.1:{port}/ui/" in printed
    assert password_file.read_text().strip() not in printed  # the password is only in the file
