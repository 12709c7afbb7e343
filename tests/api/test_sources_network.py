"""Sources through the gateway against hostile hosts: refused when stored, one message for every failed
connection (an open port cannot be told from a closed one), and names that are safe in a URL path."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings

UNIFORM = "could not connect to 127.0.0.1:PORT (connection failed or timed out)"


def serve(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path, **overrides))) as test_client:
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The gateway with no allow list: nothing internal may be reached."""
    yield from serve(tmp_path)


@pytest.fixture
def allowing(tmp_path: Path) -> Iterator[TestClient]:
    """The gateway with 127.0.0.1 allowed, as an operator would for a database on the same machine."""
    yield from serve(tmp_path, allow_hosts=["127.0.0.1"])


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("mysql://u:p@127.0.0.1:{port}/db", "127.0.0.1"),  # the reported attack
        ("mysql://u:p@localhost:{port}/db", "localhost"),
        ("mysql://u:p@192.0.2.2/db", "192.0.2.2"),
        ("postgresql://u:p@169.254.169.254:80/db", "169.254.169.254"),
        ("postgresql://u:p@10.0.0.5/db", "10.0.0.5"),
        ("postgresql://u:p@[::1]:{port}/db", "::1"),
        ("postgresql://u:p@[::ffff:127.0.0.1]:{port}/db", "::ffff:127.0.0.1"),
        ("mariadb://u:p@2130706433:{port}/db", "2130706433"),
        ("mariadb://u:p@0177.0.0.1:{port}/db", "0177.0.0.1"),
    ],
)
def test_a_database_on_an_internal_host_is_refused_when_stored(
    client: TestClient, banner_port: tuple[int, list[str]], url: str, host: str
) -> None:
    port, seen = banner_port
    body = {"name": "internal", "type": "database", "config": {"url": url.format(port=port), "table": "t"}}
    response = client.post("/sources", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"refused to connect to {host}" in detail and f"add {host} to LOCKFLOW_ALLOW_HOSTS" in detail
    assert "p@" not in detail  # the URL's password is not echoed
    assert seen == []  # nothing was contacted
    assert client.get("/sources").json() == []


@pytest.mark.parametrize(
    ("kind", "config", "host"),
    [
        ("s3", {"bucket": "lake", "endpoint_url": "http://127.0.0.1:{port}"}, "127.0.0.1"),
        ("s3", {"bucket": "lake", "endpoint_url": "http://169.254.169.254/"}, "169.254.169.254"),
        ("api", {"url": "http://[::ffff:127.0.0.1]:{port}/x"}, "::ffff:127.0.0.1"),
        ("api", {"url": "http://192.0.2.2/x"}, "192.0.2.2"),
    ],
)
def test_api_and_s3_sources_go_through_the_same_guard(
    client: TestClient, banner_port: tuple[int, list[str]], kind: str, config: dict[str, Any], host: str
) -> None:
    port, seen = banner_port
    filled = {k: v.format(port=port) if isinstance(v, str) else v for k, v in config.items()}
    response = client.post("/sources", json={"name": "internal", "type": kind, "config": filled})
    assert response.status_code == 422, response.text
    assert f"add {host} to LOCKFLOW_ALLOW_HOSTS" in response.json()["detail"]
    assert seen == [] and client.get("/sources").json() == []


def test_a_database_url_without_a_host_is_refused(client: TestClient) -> None:
    # No host would mean the server's own socket (libpq) or localhost (PyMySQL).
    for url in ("postgresql:///lockflow", "mysql+pymysql://root@/mysql"):
        response = client.post(
            "/sources", json={"name": "local", "type": "database", "config": {"url": url, "table": "t"}}
        )
        assert response.status_code == 422 and "must name a host" in response.json()["detail"]


def test_an_update_to_an_internal_host_is_refused(allowing: TestClient, tmp_path: Path) -> None:
    body = {"name": "shop", "type": "database", "config": {"url": "mysql://u:p@127.0.0.1/db", "table": "t"}}
    assert allowing.post("/sources", json=body).status_code == 201
    moved = allowing.patch("/sources/shop", json={"config": {"url": "mysql://u:p@10.1.1.1/db"}})
    assert moved.status_code == 422 and "10.1.1.1" in moved.json()["detail"]
    assert allowing.get("/sources/shop").json()["config"]["url"].endswith("@127.0.0.1/db")


def message_of(client: TestClient, name: str, port: int) -> str:
    health = client.post(f"/sources/{name}/test").json()
    assert health["ok"] is False and health["reachable"] is False, health
    return str(health["message"]).replace(str(port), "PORT")


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("database", {"url": "mysql://u:p@127.0.0.1:{port}/db", "table": "t"}),
        ("database", {"url": "mariadb://u:p@127.0.0.1:{port}/db", "query": "SELECT 1"}),
        ("database", {"url": "postgresql://u:p@127.0.0.1:{port}/db", "table": "t"}),
        ("api", {"url": "http://127.0.0.1:{port}/v1/orders", "max_retries": 0}),
    ],
)
def test_an_open_port_and_a_closed_one_give_the_same_message(
    allowing: TestClient,
    banner_port: tuple[int, list[str]],
    closed_port: int,
    kind: str,
    config: dict[str, Any],
) -> None:
    port, seen = banner_port
    for name, number in (("open", port), ("closed", closed_port)):
        filled = {k: v.format(port=number) if isinstance(v, str) else v for k, v in config.items()}
        assert (
            allowing.post("/sources", json={"name": name, "type": kind, "config": filled}).status_code == 201
        )

    on_open, on_closed = message_of(allowing, "open", port), message_of(allowing, "closed", closed_port)

    assert seen, "the open port was never contacted"
    assert on_open == on_closed == UNIFORM


def test_a_run_on_an_unreachable_source_fails_with_the_same_message(
    allowing: TestClient, banner_port: tuple[int, list[str]], closed_port: int
) -> None:
    errors = []
    for name, number in (("open", banner_port[0]), ("closed", closed_port)):
        config = {"url": f"mysql://u:p@127.0.0.1:{number}/db", "table": "t"}
        assert (
            allowing.post("/sources", json={"name": name, "type": "database", "config": config}).status_code
            == 201
        )
        run_id = allowing.post(f"/sources/{name}/runs", json={"goal": {}}).json()["id"]
        deadline = time.monotonic() + 60
        run = allowing.get(f"/runs/{run_id}").json()
        while run["status"] != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
            run = allowing.get(f"/runs/{run_id}").json()
        assert run["status"] == "failed", run
        errors.append(str(run["error"]).replace(str(number), "PORT"))
    assert errors[0] == errors[1] and UNIFORM in errors[0]


# ---- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "../etc",
        "sales/2024",
        " sales",
        "sales ",
        "-sales",
        ".hidden",
        "x" * 65,
        "ünï",
        "a%2Fb",
        "a\nb",
        "a?b",
    ],
)
def test_unsafe_source_names_are_refused(client: TestClient, tmp_path: Path, name: str) -> None:
    path = tmp_path / "data" / "t.csv"
    path.write_text("a\n1\n")
    response = client.post("/sources", json={"name": name, "type": "file", "config": {"path": str(path)}})
    assert response.status_code == 422, response.text
    assert (
        response.json()["errors"] == [{"field": "name", "message": response.json()["errors"][0]["message"]}]
        and "letters, digits" in response.json()["detail"]
    )
    assert client.get("/sources").json() == []


def test_safe_names_are_stored_fetched_and_renamed_only_to_safe_names(
    client: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "data" / "t.csv"
    path.write_text("a\n1\n")
    name = "Shop-orders_v2.1"
    assert (
        client.post(
            "/sources", json={"name": name, "type": "file", "config": {"path": str(path)}}
        ).status_code
        == 201
    )
    assert client.get(f"/sources/{name}").json()["name"] == name
    assert client.patch(f"/sources/{name}", json={"name": "shop/orders"}).status_code == 422
    assert client.patch(f"/sources/{name}", json={"name": "x" * 64}).status_code == 200


def test_an_upload_without_a_name_gets_a_safe_one_from_its_file_name(client: TestClient) -> None:
    response = client.post(
        "/sources/upload", files={"file": ("my sales/2024 (final).csv", b"a,b\n1,2\n", "text/csv")}
    )
    assert response.status_code == 201, response.text
    name = response.json()["name"]
    assert name == f"2024-final-.csv-{response.json()['content_hash'][:8]}"  # the folder part is dropped
    assert client.get(f"/sources/{name}").status_code == 200
