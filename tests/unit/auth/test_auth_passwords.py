"""argon2id at OWASP's minimum or above; password rules; settings that fail fast."""

import pytest
from pydantic import ValidationError

from lockflow.auth.passwords import Passwords, check_new_password
from lockflow.auth.settings import AuthSettings
from lockflow.common.errors import InvalidInput


def test_hashes_are_argon2id_at_owasp_minimum_or_above() -> None:
    passwords = Passwords.from_settings(AuthSettings())
    encoded = passwords.hash("correct horse battery")
    variant, version, params, _salt, _digest = encoded.split("$")[1:]
    m, t, p = (int(kv.split("=")[1]) for kv in params.split(","))
    assert variant == "argon2id" and version == "v=19"
    assert m >= 19 * 1024 and t >= 2 and p >= 1
    assert passwords.verify(encoded, "correct horse battery")
    assert not passwords.verify(encoded, "correct horse battery!")
    assert not passwords.verify(None, "lockflow-dummy-password-for-timing")  # the dummy never matches


def test_weaker_hashes_are_marked_for_rehash() -> None:
    strong = Passwords.from_settings(AuthSettings())
    weak = Passwords(memory_kib=8 * 1024, time_cost=1, parallelism=1)
    assert strong.needs_rehash(weak.hash("correct horse battery"))
    assert not strong.needs_rehash(strong.hash("correct horse battery"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"argon2_memory_kib": 4096}, "OWASP"),
        ({"argon2_time_cost": 1}, "OWASP"),
        ({"failures_per_account_per_hour": 101}, "100"),
        ({"access_token_seconds": 86400}, "short-lived"),
        ({"environment": "production", "secret_key": "x" * 40}, "SIGNING_KEY"),
        ({"environment": "production"}, "SECRET_KEY"),
    ],
)
def test_settings_fail_fast(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuthSettings(**overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 12"), ("x" * 200, "at most 128"), ("Alice.Example", "username")],
)
def test_new_password_rules(password: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_new_password(password, username="alice.example", min_length=12, max_length=128)
