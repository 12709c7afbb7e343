"""The HTTP API connector against a real API served by this test on 127.0.0.1 (and 127.0.0.2)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from lockflow.common.errors import InvalidInput
from lockflow.common.models import SourceOptions
from lockflow.ingest.conn_http import ApiUnavailable, HttpApiConnector
from lockflow.ingest.read import load_chunks
from lockflow.resilience import CircuitBreakers
from lockflow.sources.configs import parse_config
from lockflow.sources.netguard import ForbiddenDestination, NetPolicy

RECORDS = [
    {"id": i, "name": f"item-{i}", "price": round(i * 1.25, 2), "tags": {"even": i % 2 == 0}}
    for i in range(1, 48)
]
TOKEN = "s3cret-token"


class Api(BaseHTTPRequestHandler):
    """A small JSON API with every pagination style, 429s, failures, auth and redirects."""

    seen: list[str]
    authorizations: list[str | None]
    counters: dict[str, int]
    redirect_to: str = ""

    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.authorizations.append(self.headers.get("Authorization"))
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = url.path
        if route == "/page":
            page, size = int(q["page"]), int(q["per_page"])
            self._send(200, {"data": {"items": RECORDS[(page - 1) * size : page * size]}})
        elif route == "/offset":
            off, lim = int(q["offset"]), int(q["limit"])
            self._send(200, RECORDS[off : off + lim])
        elif route == "/cursor":
            start = int(q.get("cursor", "0"))
            nxt = start + 10 if start + 10 < len(RECORDS) else None
            self._send(200, {"results": RECORDS[start : start + 10], "meta": {"next": nxt}})
        elif route == "/link":
            start = int(q.get("from", "0"))
            headers = {}
            if start + 20 < len(RECORDS):
                headers["Link"] = (
                    f'<http://127.0.0.1:{self.server.server_port}/link?from={start + 20}>; rel="next"'
                )
            self._send(200, RECORDS[start : start + 20], headers)
        elif route == "/limited":
            self.counters["limited"] = self.counters.get("limited", 0) + 1
            if self.counters["limited"] <= 2:
                self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
            else:
                self._send(200, RECORDS[:5])
        elif route == "/broken":
            self._send(500, {"error": "boom"})
        elif route == "/auth":
            ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self._send(200 if ok else 401, RECORDS[:3] if ok else {"error": "no"})
        elif route == "/redirect":
            self._send(302, None, {"Location": self.redirect_to})
        else:
            self._send(404, {"error": "not found"})


def serve(host: str) -> tuple[ThreadingHTTPServer, list[str], dict[str, int]]:
    seen: list[str] = []
    counters: dict[str, int] = {}
    handler = type("H", (Api,), {"seen": seen, "authorizations": [], "counters": counters})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen, counters


@pytest.fixture
def api() -> Iterator[tuple[str, list[str], dict[str, int], type]]:
    server, seen, counters = serve("127.0.0.1")
    yield f"http://127.0.0.1:{server.server_port}", seen, counters, server.RequestHandlerClass  # type: ignore[misc]
    server.shutdown()


@pytest.fixture
def internal() -> Iterator[tuple[str, list[str]]]:
    """A second server on another loopback address: the internal target a redirect must not reach."""
    server, seen, _ = serve("127.0.0.2")
    yield f"http://127.0.0.2:{server.server_port}", seen
    server.shutdown()


ALLOW = NetPolicy.from_list(["127.0.0.1/32"])
NO_WAIT: list[float] = []


def connector(
    config: dict[str, Any], policy: NetPolicy = ALLOW, breaker: CircuitBreakers | None = None
) -> HttpApiConnector:
    parsed = parse_config("api", config)
    return HttpApiConnector(parsed, policy=policy, breaker=breaker or CircuitBreakers(), sleep=NO_WAIT.append)  # type: ignore[arg-type]


def read(conn: HttpApiConnector, tmp_path: Path) -> pd.DataFrame:
    chunks = conn.chunks(options=SourceOptions(), workdir=tmp_path)
    return load_chunks(chunks, name="api", column_types={}, bytes_read=0).table.to_pandas()


@pytest.mark.parametrize(
    ("path", "pagination", "records_path"),
    [
        ("/page", {"style": "page", "page_size": 10}, "data.items"),
        ("/offset", {"style": "offset", "page_size": 15}, None),
        ("/cursor", {"style": "cursor", "cursor_path": "meta.next"}, "results"),
        ("/link", {"style": "link"}, None),
    ],
)
def test_every_pagination_style_reads_every_record(
    api: Any, tmp_path: Path, path: str, pagination: dict[str, Any], records_path: str | None
) -> None:
    base, seen, _, _ = api
    frame = read(
        connector({"url": base + path, "pagination": pagination, "records_path": records_path}), tmp_path
    )
    expected = pd.DataFrame(RECORDS)
    assert frame["id"].tolist() == expected["id"].tolist()
    assert frame["price"].sum() == pytest.approx(expected["price"].sum())
    assert json.loads(frame["tags"][1]) == {"even": True}
    assert len(seen) >= 3


def test_429_with_retry_after_is_honoured(api: Any, tmp_path: Path) -> None:
    base, seen, _, _ = api
    NO_WAIT.clear()
    frame = read(connector({"url": base + "/limited"}), tmp_path)
    assert len(frame) == 5 and len(seen) == 3
    assert NO_WAIT == [1.0, 1.0]  # waited what the server asked, twice


def test_failures_retry_then_open_the_circuit(api: Any, tmp_path: Path) -> None:
    base, seen, _, _ = api
    breaker = CircuitBreakers(threshold=4, cooldown=600)
    conn = connector({"url": base + "/broken", "max_retries": 2, "backoff_seconds": 0.01}, breaker=breaker)
    with pytest.raises(ApiUnavailable, match="kept failing after 3 attempts"):
        read(conn, tmp_path)
    assert len(seen) == 3
    with pytest.raises(ApiUnavailable, match=r"circuit .* is open"):
        read(connector({"url": base + "/broken", "max_retries": 2}, breaker=breaker), tmp_path)
    assert len(seen) == 4  # one more call reached the threshold; then nothing


def test_bearer_auth_and_health(api: Any, tmp_path: Path) -> None:
    base, *_ = api
    good = connector({"url": base + "/auth", "auth": {"type": "bearer", "token": TOKEN}})
    assert len(read(good, tmp_path)) == 3
    health = good.health()
    assert health.ok and health.reachable and health.authorised and health.readable and health.seconds > 0
    bad = connector({"url": base + "/auth", "auth": {"type": "bearer", "token": "wrong"}}).health()
    assert (bad.ok, bad.reachable, bad.authorised) == (False, True, False)
    assert "refused the credentials (HTTP 401)" in bad.message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/page",
        "http://localhost:{port}/page",
        "http://2130706433:{port}/page",
        "http://[::1]:{port}/page",
    ],
)
def test_internal_urls_are_refused_and_the_target_sees_nothing(api: Any, tmp_path: Path, url: str) -> None:
    base, seen, _, _ = api
    port = base.rsplit(":", 1)[1]
    conn = connector({"url": url.format(port=port)}, policy=NetPolicy.from_list([]))
    with pytest.raises((ForbiddenDestination, InvalidInput), match=r"refused|resolve"):
        read(conn, tmp_path)
    assert not conn.health().ok
    assert seen == []


def test_a_redirect_to_an_internal_address_is_refused(api: Any, internal: Any, tmp_path: Path) -> None:
    base, seen, _, handler = api
    target, target_seen = internal
    handler.redirect_to = target + "/page?page=1&per_page=5"
    with pytest.raises(ForbiddenDestination, match=r"127\.0\.0\.2, a loopback address"):
        read(connector({"url": base + "/redirect"}), tmp_path)
    assert seen == ["/redirect"] and target_seen == []


def test_the_credentials_follow_a_redirect_on_the_api_s_origin_only(api: Any, tmp_path: Path) -> None:
    base, seen, _, handler = api
    bearer = {"type": "bearer", "token": TOKEN}
    handler.redirect_to = base + "/auth"  # same origin: the token goes with it and the records come
    assert len(read(connector({"url": base + "/redirect", "auth": bearer}), tmp_path)) == 3
    elsewhere, _, _ = serve("127.0.0.2")
    try:
        handler.redirect_to = f"http://127.0.0.2:{elsewhere.server_port}/offset?offset=0&limit=4"
        both = NetPolicy.from_list(["127.0.0.1/32", "127.0.0.2/32"])
        assert len(read(connector({"url": base + "/redirect", "auth": bearer}, both), tmp_path)) == 4
        assert elsewhere.RequestHandlerClass.authorizations == [None]  # type: ignore[attr-defined]
        assert handler.authorizations[-1] == f"Bearer {TOKEN}" and seen[-1] == "/redirect"
    finally:
        elsewhere.shutdown()
