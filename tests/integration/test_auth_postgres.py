"""Auth on real PostgreSQL and Redis, two service instances standing in for two gateway replicas."""

import threading
from collections.abc import Iterator

import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lockflow.access.tokens import InvalidToken
from lockflow.audit import chain as audit
from lockflow.auth.keys import generate_private_pem
from lockflow.auth.router import build_auth_service
from lockflow.auth.service import AuthService, LoginFailed, LoginThrottled
from lockflow.auth.settings import AuthSettings
from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import Database

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


@pytest.fixture
def replicas(
    fresh_postgres: str, redis_url: str, topic_prefix: str
) -> Iterator[tuple[AuthService, AuthService]]:
    settings = AuthSettings(
        topic_prefix=topic_prefix, redis_url=redis_url, signing_key=SecretStr(generate_private_pem().decode())
    )
    dbs = [Database(fresh_postgres), Database(fresh_postgres)]
    clients = [redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)]
    a, b = (build_auth_service(settings, db=d, redis_client=c) for d, c in zip(dbs, clients, strict=True))
    a.create_user(username="ana", password=PASSWORD, roles=["analyst"], actor="test")
    yield a, b
    for key in clients[0].scan_iter(f"{topic_prefix}:*"):
        clients[0].delete(key)
    for d in dbs:
        d.dispose()


def _actions(service: AuthService) -> list[str]:
    with service.db.transaction() as s:
        return [r[0] for r in s.execute(text("SELECT action FROM audit_log ORDER BY id"))]


def test_logout_and_role_downgrade_reach_the_other_replica_at_once(
    replicas: tuple[AuthService, AuthService],
) -> None:
    a, b = replicas
    pair = a.login(username="ana", password=PASSWORD, client="10.0.0.1")
    claims = b.verify_access(pair.access_token)
    a.logout(claims=claims, client="10.0.0.1")
    with pytest.raises(InvalidToken, match="session has ended"):
        b.verify_access(pair.access_token)
    second = b.login(username="ana", password=PASSWORD, client="10.0.0.1")
    assert a.verify_access(second.access_token).roles == {"analyst"}
    b.set_roles(username="ana", roles=["viewer"], actor="root")
    with pytest.raises(InvalidToken, match="roles changed"):
        a.verify_access(second.access_token)
    refreshed = a.refresh(refresh_token=second.refresh_token, client="10.0.0.1")
    assert b.verify_access(refreshed.access_token).roles == {"viewer"}


def test_a_flushed_redis_falls_back_to_the_database(
    replicas: tuple[AuthService, AuthService], topic_prefix: str
) -> None:
    a, b = replicas
    pair = a.login(username="ana", password=PASSWORD, client="10.0.0.1")
    a.logout(claims=a.verify_access(pair.access_token), client="10.0.0.1")
    client = redis.Redis.from_url(b.settings.redis_url or "")
    for key in client.scan_iter(f"{topic_prefix}:auth:*"):
        client.delete(key)
    with pytest.raises(InvalidToken, match="session has ended"):
        b.verify_access(pair.access_token)


def test_refresh_reuse_revokes_the_family_and_logs_it(replicas: tuple[AuthService, AuthService]) -> None:
    a, b = replicas
    first = a.login(username="ana", password=PASSWORD, client="10.0.0.1")
    second = b.refresh(refresh_token=first.refresh_token, client="10.0.0.1")
    with pytest.raises(InvalidToken, match="reuse"):
        a.refresh(refresh_token=first.refresh_token, client="10.6.6.6")
    with pytest.raises(InvalidToken):
        b.refresh(refresh_token=second.refresh_token, client="10.0.0.1")
    with pytest.raises(InvalidToken, match="session has ended"):
        b.verify_access(second.access_token)
    assert "token_reuse" in _actions(a)
    with a.db.transaction() as s:
        statuses = {r[0] for r in s.execute(text("SELECT status FROM refresh_tokens"))}
        assert statuses == {"used", "revoked"}


def test_101_failed_logins_are_throttled_across_replicas(replicas: tuple[AuthService, AuthService]) -> None:
    a, b = replicas
    for attempt in range(100):
        service = a if attempt % 2 else b
        with pytest.raises(LoginFailed):
            service.login(username="ana", password=f"guess {attempt}", client=f"10.1.{attempt}.1")
    for service in (a, b):
        with pytest.raises(LoginThrottled) as refused:
            service.login(username="ana", password=PASSWORD, client="10.9.9.9")  # even the right password
        assert 0 < refused.value.retry_after <= 3600
    actions = _actions(a)
    assert actions.count("login_failed") == 100 and actions.count("lockout") == 1
    with a.db.transaction() as s:
        assert audit.verify_chain(s).ok


def test_the_address_limit_spans_accounts(fresh_postgres: str, redis_url: str, topic_prefix: str) -> None:
    settings = AuthSettings(
        topic_prefix=topic_prefix,
        redis_url=redis_url,
        signing_key=SecretStr(generate_private_pem().decode()),
        failures_per_address_per_hour=5,
    )
    db = Database(fresh_postgres)
    service = build_auth_service(settings, db=db, redis_client=redis.Redis.from_url(redis_url))
    for i in range(5):
        with pytest.raises(LoginFailed):
            service.login(username=f"user{i}", password="nope", client="10.7.7.7")
    with pytest.raises(LoginThrottled):
        service.login(username="user-new", password="nope", client="10.7.7.7")
    with pytest.raises(LoginFailed):
        service.login(username="user-new", password="nope", client="10.7.7.8")
    db.dispose()


def test_audit_rows_cannot_be_changed_or_removed(replicas: tuple[AuthService, AuthService]) -> None:
    a, _ = replicas
    for statement in ("UPDATE audit_log SET actor = 'eve'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), a.db.transaction() as s:
            s.execute(text(statement))
    assert _actions(a) == ["user_created"]


def test_a_tampered_row_is_detected(replicas: tuple[AuthService, AuthService]) -> None:
    a, _ = replicas
    with a.db.transaction() as s:
        for i in range(5):
            audit.record_decision(
                s,
                actor="ana",
                run_id=f"run-{i}",
                gate="source_review",
                choice="approve",
                rationale="looks right",
            )
    with a.db.transaction() as s:
        report = audit.verify_chain(s)
        assert report.ok and report.rows == 6
        target = s.execute(text("SELECT id FROM audit_log WHERE run_id = 'run-2'")).scalar_one()
    # Someone with owner rights switches the trigger off and rewrites history.
    with a.db.transaction() as s:
        s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        s.execute(text("UPDATE audit_log SET choice = 'abort' WHERE id = :id"), {"id": target})
        s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))
    with a.db.transaction() as s:
        report = audit.verify_chain(s)
    assert not report.ok and report.broken_at == target and "content" in (report.reason or "")
    with a.db.transaction() as s:
        s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        s.execute(text("UPDATE audit_log SET choice = 'approve' WHERE id = :id"), {"id": target})
        s.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": target + 1})
        s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))
    with a.db.transaction() as s:
        report = audit.verify_chain(s)
    assert not report.ok and report.broken_at == target + 2 and "prev_hash" in (report.reason or "")


def test_concurrent_appends_keep_one_chain(replicas: tuple[AuthService, AuthService]) -> None:
    a, b = replicas

    def write(service: AuthService, name: str) -> None:
        for i in range(15):
            with service.db.transaction() as s:
                audit.append(s, action="source_updated", actor=name, subject=f"src-{i}")

    threads = [threading.Thread(target=write, args=(svc, n)) for svc, n in ((a, "a"), (b, "b"), (a, "c"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with a.db.transaction() as s:
        report = audit.verify_chain(s)
        count = s.query(AuditRow).count()
    assert report.ok and report.rows == count == 46
