"""Which address is the client: the peer, unless the peer is a trusted proxy."""

import pytest
from pydantic import ValidationError

from lockflow.access.address import parse_networks, resolve_client
from lockflow.auth.settings import AuthSettings

PROXIES = parse_networks(["10.0.0.0/8", "192.0.2.1"])


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert resolve_client("127.0.0.1", ["203.0.113.7"], ()) == "127.0.0.1"
    assert resolve_client("198.51.100.4", ["10.0.0.1, 203.0.113.7"], PROXIES) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() -> None:
    assert resolve_client("10.1.2.3", ["203.0.113.7"], PROXIES) == "203.0.113.7"
    # The client wrote "6.6.6.6"; the proxies appended what they saw, right to left.
    assert resolve_client("192.0.2.1", ["6.6.6.6, 203.0.113.7, 10.9.9.9"], PROXIES) == "203.0.113.7"
    assert resolve_client("10.1.2.3", ["6.6.6.6", "203.0.113.7"], PROXIES) == "203.0.113.7"


def test_ports_brackets_and_mapped_addresses_are_understood() -> None:
    assert resolve_client("10.1.2.3", ["203.0.113.7:5555"], PROXIES) == "203.0.113.7"
    assert resolve_client("10.1.2.3", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert resolve_client("::ffff:10.1.2.3", ["203.0.113.7"], PROXIES) == "203.0.113.7"


def test_no_header_or_only_proxies_falls_back_to_what_is_known() -> None:
    assert resolve_client("10.1.2.3", [], PROXIES) == "10.1.2.3"
    assert resolve_client("10.1.2.3", [" , "], PROXIES) == "10.1.2.3"
    assert resolve_client("10.1.2.3", ["10.4.4.4, 10.5.5.5"], PROXIES) == "10.4.4.4"
    assert resolve_client(None, ["203.0.113.7"], PROXIES) == "unknown"


def test_the_setting_reads_addresses_and_networks_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCKFLOW_TRUSTED_PROXIES", '["10.0.0.0/8", " 192.0.2.1 ", "2001:db8::/32"]')
    settings = AuthSettings()
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]
    assert [str(n) for n in settings.proxy_networks()] == ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]
    assert AuthSettings(trusted_proxies=[]).proxy_networks() == ()
    with pytest.raises(ValidationError, match=r"LOCKFLOW_TRUSTED_PROXIES: 'proxy\.internal' is not an IP"):
        AuthSettings(trusted_proxies=["proxy.internal"])
