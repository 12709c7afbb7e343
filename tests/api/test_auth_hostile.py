"""The gateway served by uvicorn as `lockflow up` serves it, under a crowd and a header-spoofing attacker.

The crowd: 60 failed logins at once must leave the audit chain whole. The attacker: X-Forwarded-For
from a client that is not a configured proxy must not give them a fresh address for the login limit.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from lockflow.auth.settings import AuthSettings
from lockflow.auth.testing import admin_headers
from lockflow.common.auth_tables import AuditRow
from lockflow.embedded import auth_settings_for, create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.gateway.testing import served as serve_app

CROWD = 60


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a free loopback port with the same uvicorn settings as `lockflow up`."""
    with serve_app(app) as (base, _port):
        yield base


def _gateway(tmp_path: Path, **auth: Any) -> FastAPI:
    settings = embedded_settings(tmp_path, start_workers=False)
    shared = auth_settings_for(settings).model_dump(include={"environment", "mode", "home", "database_url"})
    return create_app(settings, auth_settings=AuthSettings(**shared, redis_url=None, **auth))


def test_60_concurrent_failed_logins_leave_the_audit_chain_whole(tmp_path: Path) -> None:
    app = create_app(embedded_settings(tmp_path))  # the whole embedded pipeline, as `lockflow up`

    async def crowd(base: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/auth/login", json={"username": f"user{i % 7}", "password": f"guess {i}"})
                    for i in range(CROWD)
                )
            )
        return [a.status_code for a in answers]

    with served(app) as base:
        assert asyncio.run(crowd(base)) == [401] * CROWD
        with httpx.Client(base_url=base, timeout=30) as client:
            verify = client.get("/audit/verify", headers=admin_headers(client, tmp_path / "home"))
    with app.state.auth.db.transaction() as s:
        rows = s.scalar(select(func.count()).select_from(AuditRow))
        failed = s.scalar(select(func.count()).where(AuditRow.action == "login_failed"))
    assert verify.status_code == 200
    assert verify.json() == {"ok": True, "rows": rows, "broken_at": None, "reason": None}
    assert failed == CROWD


def _fail(client: httpx.Client, username: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    answer = client.post("/auth/login", json={"username": username, "password": "nope"}, headers=headers)
    return answer.status_code


def _clients_audited(app: FastAPI) -> list[str | None]:
    with app.state.auth.db.transaction() as s:
        rows = select(AuditRow.client).where(AuditRow.action == "login_failed").order_by(AuditRow.id)
        return list(s.scalars(rows))


def test_a_spoofed_forwarded_for_does_not_evade_the_address_limit(tmp_path: Path) -> None:
    app = _gateway(tmp_path, failures_per_address_per_hour=5)
    with served(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        statuses = [_fail(client, f"user{i}", forwarded_for=f"198.51.100.{i}") for i in range(5)]
        assert statuses == [401] * 5
        # A sixth account and a sixth made-up address: still the same peer, so the limit holds.
        assert _fail(client, "user-new", forwarded_for="203.0.113.77") == 429
    assert _clients_audited(app) == ["127.0.0.1"] * 5


def test_a_trusted_proxy_s_forwarded_for_names_the_client(tmp_path: Path) -> None:
    app = _gateway(tmp_path, failures_per_address_per_hour=5, trusted_proxies=["127.0.0.0/8"])
    with served(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        # Each client behind the proxy has its own count...
        assert [_fail(client, f"user{i}", forwarded_for=f"198.51.100.{i}") for i in range(6)] == [401] * 6
        # ...and what a client writes in front of the proxy's entry is not believed.
        chained = [_fail(client, f"other{i}", forwarded_for=f"10.{i}.0.1, 203.0.113.9") for i in range(5)]
        assert chained == [401] * 5
        assert _fail(client, "other-new", forwarded_for="10.99.0.1, 203.0.113.9") == 429
    assert _clients_audited(app) == [f"198.51.100.{i}" for i in range(6)] + ["203.0.113.9"] * 5
