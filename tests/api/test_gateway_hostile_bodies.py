"""Issue 11: body limits on every route, malformed bodies, 405 `Allow`, empty values, security headers.

The gateway is served by uvicorn on a free port (embedded, SQLite, no stage workers), so a body is
sent over a real socket: declared as 100 MB, or chunked with no Content-Length at all.
"""

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lockflow.auth.testing import PASSWORD, login
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.gateway.testing import served as serve_app

BODY_LIMIT = 64 * 1024
HUNDRED_MB = 100 * 1024 * 1024


class Served:
    """A served gateway, its base URL and a user holding every role."""

    def __init__(self, base: str, port: int, app: Any) -> None:
        self.base, self.port, self.app = base, port, app
        self.client = httpx.Client(base_url=base, timeout=30)
        self.headers = login(self.client, "fuzz")

    def schema(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.client.get("/openapi.json").json()
        return spec


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    settings = embedded_settings(
        tmp, start_workers=False, max_body_bytes=BODY_LIMIT, max_upload_bytes=400_000
    )
    app = create_app(settings)
    with serve_app(app) as (base, port):
        app.state.auth.create_user(
            username="fuzz", password=PASSWORD, roles=["viewer", "analyst", "approver", "admin"], actor="test"
        )
        yield Served(base, port, app)


def _raw(port: int, head: str, chunks: Iterator[bytes] | None = None) -> tuple[int, bytes, int]:
    """Send a request over a socket; the status, the answer, and how many body bytes went out first."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        sent = 0
        sock.setblocking(False)
        answer = b""
        for chunk in chunks or iter(()):
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.setblocking(True)
        sock.settimeout(30)
        while b"\r\n\r\n" not in answer or len(answer) < _expected_length(answer):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    status = int(answer.split(b" ", 2)[1])
    return status, answer, sent


def _expected_length(answer: bytes) -> int:
    """Headers plus the body's declared length: the body may come in a later packet than the headers."""
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value.strip())
    return len(head) + 4


def _chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    piece = b"a" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_100_mb_decision_body_is_refused_at_once_declared_or_chunked(served: Served) -> None:
    token = served.headers["Authorization"]
    head = f"POST /decisions/some-id HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
    started = time.monotonic()
    status, answer, _ = _raw(
        served.port, head + f"Content-Type: application/json\r\nContent-Length: {HUNDRED_MB}\r\n\r\n"
    )
    assert status == 413 and b"exceeds" in answer
    status, answer, sent = _raw(
        served.port,
        head + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        _chunked(HUNDRED_MB),
    )
    elapsed = time.monotonic() - started
    assert status == 413
    assert sent < HUNDRED_MB / 10, f"{sent} bytes went out before the refusal"
    print(f"refused after {sent} chunked bytes; both requests in {elapsed:.2f} s")


def _json_operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    ]


def _concrete(path: str) -> str:
    return path.replace("{", "x").replace("}", "")


def test_every_json_route_has_the_small_body_limit_and_uploads_their_own(served: Served) -> None:
    operations = _json_operations(served.schema())
    assert len(operations) >= 10
    big = json.dumps({"rationale": "a" * (BODY_LIMIT + 1)})
    for method, path in operations:
        answer = served.client.request(
            method,
            _concrete(path),
            content=big,
            headers={**served.headers, "Content-Type": "application/json"},
        )
        assert answer.status_code == 413, (method, path, answer.status_code, answer.text)
    # An upload well over the JSON limit but under its own limit is stored and its run starts.
    rows = "region,spend,revenue\n" + "".join(f"a,{n},{n * 3}\n" for n in range(12_000))
    assert len(rows) > 2 * BODY_LIMIT
    upload = served.client.post(
        "/runs/upload",
        files={"file": ("big.csv", rows.encode(), "text/csv")},
        data={"target": "revenue"},
        headers=served.headers,
    )
    assert upload.status_code == 201, upload.text
    too_big = served.client.post(
        "/runs/upload", files={"file": ("huge.csv", b"a\n" + b"1\n" * 300_000)}, headers=served.headers
    )
    assert too_big.status_code == 413 and "exceeds 400000 bytes" in too_big.json()["detail"]


def test_malformed_json_bodies_get_a_documented_status_on_every_route(served: Served) -> None:
    schema = served.schema()
    for method, path in _json_operations(schema):
        documented = set(schema["paths"][path][method.lower()]["responses"])
        for body in (b'{"option": ', b"\xff\xfe\x00not json", b"[1, 2", b""):
            answer = served.client.request(
                method,
                _concrete(path),
                content=body,
                headers={**served.headers, "Content-Type": "application/json"},
            )
            assert answer.status_code < 500, (method, path, body, answer.text)
            assert str(answer.status_code) in documented, (
                method,
                path,
                body,
                answer.status_code,
                answer.text,
            )


def test_405_lists_every_method_of_the_path_in_allow(served: Served) -> None:
    schema = served.schema()
    for path, item in schema["paths"].items():
        documented = {m.upper() for m in item}
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in documented)
        for method in (unused, "OPTIONS"):
            answer = served.client.request(method, _concrete(path), headers=served.headers)
            assert answer.status_code == 405, (method, path, answer.status_code)
            allowed = {m.strip() for m in answer.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == documented, (path, answer.headers["allow"])


def test_a_query_parameter_given_twice_is_refused_on_every_route_that_takes_one(served: Served) -> None:
    """Every documented query parameter takes one value: a repeat is a 422 naming it, never the last one."""
    tried = 0
    for path, item in served.schema()["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                name = parameter["name"]
                answer = served.client.request(
                    method.upper(), _concrete(path), params=[(name, "1"), (name, "2")], headers=served.headers
                )
                assert answer.status_code == 422, (method, path, name, answer.status_code, answer.text)
                assert answer.json()["detail"] == f"query parameter {name!r} was given 2 times; give it once"
                tried += 1
    assert tried >= 15, tried


def test_empty_values_are_either_accepted_or_refused_by_the_documented_schema(served: Served) -> None:
    schema = served.schema()["components"]["schemas"]
    assert schema["RunCreate"]["properties"]["path"]["minLength"] == 1
    assert schema["SourceCreate"]["properties"]["type"]["enum"] == ["file", "api", "database", "s3", "stream"]
    assert set(schema["UserCreate"]["properties"]["roles"]["items"]["enum"]) == {
        "viewer",
        "analyst",
        "approver",
        "admin",
    }
    assert schema["UserCreate"]["properties"]["password"]["minLength"] == 12
    # Empty optional filters and names mean "not given".
    listed = served.client.get("/decisions", params={"run_id": "", "status": "all"}, headers=served.headers)
    assert listed.status_code == 200 and listed.json() == []


def test_security_headers_on_the_api_and_a_csp_that_lets_the_report_style_itself(served: Served) -> None:
    for answer in (
        served.client.get("/healthz"),
        served.client.get("/runs", headers=served.headers),
        served.client.get("/runs/nope", headers=served.headers),
        served.client.get("/runs"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    docs = served.client.get("/docs")
    assert docs.status_code == 200 and "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
