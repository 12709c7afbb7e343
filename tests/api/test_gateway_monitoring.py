"""The gateway's /metrics and /readyz: requests counted by route template (never the path with a run id),
both routes public (probes and Prometheus carry no token)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lockflow.auth.testing import sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path))) as test_client:
        yield test_client


def _requests(client: TestClient) -> dict[tuple[str, str, str], float]:
    text = client.get("/metrics").text
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "lockflow_http_requests"
        for s in family.samples
        if s.name == "lockflow_http_requests_total"
    }


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    headers = sign_in(client, "ana", ["analyst"])
    before = _requests(client)
    for _ in range(2):
        assert client.get("/runs/0192f7a0-0000-7000-8000-000000000001", headers=headers).status_code == 404
    assert client.get("/no/such/route").status_code in (403, 404)
    after = _requests(client)
    key = ("GET", "/runs/{run_id}", "404")
    assert after[key] - before.get(key, 0) == 2
    assert not any("0192f7a0" in route for _, route, _ in after)
    assert any(route == "unmatched" for _, route, _ in after)


def test_metrics_exposes_process_and_build_info_without_a_token(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "lockflow_process_resident_memory_bytes" in response.text
    assert "lockflow_http_request_duration_seconds_bucket" in response.text


def test_readyz_embedded_is_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == []
    assert set(response.json()["checks"]) == {"kafka", "database", "redis", "object_store"}
