"""Pure pieces: the in-memory failure window and the escaping of user text."""

from lockflow.audit.chain import clean
from lockflow.auth.throttle import LoginThrottle, MemoryFailures


def test_the_window_slides() -> None:
    now = [1000.0]
    throttle = LoginThrottle(MemoryFailures(window=3600, clock=lambda: now[0]), per_account=3, per_address=10)
    for _ in range(3):
        assert throttle.check(username="ana", address="10.0.0.1") is None
        throttle.failed(username="ana", address="10.0.0.1")
    refused = throttle.check(username="ANA ", address="10.0.0.9")  # same account, any spelling, any address
    assert refused is not None and refused.scope == "account" and refused.retry_after == 3600
    now[0] += 3600
    assert throttle.check(username="ana", address="10.0.0.1") is None


def test_the_address_limit_counts_every_account() -> None:
    throttle = LoginThrottle(MemoryFailures(), per_account=100, per_address=5)
    for i in range(5):
        throttle.failed(username=f"user{i}", address="10.0.0.7")
    refused = throttle.check(username="someone-new", address="10.0.0.7")
    assert refused is not None and refused.scope == "address"
    assert throttle.check(username="someone-new", address="10.0.0.8") is None


def test_user_text_cannot_forge_a_line() -> None:
    forged = "eve\r\n2026-01-01T00:00:00Z INFO login username=admin\u2028ok\x00"
    cleaned = clean(forged)
    assert cleaned is not None
    assert "\n" not in cleaned and "\r" not in cleaned and "\u2028" not in cleaned and "\x00" not in cleaned
    assert cleaned.startswith("eve\\r\\n2026") and "\\x2028ok\\x00" in cleaned
    assert clean("x" * 500) == "x" * 200
