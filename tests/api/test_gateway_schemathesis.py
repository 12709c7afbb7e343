"""Schemathesis against the gateway's OpenAPI with a valid token: no 5xx and no undocumented status code.

The gateway is served by uvicorn on a free port (embedded mode, SQLite, no stage workers: runs are
created but not advanced). Bounded: a few generated cases per operation, so it adds seconds, not minutes.
"""

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from lockflow.auth.testing import PASSWORD, login
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.gateway.testing import served as serve_app

EXAMPLES = 12
# Operations that end the caller's own session are fuzzed with a token of their own.
SESSION_ENDING = {("POST", "/auth/logout"), ("POST", "/auth/password")}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    app = create_app(embedded_settings(tmp, start_workers=False, max_upload_bytes=100_000))
    with serve_app(app) as (base, _port):
        # One user holding every role, so the fuzzer reaches every handler past the role check.
        app.state.auth.create_user(
            username="fuzz", password=PASSWORD, roles=["viewer", "analyst", "approver", "admin"], actor="test"
        )
        yield base


def _fuzz(operation: Any, client: httpx.Client, base: str, statuses: Counter[int]) -> None:
    headers = login(client, "fuzz")
    ends_session = (operation.method.upper(), operation.path) in SESSION_ENDING

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        token = login(client, "fuzz") if ends_session else headers
        response = case.call(base_url=base, headers=token, timeout=30)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    check()


def test_no_server_errors_and_no_undocumented_status_codes(served: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    client = httpx.Client(base_url=served, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    statuses: Counter[int] = Counter()
    for operation in operations:
        _fuzz(operation, client, served, statuses)
    print(dict(statuses))
    # The token was valid: the fuzzer got past authentication to the handlers.
    assert sum(n for code, n in statuses.items() if code < 300) > 50
    assert statuses[401] < sum(statuses.values()) / 10


def test_the_coverage_phase_finds_no_undocumented_status_and_a_right_allow_on_405(
    served: str, tmp_path: Path
) -> None:
    """Schemathesis' coverage phase: malformed and edge-case bodies, unsupported methods, OPTIONS.

    Run through its CLI (the coverage phase is its runner's, not a Hypothesis strategy). Routes that
    would disable the fuzzing user or end its session are left out.
    """
    client = httpx.Client(base_url=served, timeout=30)
    token = login(client, "fuzz")["Authorization"]
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{served}/openapi.json",
        "--header",
        f"Authorization: {token}",
        "--phases",
        "coverage",
        "--checks",
        "not_a_server_error,status_code_conformance,unsupported_method,allow_header_conformance",
        "--exclude-path",
        "/auth/logout",
        "--exclude-path",
        "/auth/password",
        "--exclude-path-regex",
        "^/auth/users/.+",
        "--no-color",
    ]
    # In a scratch folder: the CLI keeps a cache (.schemathesis/) in its working directory.
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    summary = finished.stdout[-6000:]
    assert finished.returncode == 0, summary
    assert "generated" in summary and " passed" in summary, summary
