"""Live run events (SSE) served by uvicorn: resumed from the last event id, ended with the token.

Served for real (not a TestClient) because a stream that should end but does not must fail the test
by a read timeout instead of hanging it.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from lockflow.auth.service import AuthService
from lockflow.auth.settings import AuthSettings
from lockflow.auth.testing import add_user, login
from lockflow.auth.tokens import issue
from lockflow.embedded import auth_settings_for, create_app
from lockflow.gateway import events
from lockflow.gateway.testing import embedded_settings
from lockflow.gateway.testing import served as serve_app

READ_TIMEOUT = 10.0  # below sse-starlette's 15 s ping: a stream that never ends raises ReadTimeout


@dataclass(frozen=True)
class Sse:
    """One server-sent event as a client reads it."""

    event: str
    id: str | None
    data: str


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a free loopback port with the same uvicorn settings as `lockflow up`."""
    with serve_app(app) as (base, _port):
        yield base


def read_events(
    client: httpx.Client, url: str, *, limit: int | None = None, until: str | None = None, **request: Any
) -> tuple[int, list[Sse]]:
    """The stream's status and events until it closes, or disconnecting after `limit` events or `until`."""
    found: list[Sse] = []
    fields: dict[str, str] = {}
    with client.stream("GET", url, **request) as stream:
        if stream.status_code != 200:
            stream.read()
            return stream.status_code, found
        for line in stream.iter_lines():
            if line == "":
                if "data" in fields:
                    found.append(Sse(fields.get("event", "message"), fields.get("id"), fields["data"]))
                fields = {}
                if (limit is not None and len(found) >= limit) or (found and found[-1].event == until):
                    break
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return 200, found


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    """The whole embedded pipeline; the verifier allows no clock leeway, so a token's exp is exact."""
    settings = embedded_settings(tmp_path)
    shared = auth_settings_for(settings).model_dump(include={"environment", "mode", "home", "database_url"})
    auth = AuthSettings(**shared, redis_url=None, clock_skew_seconds=0)
    return create_app(settings, auth_settings=auth)


def start_run(client: httpx.Client, headers: dict[str, str]) -> str:
    """Upload a small file and wait until its run waits at gate 1."""
    frame = pd.DataFrame(
        {"spend": [float(i) for i in range(40)], "revenue": [3.0 * i + 1 for i in range(40)]}
    )
    created = client.post(
        "/runs/upload",
        files={"file": ("s.csv", frame.to_csv(index=False).encode(), "text/csv")},
        data={"target": "revenue"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    open_request(client, headers, run_id)
    return run_id


def open_request(client: httpx.Client, headers: dict[str, str], run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get("/decisions", params={"run_id": run_id}, headers=headers).json()
        if found:
            return dict(found[0])
        time.sleep(0.05)
    raise AssertionError("gate 1 did not open")


def signed_in(app: FastAPI, client: httpx.Client) -> dict[str, str]:
    add_user(app.state.auth, "ana", ["analyst"])
    return login(client, "ana")


def test_a_reconnect_with_the_last_event_id_gets_exactly_the_rest(app: FastAPI) -> None:
    with served(app) as base, httpx.Client(base_url=base, timeout=READ_TIMEOUT) as client:
        ana = signed_in(app, client)
        run_id = start_run(client, ana)
        url = f"/runs/{run_id}/events"

        # Live: read up to gate 1's request, disconnect, decide while away, reconnect with the last id.
        status, before = read_events(client, url, headers=ana, until="DecisionRequested")
        assert status == 200 and all(e.id for e in before)
        request = open_request(client, ana, run_id)
        assert (
            client.post(f"/decisions/{request['id']}", json={"option": "abort"}, headers=ana).status_code
            == 200
        )
        _, after = read_events(client, url, headers={**ana, "Last-Event-ID": str(before[-1].id)})
        assert [e.event for e in after] == ["DecisionMade", "RunAborted"]

        # The ended run: any cut, resumed by header or by ?after=, gives the whole run once.
        _, whole = read_events(client, url, headers=ana)
        assert [e.id for e in whole] == [e.id for e in before + after]
        assert len({e.id for e in whole}) == len(whole) and [int(e.id or 0) for e in whole] == sorted(
            int(e.id or 0) for e in whole
        )
        for cut in (1, len(whole) // 2, len(whole) - 1):
            _, head = read_events(client, url, headers=ana, limit=cut)
            assert head == whole[:cut]
            _, by_header = read_events(client, url, headers={**ana, "Last-Event-ID": str(head[-1].id)})
            _, by_query = read_events(client, url, headers=ana, params={"after": head[-1].id})
            assert head + by_header == whole and head + by_query == whole
        # A browser reconnecting repeats its URL (the first ?after=) and adds the header: the header wins.
        _, both = read_events(
            client, url, headers={**ana, "Last-Event-ID": str(whole[-2].id)}, params={"after": whole[0].id}
        )
        assert both == whole[-1:]
        # Resumed after the run's last event: the stream closes at once, with nothing replayed.
        assert read_events(client, url, headers={**ana, "Last-Event-ID": str(whole[-1].id)}) == (200, [])
        assert read_events(client, url, headers={**ana, "Last-Event-ID": "soon"})[0] == 422
        assert read_events(client, url, headers=ana, params={"after": -1})[0] == 422


def short_lived_token(auth: AuthService, access_token: str, seconds: int) -> str:
    """An access token of the same session that expires `seconds` from now (issued long enough ago)."""
    claims = auth.verify_access(access_token)
    token, _ = issue(
        ring=auth.ring,
        spec=auth.spec,
        token_type="access",
        user_id=claims.subject,
        username=claims.username,
        roles=sorted(claims.roles),
        session=claims.session,
        version=claims.version,
        now=time.time() - auth.spec.access_seconds + seconds,
    )
    return token


def test_the_stream_ends_with_an_error_event_when_its_token_expires(app: FastAPI) -> None:
    with served(app) as base, httpx.Client(base_url=base, timeout=READ_TIMEOUT) as client:
        ana = signed_in(app, client)
        run_id = start_run(client, ana)  # waits at gate 1: its stream would stay open
        token = short_lived_token(app.state.auth, ana["Authorization"].removeprefix("Bearer "), seconds=2)
        opened = time.monotonic()
        status, found = read_events(client, f"/runs/{run_id}/events", params={"access_token": token})
        lasted = time.monotonic() - opened
        assert status == 200 and found[-1].event == "error" and "expired" in found[-1].data
        assert found[-1].id is None  # the resume point stays the last run event
        assert [e.event for e in found[:-1]][-1] == "DecisionRequested"
        # It ends because the token expired (not before), and well before the read timeout would.
        assert lasted > 1.0 and lasted < READ_TIMEOUT
        # The browser's automatic reconnect with the same token is refused.
        assert read_events(client, f"/runs/{run_id}/events", params={"access_token": token})[0] == 401


def test_the_stream_ends_when_its_session_is_logged_out(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.5)
    with served(app) as base, httpx.Client(base_url=base, timeout=READ_TIMEOUT) as client:
        ana = signed_in(app, client)
        run_id = start_run(client, ana)
        got: dict[str, tuple[int, list[Sse]]] = {}
        reader = threading.Thread(
            target=lambda: got.update(stream=read_events(client, f"/runs/{run_id}/events", headers=ana))
        )
        reader.start()
        time.sleep(1.0)
        assert client.post("/auth/logout", headers=ana).status_code == 204
        reader.join(timeout=READ_TIMEOUT + 5)
        status, found = got["stream"]
        assert status == 200 and found[-1].event == "error" and "revoked" in found[-1].data
