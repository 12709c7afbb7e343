"""A verified access token is checked once per while, but its revocation on every request."""

from pathlib import Path

import pytest
from pydantic import SecretStr

from lockflow.access import verifier as access_verifier
from lockflow.access.tokens import InvalidToken
from lockflow.auth.keys import generate_private_pem
from lockflow.auth.router import build_auth_service
from lockflow.auth.service import AuthService
from lockflow.auth.settings import AuthSettings
from lockflow.common.db import Database

PASSWORD = "correct horse battery staple"


@pytest.fixture
def auth(tmp_path: Path) -> AuthService:
    settings = AuthSettings(
        signing_key=SecretStr(generate_private_pem().decode()),
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        redis_url=None,
        environment="test",
    )
    service = build_auth_service(settings, db=Database(str(settings.database_url)))
    service.create_user(username="ana", password=PASSWORD, roles=["analyst"], actor="test")
    return service


def test_the_same_token_is_decoded_once_and_a_logout_still_refuses_it_at_once(
    auth: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_verify = access_verifier.verify

    def counting(token: str, **kwargs: object) -> object:
        calls.append(token)
        return real_verify(token, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(access_verifier, "verify", counting)
    token = auth.login(username="ana", password=PASSWORD, client="test").access_token
    first = auth.verify_access(token)
    assert auth.verify_access(token) == first
    assert len(calls) == 1

    auth.logout(claims=first, client="test")
    with pytest.raises(InvalidToken, match="session has ended"):
        auth.verify_access(token)


def test_a_kept_token_is_verified_again_once_its_time_is_up(
    auth: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = auth.login(username="ana", password=PASSWORD, client="test").access_token
    auth.verify_access(token)
    calls: list[str] = []
    real_verify = access_verifier.verify

    def counting(token: str, **kwargs: object) -> object:
        calls.append(token)
        return real_verify(token, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(access_verifier, "verify", counting)
    now = access_verifier.time.time()
    monkeypatch.setattr(access_verifier.time, "time", lambda: now + access_verifier.VERIFIED_SECONDS + 1)
    auth.verify_access(token)
    assert len(calls) == 1
    with pytest.raises(InvalidToken):
        auth.verify_access(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
