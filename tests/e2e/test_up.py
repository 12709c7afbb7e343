"""`lockflow up` serves the API with every service in one process (embedded mode)."""

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from lockflow.devcluster import free_port

pytestmark = pytest.mark.e2e


def test_up_serves_a_run_that_can_be_aborted_at_a_gate(tmp_path: Path, sales: pd.DataFrame) -> None:
    port = free_port()
    env = {"PATH": "/usr/bin", "LOCKFLOW_HOME": str(tmp_path / "home")}
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
