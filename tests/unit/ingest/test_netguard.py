"""The one network guard every source connects through: ranges, host forms, allow list, pinning, errors."""

import socket

import pytest
from sqlalchemy.engine import make_url

from lockflow.common.errors import LockflowError
from lockflow.ingest.conn_db import DatabaseConnector, pinned
from lockflow.sources.checks import check_config, label_of, network_target
from lockflow.sources.configs import parse_config
from lockflow.sources.netguard import (
    ForbiddenDestination,
    NetPolicy,
    Unresolvable,
    connection_failed,
    numeric_ipv4,
)
from lockflow.sources.settings import SourceSettings


def no_lookup(host: str, _port: int) -> list[str]:
    raise AssertionError(f"the resolver was asked about {host!r}: an address must not need a lookup")


def answers(mapping: dict[str, list[str]]):  # a resolver from a table, never the network
    return lambda host, _port: mapping[host]


GUARD = NetPolicy.from_list([], resolver=no_lookup)


# ---- every refused range, as a literal address (no lookup) ------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.20.30.40", "private"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.0.0.8", "reserved"),
        ("192.0.2.2", "documentation"),
        ("192.88.99.1", "reserved"),
        ("192.168.1.1", "private"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.1", "benchmarking"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        # IPv6
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("::7f00:1", "reserved"),  # IPv4-compatible
        ("64:ff9b:1::1", "reserved"),
        ("100::1", "reserved"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "reserved"),  # Teredo
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("fec0::1", "reserved"),
        ("ff02::1", "multicast"),
        ("4000::1", "reserved"),  # outside global unicast 2000::/3
        # IPv4 inside IPv6 is judged as the IPv4 address it reaches
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::", "private"),  # 6to4 of 192.168.1.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
    ],
)
def test_every_non_public_range_is_refused_without_a_lookup(host: str, kind: str) -> None:
    with pytest.raises(ForbiddenDestination, match=kind) as refused:
        GUARD.check_host(host, 5432)
    assert "LOCKFLOW_ALLOW_HOSTS" in str(refused.value)
    assert host.strip("[]") in str(refused.value)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("017700000001", "127.0.0.1"),  # octal
        ("0x7f000001", "127.0.0.1"),  # hex
        ("0177.0.0.1", "127.0.0.1"),  # octal part
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short form: the last part fills the rest
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("3232235777", "192.168.1.1"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("010.0.0.1", "8.0.0.1"),  # 010 is octal 8: read as the system reads it, not as 10.0.0.1
        ("1.2.3.4", "1.2.3.4"),
    ],
)
def test_numeric_host_forms_are_read_as_the_system_reads_them(host: str, expected: str) -> None:
    assert str(numeric_ipv4(host)) == expected
    assert socket.inet_ntoa(socket.inet_aton(host)) == expected  # the C library agrees


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("2130706433", "loopback"),
        ("017700000001", "loopback"),
        ("0x7f000001", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("127.1", "loopback"),
        ("2852039166", "cloud metadata"),
        ("0xa9.0xfe.0xa9.0xfe", "cloud metadata"),
        ("3232235777", "private"),
        ("0", "unspecified"),
    ],
)
def test_numeric_host_forms_are_refused_without_a_lookup(host: str, kind: str) -> None:
    with pytest.raises(ForbiddenDestination, match=kind):
        GUARD.check_host(host, 3306)


@pytest.mark.parametrize(
    "host", ["0189.0.0.1", "256.1.1.1", "1.2.3.4.5", "127.0.0.256", "1.16777216", "a,b", "a b", "x/y", "h@st"]
)
def test_malformed_hosts_are_refused(host: str) -> None:
    with pytest.raises(ForbiddenDestination, match="not a valid"):
        GUARD.check_host(host, 80)


def test_an_ipv6_zone_and_an_empty_host_are_refused() -> None:
    with pytest.raises(ForbiddenDestination, match="zone"):
        GUARD.check_host("fe80::1%eth0", 80)
    with pytest.raises(ForbiddenDestination, match="no host"):
        GUARD.check_host("", 80)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "db.localhost", "x.y.localhost"])
def test_localhost_is_loopback_whatever_the_resolver_says(host: str) -> None:
    # Even a resolver that would answer a public address is not asked.
    with pytest.raises(ForbiddenDestination, match="loopback"):
        GUARD.check_host(host, 5432)


def test_names_resolving_to_internal_addresses_are_refused() -> None:
    policy = NetPolicy.from_list(
        [],
        resolver=answers(
            {
                "db.example.com": ["10.0.0.7"],
                "mixed.example.com": ["93.184.216.34", "192.168.0.5"],  # one bad answer is enough
                "v6.example.com": ["2606:2800:220:1::1", "fd00::5"],
                "mapped.example.com": ["::ffff:127.0.0.1"],
                "meta.example.com": ["169.254.169.254"],
            }
        ),
    )
    for host, kind in [
        ("db.example.com", "private"),
        ("mixed.example.com", "private"),
        ("v6.example.com", "private"),
        ("mapped.example.com", "loopback"),
        ("meta.example.com", "cloud metadata"),
    ]:
        with pytest.raises(ForbiddenDestination, match=f"{host}: it resolves to [^ ]+, an? {kind}"):
            policy.check_host(host, 5432)


def test_public_hosts_pass_and_the_checked_ipv4_address_is_the_one_to_use() -> None:
    policy = NetPolicy.from_list(
        [], resolver=answers({"db.example.com": ["2606:2800:220:1::1", "93.184.216.34"]})
    )
    destination = policy.check_host("DB.Example.com.", 5432)
    assert (destination.host, destination.port, destination.address) == (
        "db.example.com",
        5432,
        "93.184.216.34",
    )
    assert NetPolicy.from_list([], resolver=no_lookup).check_host("8.8.8.8", 53).address == "8.8.8.8"
    assert GUARD.check_host("2606:4700:4700::1111", 443).address == "2606:4700:4700::1111"


def test_the_allow_list_takes_names_addresses_and_networks() -> None:
    resolver = answers({"db.internal": ["10.1.1.1"], "other.internal": ["10.2.2.2"], "localhost": ["::1"]})
    policy = NetPolicy.from_list(
        ["db.internal", "127.0.0.1", "192.168.0.0/16", "localhost"], resolver=resolver
    )
    assert policy.check_host("db.internal", 5432).address == "10.1.1.1"
    assert policy.check_host("127.0.0.1", 5432).address == "127.0.0.1"
    assert policy.check_host("2130706433", 5432).address == "127.0.0.1"  # the same address, another form
    assert policy.check_host("::ffff:192.168.3.4", 5432).address == "192.168.3.4"  # mapped: judged as IPv4
    assert policy.check_host("localhost", 5432).address == "::1"  # allowed by name: resolved as usual
    for refused in ("other.internal", "127.0.0.2", "10.0.0.1", "::1"):
        with pytest.raises(ForbiddenDestination):
            policy.check_host(refused, 5432)


def test_a_name_that_does_not_resolve_is_unresolvable_not_forbidden() -> None:
    with pytest.raises(Unresolvable, match="no address"):
        NetPolicy.from_list([], resolver=answers({"gone.example.com": []})).check_host("gone.example.com", 80)
    with pytest.raises(Unresolvable, match="cannot resolve"):
        NetPolicy.from_list([]).check_host("no-such-host.invalid", 80)


def test_the_connection_failure_message_names_only_host_and_port() -> None:
    assert connection_failed("db.example.com", 5432) == (
        "could not connect to db.example.com:5432 (connection failed or timed out)"
    )
    assert connection_failed("2606:4700::1", 443).startswith("could not connect to [2606:4700::1]:443 ")


# ---- database URLs: a host is required, and the driver connects to the checked address ---------------


@pytest.mark.parametrize("url", ["postgresql:///shop", "postgresql://u:p@/shop", "mysql+pymysql://u:p@/shop"])
def test_a_database_url_without_a_host_is_refused(url: str) -> None:
    with pytest.raises(LockflowError, match="must name a host"):
        network_target(make_url(url))


def test_default_ports_and_sqlite_has_no_network_target() -> None:
    assert network_target(make_url("postgresql://u:p@db.example.com/shop")) == ("db.example.com", 5432)
    assert network_target(make_url("mariadb+pymysql://u:p@db.example.com/shop")) == ("db.example.com", 3306)
    assert network_target(make_url("mysql+pymysql://u:p@db.example.com:3307/shop")) == (
        "db.example.com",
        3307,
    )
    assert network_target(make_url("sqlite:///x.db")) is None


def test_libpq_gets_hostaddr_and_keeps_the_name_others_get_the_address() -> None:
    url, args = pinned(
        make_url("postgresql+psycopg2://u:p@db.example.com/shop?sslmode=verify-full"), "93.184.216.34"
    )
    assert url.host == "db.example.com" and args == {"hostaddr": "93.184.216.34"}  # TLS checks the name
    url, args = pinned(make_url("postgresql://u:p@db.example.com/shop"), "93.184.216.34")
    assert args == {"hostaddr": "93.184.216.34"}  # psycopg2 is PostgreSQL's default driver
    url, args = pinned(make_url("mysql+pymysql://u:p@db.example.com/shop"), "93.184.216.34")
    assert url.host == "93.184.216.34" and args == {}


def db(url: str, policy: NetPolicy) -> DatabaseConnector:
    config = parse_config("database", {"url": url, "table": "t"})
    return DatabaseConnector(config, policy=policy, allowed_dialects=["postgresql", "mysql"], allowed_dirs=[])  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_the_driver_connects_to_the_checked_address_not_a_new_lookup(
    scheme: str, banner_port: tuple[int, list[str]]
) -> None:
    port, seen = banner_port
    # `db.test` exists only in this resolver: a driver that looked the name up itself could not connect.
    policy = NetPolicy.from_list(["db.test"], resolver=answers({"db.test": ["127.0.0.1"]}))
    health = db(f"{scheme}://u:p@db.test:{port}/shop", policy).health()
    assert seen and set(seen) == {"127.0.0.1"}  # (libpq tries once with TLS, once without)
    assert not health.ok and not health.reachable
    assert health.message == f"could not connect to db.test:{port} (connection failed or timed out)"


def test_dns_rebinding_after_the_source_was_stored_is_refused_at_the_next_connection(
    banner_port: tuple[int, list[str]],
) -> None:
    port, seen = banner_port
    replies = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    policy = NetPolicy.from_list([], resolver=lambda _h, _p: next(replies))
    conn = db(f"postgresql://u:p@rebind.example.com:{port}/shop", policy)
    assert conn.check_network() is not None  # public when stored
    health = conn.health()  # now the name points at this machine
    assert not health.ok and "refused to connect to rebind.example.com" in health.message
    with pytest.raises(ForbiddenDestination, match="loopback"):
        list(conn.chunks(options=None, workdir=None))  # type: ignore[arg-type]
    assert seen == []


def test_storing_checks_database_hosts_and_tolerates_names_that_do_not_resolve_yet() -> None:
    settings = SourceSettings(allow_hosts=[])
    for url in (
        "postgresql://u:p@127.0.0.1/shop",
        "mysql://u:p@localhost:16379/db",
        "mysql://u:p@192.0.2.2/db",
        "postgresql://u:p@169.254.169.254:80/db",
        "postgresql://u:p@[::1]/db",
        "postgresql://u:p@0x7f000001/db",
    ):
        with pytest.raises(ForbiddenDestination, match="LOCKFLOW_ALLOW_HOSTS"):
            check_config(parse_config("database", {"url": url, "table": "t"}), settings)
    later = parse_config("database", {"url": "postgresql://u:p@not-yet.invalid/db", "table": "t"})
    check_config(later, settings)  # a name that does not resolve yet is stored; connections check again
    assert label_of(later, settings).startswith("postgresql+psycopg2://u:***@not-yet.invalid")
    allowed = SourceSettings(allow_hosts=["127.0.0.1"])
    check_config(parse_config("database", {"url": "postgresql://u:p@127.0.0.1/db", "table": "t"}), allowed)
