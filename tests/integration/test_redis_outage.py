"""Redis away (stopped, or never reachable): what used it degrades instead of failing requests.

The result cache misses, token checks ask the database (the source of truth), failed logins and
request rates are counted in the process. Each test stops a Redis of its own (tests/faults.py),
never the shared one.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from faults import PrivateRedis
from pydantic import SecretStr

from lockflow.access.tokens import InvalidToken
from lockflow.auth.keys import generate_private_pem
from lockflow.auth.router import build_auth_service
from lockflow.auth.service import AuthService, LoginThrottled
from lockflow.auth.settings import AuthSettings
from lockflow.common.cache import RedisCache
from lockflow.common.db import Database
from lockflow.resilience import RateLimited, RedisRateLimiter

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def auth(tmp_path: Path, own_redis: PrivateRedis) -> AuthService:
    settings = AuthSettings(
        signing_key=SecretStr(generate_private_pem().decode()),
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        redis_url=own_redis.url,
        environment="test",
        failures_per_account_per_hour=3,
    )
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=2)
    service = build_auth_service(settings, db=Database(str(settings.database_url)), redis_client=client)
    service.create_user(username="ana", password=PASSWORD, roles=["analyst"], actor="test")
    return service


def test_the_cache_misses_and_skips_while_redis_is_down(own_redis: PrivateRedis) -> None:
    cache = RedisCache(own_redis.url)
    cache.set("k", "v")
    assert cache.get("k") == "v"
    own_redis.stop()
    assert cache.get("k") is None  # a miss: the stage computes instead of failing
    cache.set("k", "w")  # skipped, not raised
    own_redis.start()
    assert cache.get("k") is None  # the restarted Redis is empty (no persistence)
    cache.set("k", "w")
    assert cache.get("k") == "w"


def test_tokens_are_checked_against_the_database_while_redis_is_down(
    auth: AuthService, own_redis: PrivateRedis
) -> None:
    token = auth.login(username="ana", password=PASSWORD, client="t").access_token
    claims = auth.verify_access(token)  # cached in Redis
    own_redis.stop()
    fresh = auth.login(username="ana", password=PASSWORD, client="t").access_token
    assert auth.verify_access(fresh).username == "ana"
    auth.logout(claims=claims, client="t")  # recorded in the database; Redis cannot be told
    with pytest.raises(InvalidToken, match="session has ended"):
        auth.verify_access(token)
    own_redis.start()
    with pytest.raises(InvalidToken, match="session has ended"):
        auth.verify_access(token)
    assert auth.verify_access(fresh).username == "ana"


def test_failed_logins_are_still_throttled_while_redis_is_down(
    auth: AuthService, own_redis: PrivateRedis
) -> None:
    own_redis.stop()
    for _ in range(3):
        with pytest.raises(Exception) as failed:
            auth.login(username="ana", password="wrong password!", client="t")
        assert not isinstance(failed.value, redis.RedisError)
    with pytest.raises(LoginThrottled):
        auth.login(username="ana", password=PASSWORD, client="t")


def test_the_rate_limit_counts_in_process_while_redis_is_down(own_redis: PrivateRedis) -> None:
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=2)
    limiter = RedisRateLimiter(client, name="decisions", limit=2, window=60.0, prefix="t")
    own_redis.stop()
    limiter.hit("ana")
    limiter.hit("ana")
    with pytest.raises(RateLimited):
        limiter.hit("ana")
