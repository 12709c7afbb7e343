"""Whether a correctly signed access token is still good: its session not ended, its user unchanged.

Signatures are checked locally; this is the one shared lookup that makes logout and a role
downgrade take effect at once. Redis answers it for every replica (one MGET); the database is the
source of truth and refills Redis when a key is missing (first use, eviction, a flushed Redis).
"""

from typing import Protocol

import redis

from lockflow.common.auth_tables import SessionRow, UserRow
from lockflow.common.db import Database
from lockflow.common.logging import get_logger

log = get_logger(__name__)


class TokenState(Protocol):
    """Revocation facts shared by every verifier."""

    def refusal(self, *, user_id: str, session: str, version: int) -> str | None:
        """Why a token of this user, session and version is refused now; None if it is good."""

    def session_ended(self, session: str) -> None:
        """Tokens of this session are refused from now on."""

    def user_changed(self, user_id: str, version: int) -> None:
        """Tokens carrying an older version of this user are refused from now on."""


def _from_db(db: Database, *, user_id: str, session: str) -> tuple[int | None, bool]:
    with db.transaction() as s:
        user = s.get(UserRow, user_id)
        found = s.get(SessionRow, session)
        ended = found is None or found.revoked_at is not None
        if user is None or user.disabled:
            return None, ended
        return user.token_version, ended


def _judge(current: int | None, ended: bool, version: int) -> str | None:
    if current is None:
        return "the account no longer exists or is disabled"
    if ended:
        return "the session has ended (logout, password change or token reuse)"
    if current != version:
        return "the account's roles changed since the token was issued; log in again"
    return None


class DbTokenState:
    """Asks the database every time (embedded mode: one process, SQLite)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def refusal(self, *, user_id: str, session: str, version: int) -> str | None:
        """Why a token is refused now; None if it is good."""
        current, ended = _from_db(self.db, user_id=user_id, session=session)
        return _judge(current, ended, version)

    def session_ended(self, session: str) -> None:
        """Nothing to do: the database row is the state."""

    def user_changed(self, user_id: str, version: int) -> None:
        """Nothing to do: the database row is the state."""


DISABLED = -1


class RedisTokenState:
    """Redis in front of the database, shared across gateway replicas.

    The database is the source of truth, so while Redis does not answer every check asks the
    database (as embedded mode does) instead of failing the request. A revocation made meanwhile is
    in the database; Redis (run without persistence) comes back empty and is refilled from it.
    """

    def __init__(
        self, client: "redis.Redis", db: Database, *, ttl: int, prefix: str = "lockflow:auth:"
    ) -> None:
        self.client = client
        self.db = db
        self.ttl = ttl
        self.prefix = prefix

    def refusal(self, *, user_id: str, session: str, version: int) -> str | None:
        """Why a token is refused now; None if it is good (from the database while Redis is away)."""
        ended_key, ver_key = f"{self.prefix}ended:{session}", f"{self.prefix}ver:{user_id}"
        try:
            ended_raw, ver_raw = self.client.mget([ended_key, ver_key])
        except redis.RedisError as exc:
            log.warning("token_state_from_database", reason="redis unavailable", error=repr(exc))
            current, ended = _from_db(self.db, user_id=user_id, session=session)
            return _judge(current, ended, version)
        if ver_raw is None:
            current, ended = _from_db(self.db, user_id=user_id, session=session)
            try:
                pipe = self.client.pipeline()
                pipe.set(ver_key, DISABLED if current is None else current, ex=self.ttl)
                if ended:
                    pipe.set(ended_key, 1, ex=self.ttl)
                pipe.execute()
            except redis.RedisError as exc:  # not kept this time; the next check asks again
                log.warning("token_state_not_cached", error=repr(exc))
            return _judge(current, ended, version)
        current_version = int(ver_raw)
        return _judge(
            None if current_version == DISABLED else current_version, ended_raw is not None, version
        )

    def session_ended(self, session: str) -> None:
        """Refuse the session's tokens on every replica (the database row already says so)."""
        try:
            self.client.set(f"{self.prefix}ended:{session}", 1, ex=self.ttl)
        except redis.RedisError as exc:
            log.warning("token_state_not_shared", change="session_ended", error=repr(exc))

    def user_changed(self, user_id: str, version: int) -> None:
        """Refuse the user's older tokens on every replica (the database row already says so)."""
        try:
            self.client.set(f"{self.prefix}ver:{user_id}", version, ex=self.ttl)
        except redis.RedisError as exc:
            log.warning("token_state_not_shared", change="user_changed", error=repr(exc))
