"""Result cache port: Redis in distributed mode, a dict in embedded mode. Keys are content hashes."""

import abc
import hashlib
import json
from typing import Any

import redis

from lockflow.common.logging import get_logger

log = get_logger(__name__)


def cache_key(namespace: str, *parts: Any) -> str:
    """A stable key from a namespace and JSON-serialisable parts (e.g. fingerprint + params)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return f"lockflow:{namespace}:{hashlib.sha256(blob).hexdigest()}"


class Cache(abc.ABC):
    """Get/set of JSON text by key."""

    @abc.abstractmethod
    def get(self, key: str) -> str | None:
        """The cached value, or None."""

    @abc.abstractmethod
    def set(self, key: str, value: str, *, ttl_seconds: int = 7 * 24 * 3600) -> None:
        """Store a value."""


class MemoryCache(Cache):
    """In-process cache for embedded mode."""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """The cached value, or None."""
        return self._items.get(key)

    def set(self, key: str, value: str, *, ttl_seconds: int = 7 * 24 * 3600) -> None:
        """Store a value (no expiry in process)."""
        self._items[key] = value


class RedisCache(Cache):
    """Redis-backed cache shared by every worker replica.

    A cache only saves work, so Redis being away is a miss (get) or a skipped store (set), logged
    as a warning (rate limited by the logging setup), never a failed stage.
    """

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self._client.ping())

    def get(self, key: str) -> str | None:
        """The cached value, or None (also when Redis does not answer)."""
        try:
            value = self._client.get(key)
        except redis.RedisError as exc:
            log.warning("cache_unavailable", operation="get", error=repr(exc))
            return None
        return value.decode() if isinstance(value, bytes) else None

    def set(self, key: str, value: str, *, ttl_seconds: int = 7 * 24 * 3600) -> None:
        """Store a value with an expiry (skipped when Redis does not answer)."""
        try:
            self._client.set(key, value, ex=ttl_seconds)
        except redis.RedisError as exc:
            log.warning("cache_unavailable", operation="set", error=repr(exc))
