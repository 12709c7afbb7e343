"""The auth use cases: users, login, refresh with rotation and reuse detection, logout, roles, shares.

Every security-relevant outcome is written to the audit chain in the same transaction as its effect
(a failed login in its own). Keyword-only arguments throughout; no HTTP here.
"""

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from lockflow.access import shares
from lockflow.access.build import token_spec
from lockflow.access.policy import Role
from lockflow.access.state import DISABLED, TokenState
from lockflow.access.tokens import Claims, InvalidToken, verify
from lockflow.access.verifier import AccessVerifier
from lockflow.audit import chain as audit
from lockflow.auth.keys import KeyRing
from lockflow.auth.passwords import Passwords, check_new_password
from lockflow.auth.settings import AuthSettings
from lockflow.auth.throttle import LoginThrottle
from lockflow.auth.tokens import issue
from lockflow.common.auth_tables import RefreshTokenRow, SessionRow, ShareRow, UserRow
from lockflow.common.db import Database, utcnow
from lockflow.common.errors import Conflict, InvalidInput, LockflowError, NotFound
from lockflow.common.logging import get_logger

log = get_logger(__name__)
USERNAME = re.compile(r"^[a-z0-9_.@-]{1,64}$")


class LoginFailed(LockflowError):
    """Wrong username or password (deliberately the same message for both)."""


class LoginThrottled(LockflowError):
    """Too many failed logins for this account or address in the last hour."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(LockflowError):
    """The caller is known but may not do this."""


@dataclass(frozen=True)
class TokenPair:
    """What a login or refresh hands back."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int

    def as_dict(self) -> dict[str, Any]:
        """The OAuth2-style response body."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "refresh_expires_in": self.refresh_expires_in,
        }


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and compared in lower case."""
    return username.strip().lower()


def _user_dict(user: UserRow) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "roles": sorted(user.roles),
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


def _checked_roles(roles: list[str]) -> list[str]:
    known = {r.value for r in Role}
    unknown = [r for r in roles if r not in known]
    if unknown or not roles:
        raise InvalidInput(f"roles must be one or more of {', '.join(sorted(known))}; got {roles}")
    return sorted(set(roles))


class AuthService:
    """Users, sessions and tokens over the database, the key ring, the throttle and the token state."""

    def __init__(
        self,
        *,
        settings: AuthSettings,
        db: Database,
        ring: KeyRing,
        passwords: Passwords,
        throttle: LoginThrottle,
        state: TokenState,
    ) -> None:
        self.settings = settings
        self.db = db
        self.ring = ring
        self.passwords = passwords
        self.throttle = throttle
        self.state = state
        self.spec = token_spec(settings, refresh_seconds=settings.refresh_token_seconds)
        # The same verifier every other service holds, over this ring's keys and the shared state.
        self.verifier = AccessVerifier(keys=ring.verifying.get, spec=self.spec, state=state)

    # ---- users ---------------------------------------------------------------------------------

    def create_user(self, *, username: str, password: str, roles: list[str], actor: str) -> dict[str, Any]:
        """Add a user (409 if the name is taken); the password must meet the rules."""
        name = normalize_username(username)
        if not USERNAME.match(name):
            raise InvalidInput("a username is 1-64 of a-z 0-9 _ . @ -")
        check_new_password(
            password,
            username=name,
            min_length=self.settings.password_min_length,
            max_length=self.settings.password_max_length,
        )
        checked = _checked_roles(roles)
        hashed = self.passwords.hash(password)
        with self.db.transaction() as s:
            if s.scalar(select(UserRow.id).where(UserRow.username == name)) is not None:
                raise Conflict(f"a user named {name!r} already exists")
            user = UserRow(id=str(uuid.uuid4()), username=name, password_hash=hashed, roles=checked)
            user.token_version, user.disabled = 0, False
            s.add(user)
            s.flush()
            audit.append(s, action="user_created", actor=actor, subject=name, detail={"roles": checked})
            return _user_dict(user)

    def ensure_first_admin(self, *, username: str = "admin") -> str | None:
        """Create an admin with a random password when there is no user at all; the password or None."""
        with self.db.transaction() as s:
            if s.scalar(select(UserRow.id).limit(1)) is not None:
                return None
        password = secrets.token_urlsafe(18)
        self.create_user(username=username, password=password, roles=[Role.ADMIN.value], actor="system")
        return password

    def users_page(self, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the users by name, without password hashes, and how many there are."""
        with self.db.transaction() as s:
            page = s.scalars(select(UserRow).order_by(UserRow.username).limit(limit).offset(offset))
            rows = [_user_dict(u) for u in page]
            return rows, s.scalar(select(func.count()).select_from(UserRow)) or 0

    def set_roles(self, *, username: str, roles: list[str], actor: str) -> dict[str, Any]:
        """Replace a user's roles; their tokens issued before are refused at once."""
        checked = _checked_roles(roles)
        with self.db.transaction() as s:
            user = self._user(s, username)
            before = sorted(user.roles)
            if Role.ADMIN.value in before and Role.ADMIN.value not in checked:
                self._keep_an_admin(s, user.id)
            user.roles = checked
            user.token_version += 1
            audit.append(
                s,
                action="roles_changed",
                actor=actor,
                subject=user.username,
                detail={"before": before, "after": checked},
            )
            version, result = user.token_version, _user_dict(user)
        self.state.user_changed(result["id"], version)
        return result

    def disable(self, *, username: str, actor: str) -> dict[str, Any]:
        """Disable a user: no login, every token refused, every session ended."""
        with self.db.transaction() as s:
            user = self._user(s, username)
            if Role.ADMIN.value in user.roles:
                self._keep_an_admin(s, user.id)
            user.disabled = True
            user.token_version += 1
            sessions = self._end_sessions(s, user_id=user.id, keep=None, reason="disabled")
            audit.append(s, action="user_disabled", actor=actor, subject=user.username)
            result = _user_dict(user)
        self.state.user_changed(result["id"], DISABLED)
        for session in sessions:
            self.state.session_ended(session)
        return result

    def _user(self, s: Any, username: str) -> UserRow:
        user = s.scalar(select(UserRow).where(UserRow.username == normalize_username(username)))
        if user is None:
            raise NotFound(f"no user named {audit.clean(username)!r}")
        return user  # type: ignore[no-any-return]

    @staticmethod
    def _keep_an_admin(s: Any, user_id: str) -> None:
        admins = [
            u.id
            for u in s.scalars(select(UserRow).where(UserRow.disabled.is_(False)))
            if Role.ADMIN.value in u.roles
        ]
        if admins == [user_id]:
            raise Conflict("this is the last active admin; make someone else admin first")

    # ---- login, refresh, logout ------------------------------------------------------------------

    def login(self, *, username: str, password: str, client: str) -> TokenPair:
        """Check the password (argon2id even for unknown users) and open a session."""
        name = normalize_username(username)
        throttled = self.throttle.check(username=name, address=client)
        if throttled is not None:
            log.warning("login throttled", username=audit.clean(name), client=client, scope=throttled.scope)
            raise LoginThrottled(
                "too many failed logins; try again later", retry_after=max(throttled.retry_after, 1.0)
            )
        with self.db.transaction() as s:
            user = s.scalar(select(UserRow).where(UserRow.username == name)) if USERNAME.match(name) else None
        good = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not good or user.disabled:
            self._failed_login(name=name, client=client, user=user, good=good)
            raise LoginFailed("wrong username or password")
        self.throttle.succeeded(username=name)
        with self.db.transaction() as s:
            if self.passwords.needs_rehash(user.password_hash):
                s.execute(
                    update(UserRow)
                    .where(UserRow.id == user.id)
                    .values(password_hash=self.passwords.hash(password))
                )
            session = SessionRow(id=str(uuid.uuid4()), user_id=user.id, created_at=utcnow())
            s.add(session)
            pair = self._issue_pair(s, user=user, session=session.id)
            audit.append(
                s, action="login", actor=user.username, client=client, detail={"session": session.id}
            )
        log.info("login", username=user.username, client=client)
        return pair

    def _failed_login(self, *, name: str, client: str, user: UserRow | None, good: bool) -> None:
        self.throttle.failed(username=name, address=client)
        reason = "unknown_user" if user is None else ("disabled" if good else "wrong_password")
        count, _ = self.throttle.store.count(self.throttle._account(name))
        with self.db.transaction() as s:
            audit.append(
                s, action="login_failed", actor=name, subject=name, client=client, detail={"reason": reason}
            )
            if count == self.throttle.per_account:
                audit.append(
                    s, action="lockout", actor=name, subject=name, client=client, detail={"failures": count}
                )
        log.warning("login failed", username=audit.clean(name), client=client, reason=reason)

    def _issue_pair(self, s: Any, *, user: UserRow, session: str) -> TokenPair:
        common = {
            "ring": self.ring,
            "spec": self.spec,
            "user_id": user.id,
            "username": user.username,
            "roles": list(user.roles),
            "session": session,
            "version": user.token_version,
        }
        access, _ = issue(token_type="access", **common)  # type: ignore[arg-type]
        refresh, claims = issue(token_type="refresh", **common)  # type: ignore[arg-type]
        s.add(
            RefreshTokenRow(
                jti=claims["jti"],
                session_id=session,
                user_id=user.id,
                status="active",
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        )
        return TokenPair(access, refresh, self.spec.access_seconds, self.spec.refresh_seconds)

    def refresh(self, *, refresh_token: str, client: str) -> TokenPair:
        """Swap a refresh token for a new pair; a reused one ends the whole session (family)."""
        claims = verify(refresh_token, keys=self.ring.verifying.get, spec=self.spec, expected_type="refresh")
        with self.db.transaction() as s:
            outcome, pair = self._rotate(s, claims=claims, client=client)
        if outcome != "ok":
            self.state.session_ended(claims.session)
            raise InvalidToken(outcome)
        assert pair is not None
        return pair

    def _rotate(self, s: Any, *, claims: Claims, client: str) -> tuple[str, TokenPair | None]:
        row = s.get(RefreshTokenRow, claims.jti)
        session = s.get(SessionRow, claims.session)
        if row is None or session is None or row.session_id != session.id:
            return "unknown refresh token", None
        if session.revoked_at is not None:
            return "the session has ended", None
        used = s.execute(
            update(RefreshTokenRow)
            .where(RefreshTokenRow.jti == claims.jti, RefreshTokenRow.status == "active")
            .values(status="used", used_at=utcnow())
        )
        if used.rowcount != 1:
            # Someone presented a token that was already exchanged: the family may be stolen.
            self._end_sessions(s, user_id=session.user_id, keep=None, reason="refresh_reuse", only=session.id)
            audit.append(
                s,
                action="token_reuse",
                actor=claims.username,
                subject=claims.username,
                client=client,
                detail={"session": session.id, "jti": claims.jti},
            )
            log.warning("refresh token reuse; session revoked", username=claims.username, client=client)
            return "refresh token reuse detected; the session has been ended", None
        user = s.get(UserRow, session.user_id)
        if user is None or user.disabled:
            return "the account is disabled", None
        return "ok", self._issue_pair(s, user=user, session=session.id)

    def _end_sessions(
        self, s: Any, *, user_id: str, keep: str | None, reason: str, only: str | None = None
    ) -> list[str]:
        query = select(SessionRow).where(SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None))
        if only is not None:
            query = select(SessionRow).where(SessionRow.id == only)
        ended = []
        for session in s.scalars(query):
            if session.id == keep:
                continue
            session.revoked_at, session.revoked_reason = utcnow(), reason
            ended.append(session.id)
        if ended:
            s.execute(
                update(RefreshTokenRow)
                .where(RefreshTokenRow.session_id.in_(ended), RefreshTokenRow.status == "active")
                .values(status="revoked")
            )
        return ended

    def logout(self, *, claims: Claims, client: str) -> None:
        """End the session of this access token: its refresh tokens and access tokens stop working."""
        with self.db.transaction() as s:
            self._end_sessions(s, user_id=claims.subject, keep=None, reason="logout", only=claims.session)
            audit.append(
                s, action="logout", actor=claims.username, client=client, detail={"session": claims.session}
            )
        self.state.session_ended(claims.session)

    def change_password(self, *, claims: Claims, current: str, new: str, client: str) -> None:
        """Change the password after checking the current one; every other session ends."""
        with self.db.transaction() as s:
            user = s.get(UserRow, claims.subject)
        if user is None or not self.passwords.verify(user.password_hash, current):
            self.throttle.failed(username=claims.username, address=client)
            raise LoginFailed("the current password is wrong")
        check_new_password(
            new,
            username=user.username,
            min_length=self.settings.password_min_length,
            max_length=self.settings.password_max_length,
        )
        with self.db.transaction() as s:
            s.execute(
                update(UserRow)
                .where(UserRow.id == user.id)
                .values(password_hash=self.passwords.hash(new), password_changed_at=utcnow())
            )
            ended = self._end_sessions(s, user_id=user.id, keep=claims.session, reason="password_changed")
            audit.append(
                s,
                action="password_changed",
                actor=user.username,
                client=client,
                detail={"ended_sessions": len(ended)},
            )
        for session in ended:
            self.state.session_ended(session)

    # ---- verification ------------------------------------------------------------------------------

    def verify_access(self, token: str) -> Claims:
        """A valid, unrevoked access token's claims (signature checked locally)."""
        return self.verifier.verify_access(token)

    # ---- sharing (object-level access) ----------------------------------------------------------

    def owner_of(self, *, object_type: str, object_id: str) -> str:
        """Who owns a run (its starter) or a source (its creator); NotFound if there is none."""
        return shares.owner_of(self.db, object_type=object_type, object_id=object_id)

    def shared_with(self, *, object_type: str, object_id: str) -> frozenset[str]:
        """Usernames the object is shared with."""
        return shares.shared_with(self.db, object_type=object_type, object_id=object_id)

    def shared_ids(self, *, object_type: str, username: str) -> frozenset[str]:
        """Ids of the objects of a type shared with the user (for filtering lists)."""
        return shares.shared_ids(self.db, object_type=object_type, username=username)

    def share(self, *, object_type: str, object_id: str, username: str, actor: str, client: str) -> None:
        """Share an object the actor owns with another user (404 if not theirs to see, 403 if not owner)."""
        owner = self.owner_of(object_type=object_type, object_id=object_id)
        shared = self.shared_with(object_type=object_type, object_id=object_id)
        if actor != owner:
            if actor in shared:
                raise Forbidden(f"only the {object_type}'s owner may share it")
            raise NotFound(f"no {object_type} {audit.clean(object_id)!r}")
        with self.db.transaction() as s:
            target = self._user(s, username)
            if target.username not in shared and target.username != owner:
                s.add(
                    ShareRow(
                        object_type=object_type,
                        object_id=object_id,
                        username=target.username,
                        granted_by=actor,
                    )
                )
            audit.append(
                s,
                action="shared",
                actor=actor,
                subject=target.username,
                client=client,
                run_id=object_id if object_type == "run" else None,
                detail={"object_type": object_type, "object_id": object_id},
            )
