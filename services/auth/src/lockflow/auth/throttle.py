"""Failed-login throttling per account and per client address over a sliding hour.

The Redis store is shared by every gateway replica; the memory store serves embedded mode.
"""

import hashlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from lockflow.common.logging import get_logger

log = get_logger(__name__)
WINDOW_SECONDS = 3600.0


class FailureStore(Protocol):
    """Counts failures per key in a sliding window."""

    def count(self, key: str) -> tuple[int, float]:
        """Failures in the window and seconds until the oldest leaves it."""

    def add(self, key: str) -> None:
        """Count one failure now."""

    def clear(self, key: str) -> None:
        """Forget the key's failures."""


class MemoryFailures:
    """In-process store (embedded, one process)."""

    def __init__(self, *, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        return events

    def count(self, key: str) -> tuple[int, float]:
        """Failures in the window and seconds until the oldest leaves it."""
        now = self.clock()
        with self._lock:
            events = self._trim(key, now)
            return len(events), (self.window - (now - events[0])) if events else 0.0

    def add(self, key: str) -> None:
        """Count one failure now."""
        with self._lock:
            self._trim(key, self.clock()).append(self.clock())

    def clear(self, key: str) -> None:
        """Forget the key's failures."""
        with self._lock:
            self._events.pop(key, None)


class RedisFailures:
    """A sorted set per key (score = time), trimmed to the window; shared across replicas.

    While Redis does not answer, failures are counted in this process instead (the limit then holds
    per replica), so logins keep working and keep being throttled.
    """

    def __init__(
        self, client: "redis.Redis", *, prefix: str = "lockflow:auth:fail:", window: float = WINDOW_SECONDS
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.window = window
        self.fallback = MemoryFailures(window=window)

    def count(self, key: str) -> tuple[int, float]:
        """Failures in the window and seconds until the oldest leaves it."""
        try:
            shared = self._count(key)
        except redis.RedisError as exc:
            log.warning("login_failures_counted_locally", error=repr(exc))
            return self.fallback.count(key)
        local = self.fallback.count(key)
        return (shared[0] + local[0], max(shared[1], local[1])) if local[0] else shared

    def _count(self, key: str) -> tuple[int, float]:
        now = time.time()
        name = self.prefix + key
        pipe = self.client.pipeline()
        pipe.zremrangebyscore(name, "-inf", now - self.window)
        pipe.zcard(name)
        pipe.zrange(name, 0, 0, withscores=True)
        _, count, oldest = pipe.execute()
        wait = self.window - (now - oldest[0][1]) if oldest else 0.0
        return int(count), max(wait, 0.0)

    def add(self, key: str) -> None:
        """Count one failure now."""
        now = time.time()
        name = self.prefix + key
        try:
            pipe = self.client.pipeline()
            pipe.zadd(name, {uuid.uuid4().hex: now})
            pipe.expire(name, int(self.window) + 60)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_failures_counted_locally", error=repr(exc))
            self.fallback.add(key)

    def clear(self, key: str) -> None:
        """Forget the key's failures."""
        self.fallback.clear(key)
        try:
            self.client.delete(self.prefix + key)
        except redis.RedisError as exc:
            log.warning("login_failures_not_cleared", error=repr(exc))


@dataclass(frozen=True)
class Throttled:
    """Why a login is refused before the password is checked, and when to retry."""

    scope: str
    retry_after: float


class LoginThrottle:
    """At most N failed logins per account and M per client address in any hour."""

    def __init__(self, store: FailureStore, *, per_account: int, per_address: int) -> None:
        self.store = store
        self.per_account = per_account
        self.per_address = per_address

    @staticmethod
    def _account(username: str) -> str:
        # Hashed so that whatever a client sends as a username never becomes a raw Redis key.
        return "acct:" + hashlib.sha256(username.strip().lower().encode()).hexdigest()

    @staticmethod
    def _address(address: str) -> str:
        return "addr:" + hashlib.sha256(address.encode()).hexdigest()

    def check(self, *, username: str, address: str) -> Throttled | None:
        """None when a login may be tried; otherwise which limit is reached."""
        count, wait = self.store.count(self._account(username))
        if count >= self.per_account:
            return Throttled("account", wait)
        count, wait = self.store.count(self._address(address))
        if count >= self.per_address:
            return Throttled("address", wait)
        return None

    def failed(self, *, username: str, address: str) -> None:
        """Count a failed login against both the account and the address."""
        self.store.add(self._account(username))
        self.store.add(self._address(address))

    def succeeded(self, *, username: str) -> None:
        """A correct password clears the account's count (the address keeps its own)."""
        self.store.clear(self._account(username))
