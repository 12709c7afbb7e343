"""The web UI against the distributed services: the gateway, the auth service and every worker as their
own processes over real Kafka, PostgreSQL, Redis and the S3 store, with the browser at the gateway only.

The gateway forwards the auth service's routes (LOCKFLOW_AUTH_URL), so the browser signs in, refreshes
and reads the audit log at the one address it loaded the app from; the run itself is the same
five-gate walk as against `lockflow up` (frontend/e2e/ui.spec.ts).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_ui import CHROMIUM, TOKEN_SECONDS, USERS, _check, _npx

from lockflow.auth.testing import PASSWORD, admin_headers, create_users, initial_admin_password
from lockflow.cli import SAMPLE
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def ui_cluster(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[DevCluster]:
    """The whole cluster with the UI test's short-lived tokens (the silent refresh is exercised)."""
    env = {
        **cluster_env,
        "LOCKFLOW_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS),
        "LOCKFLOW_CLOCK_SKEW_SECONDS": "0",
    }
    running = DevCluster(env=env, logs=tmp_path / "logs", private=tmp_path / "private")
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_the_gateway_forwards_the_auth_services_routes(ui_cluster: DevCluster) -> None:
    gateway = httpx.Client(base_url=ui_cluster.url, timeout=30)
    auth = httpx.Client(base_url=ui_cluster.auth_url, timeout=30)
    assert gateway.get("/.well-known/jwks.json").json() == auth.get("/.well-known/jwks.json").json()
    people = create_users(gateway, admin_headers(gateway, ui_cluster.home("auth")), {"ana": ["analyst"]})
    assert gateway.get("/auth/me", headers=people["ana"]).json()["username"] == "ana"
    assert gateway.get("/runs", headers=people["ana"]).status_code == 200  # the token works on both
    wrong = gateway.post("/auth/login", json={"username": "ana", "password": "not-the-password"})
    assert wrong.status_code == 401 and "detail" in wrong.json()
    # A body over the gateway's limit is refused before it is forwarded.
    huge = gateway.post(
        "/auth/login", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    ui_cluster.terminate("auth")
    away = gateway.post("/auth/login", json={"username": "ana", "password": PASSWORD})
    assert away.status_code == 503 and away.json()["detail"] == "the auth service is not answering; try again"
    assert gateway.get("/runs", headers=people["ana"]).status_code == 200  # the rest goes on


def test_a_whole_run_in_the_browser_against_the_distributed_services(ui_cluster: DevCluster) -> None:
    """Sign in, upload, five gates with a preview and a loop-back, the approver in a second context,
    the report; at the gateway's address only."""
    assert CHROMIUM.is_file(), "Debian's chromium is missing: run `make ui-deps` (apt-get install chromium)"
    gateway = httpx.Client(base_url=ui_cluster.url, timeout=30)
    home = ui_cluster.home("auth")
    create_users(gateway, admin_headers(gateway, home), USERS)
    env = {
        **os.environ,
        "LOCKFLOW_URL": ui_cluster.url,
        "LOCKFLOW_PASSWORD": PASSWORD,
        "LOCKFLOW_ADMIN_PASSWORD": initial_admin_password(home),
        "LOCKFLOW_SAMPLE": str(SAMPLE),
        "CHROMIUM": str(CHROMIUM),
        "LOCKFLOW_TOKEN_SECONDS": str(TOKEN_SECONDS),
        "LOCKFLOW_SHOTS_PREFIX": "distributed-",
    }
    done = _npx("playwright", "test", "e2e/ui.spec.ts", "--grep", "five gates", env=env, timeout=900)
    print(done.stdout)
    _check(done)
