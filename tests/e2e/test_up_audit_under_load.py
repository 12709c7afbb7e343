"""`lockflow up` under a crowd of failed logins while admin commands write to the same SQLite file.

Three OS processes append to one audit chain at once (the server and two `lockflow admin create`);
the chain must stay whole, and X-Forwarded-For from a local client must not change the address logged.
"""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lockflow.auth.testing import PASSWORD, admin_headers
from lockflow.devcluster import free_port

pytestmark = pytest.mark.e2e
CROWD = 60


def _wait_for(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "lockflow up did not answer"
            time.sleep(0.3)


async def _crowd(base: str) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/auth/login",
                    json={"username": f"user{i % 7}", "password": f"guess {i}"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                )
                for i in range(CROWD)
            )
        )
    return [a.status_code for a in answers]


def test_the_chain_stays_whole_across_processes_and_spoofing_changes_nothing(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": "/usr/bin", "LOCKFLOW_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "lockflow.cli"]
    server = subprocess.Popen(
        [*command, "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            _wait_for(client, server)
            admins = [
                subprocess.Popen(
                    [*command, "admin", "create", "--username", f"ops{n}", "--password-stdin"],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                for n in range(2)
            ]
            for admin in admins:
                assert admin.stdin is not None
                admin.stdin.write(f"{PASSWORD}\n".encode())
                admin.stdin.close()
            statuses = asyncio.run(_crowd(base))
            outputs = [admin.stdout.read().decode() if admin.stdout else "" for admin in admins]
            for admin in admins:
                admin.wait(timeout=60)
            assert [admin.returncode for admin in admins] == [0, 0], outputs
            assert statuses == [401] * CROWD
            headers = admin_headers(client, tmp_path / "home")
            verify = client.get("/audit/verify", headers=headers).json()
            rows = client.get("/audit", params={"limit": 1000}, headers=headers).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert verify == {"ok": True, "rows": len(rows), "broken_at": None, "reason": None}
    failed = [r for r in rows if r["action"] == "login_failed"]
    assert len(failed) == CROWD and {r["client"] for r in failed} == {"127.0.0.1"}
    assert sorted(r["subject"] for r in rows if r["action"] == "user_created") == ["admin", "ops0", "ops1"]
