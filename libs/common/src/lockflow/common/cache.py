"""Result cache port: Redis in distributed mode, a dict in embedded mode. Keys are content hashes."""

import abc
import hashlib
import json
from typing import Any

import redis


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
    """Redis-backed cache shared by every worker replica."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self._client.ping())

    def get(self, key: str) -> str | None:
        """The cached value, or None."""
        value = self._client.get(key)
        return value.decode() if isinstance(value, bytes) else None

    def set(self, key: str, value: str, *, ttl_seconds: int = 7 * 24 * 3600) -> None:
        """Store a value with an expiry."""
        self._client.set(key, value, ex=ttl_seconds)
