"""The web UI: its unit tests (vitest), its type check, and Playwright in Debian's chromium against a real
`lockflow up` started here as its own process (embedded mode, a fresh LOCKFLOW_HOME).

`make test` installs what this needs first (`make ui-deps`: npm ci from the registry, chromium from
Debian). Nothing here is skipped: a missing Node, node_modules or chromium fails loudly, naming the fix.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockflow.auth.testing import PASSWORD, admin_headers, create_users, initial_admin_password
from lockflow.cli import SAMPLE
from lockflow.devcluster import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = Path("/usr/bin/chromium")
TOKEN_SECONDS = 30
USERS = {"ana": ["analyst"], "apo": ["approver"], "apo2": ["approver"], "vic": ["viewer"]}


def _npx(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a tool of the frontend's node_modules; the output is kept for the failure message."""
    npx = shutil.which("npx")
    assert npx, "Node (npx) is not installed: run `make ui-deps`"
    assert (FRONTEND / "node_modules").is_dir(), "frontend/node_modules is missing: run `make ui-deps`"
    return subprocess.run(
        [npx, "--no-install", *args],
        cwd=FRONTEND,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{' '.join(done.args)} failed:\n{done.stdout}\n{done.stderr}"


def test_the_ui_unit_tests_pass() -> None:
    _check(_npx("vitest", "run"))


def test_the_ui_type_checks_strictly() -> None:
    _check(_npx("tsc", "--noEmit"))


@pytest.fixture
def served_up(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`lockflow up` on a free port with a fresh home: (base URL, home); the users of the test made.

    A folder of data files is allowed for file sources: `data/sample_sales.csv` (the bundled sample)."""
    port = free_port()
    home = tmp_path / "home"
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SAMPLE, data / SAMPLE.name)
    # Access tokens live 30 s with no leeway: the browser's sessions outlive several, so the silent
    # refresh and the event stream's resume after its token lapsed are exercised, not assumed.
    env = {
        "PATH": "/usr/bin:/bin",
        "LOCKFLOW_HOME": str(home),
        "LOCKFLOW_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS),
        "LOCKFLOW_CLOCK_SKEW_SECONDS": "0",
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(data)]),
    }
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "lockflow.cli", "up", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=url, timeout=30)
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "lockflow up did not answer"
            time.sleep(0.3)
        create_users(client, admin_headers(client, home), USERS)
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_whole_run_in_the_browser(served_up: tuple[str, Path]) -> None:
    """Sign in, upload, five gates (preview at 2, loop-back at 3), approver at 5 in a second context, 409,
    viewer, live inbox, report, audit; axe-core on every page; screenshots in frontend/artifacts/."""
    assert CHROMIUM.is_file(), "Debian's chromium is missing: run `make ui-deps` (apt-get install chromium)"
    url, home = served_up
    served = httpx.get(f"{url}/ui/runs/any-client-route")
    assert served.status_code == 200 and '<div id="root">' in served.text  # deep links answer the app
    assert httpx.get(f"{url}/runs/any").status_code == 401  # API routes win over the app's fallback
    env = {
        **os.environ,
        "LOCKFLOW_URL": url,
        "LOCKFLOW_PASSWORD": PASSWORD,
        "LOCKFLOW_ADMIN_PASSWORD": initial_admin_password(home),
        "LOCKFLOW_SAMPLE": str(SAMPLE),
        "CHROMIUM": str(CHROMIUM),
        "LOCKFLOW_TOKEN_SECONDS": str(TOKEN_SECONDS),
    }
    done = _npx("playwright", "test", "e2e/ui.spec.ts", env=env, timeout=900)
    print(done.stdout)
    _check(done)
    metrics = FRONTEND / "artifacts" / "metrics.json"
    print("UI metrics (run view time to interactive, ms):", metrics.read_text())


def test_sources_admin_and_monitoring_in_the_browser(served_up: tuple[str, Path]) -> None:
    """An analyst adds a file source, tests, edits and runs it (an API source's token never shown, one
    deleted after a confirmation); an admin creates a user and changes roles, a viewer sees why not; the
    monitoring page shows the run live. axe-core on every page; screenshots in frontend/artifacts/."""
    assert CHROMIUM.is_file(), "Debian's chromium is missing: run `make ui-deps` (apt-get install chromium)"
    url, home = served_up
    env = {
        **os.environ,
        "LOCKFLOW_URL": url,
        "LOCKFLOW_PASSWORD": PASSWORD,
        "LOCKFLOW_ADMIN_PASSWORD": initial_admin_password(home),
        "LOCKFLOW_SOURCE_FILE": str(home.parent / "data" / SAMPLE.name),
        "CHROMIUM": str(CHROMIUM),
    }
    done = _npx("playwright", "test", "e2e/pages.spec.ts", env=env, timeout=900)
    print(done.stdout)
    _check(done)
