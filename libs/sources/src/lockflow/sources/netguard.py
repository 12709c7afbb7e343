"""The one guard for every outbound connection a source makes on a user's behalf (SSRF protection).

HTTP APIs, S3 endpoints and database servers all go through `NetPolicy.check_host`: the host is
resolved once (numeric forms such as `2130706433` or `0177.1` are read as the IPv4 address they
are, `localhost` is loopback whatever the resolver says), every address is checked against one table
of non-public ranges (loopback, private, shared, link-local, cloud metadata, documentation,
benchmarking, multicast, reserved; IPv4 inside IPv6 is checked as IPv4), and anything in it is refused
unless the host name or a network holding the address is in LOCKFLOW_ALLOW_HOSTS. The connector then
connects to the checked address itself, so a second DNS answer cannot swap it (DNS rebinding).

A connection that fails below the protocol (refused, reset, closed, timed out, not the expected
protocol) is reported to the user as one uniform `Unreachable` message, so the error text cannot tell
an open port from a closed one; the detail goes to the log only.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.logging import get_logger

log = get_logger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 5
ALLOW_SETTING = "LOCKFLOW_ALLOW_HOSTS"
Resolver = Callable[[str, int], list[str]]


def _table(*rows: tuple[str, str]) -> list[tuple[Network, str]]:
    return [(ipaddress.ip_network(cidr), kind) for cidr, kind in rows]


# Single cloud metadata addresses first: some lie inside wider ranges (169.254.0.0/16, 100.64.0.0/10).
METADATA = _table(
    ("169.254.169.254/32", "cloud metadata"),  # AWS, GCP, Azure, OpenStack, ...
    ("169.254.170.2/32", "cloud metadata"),  # AWS ECS task metadata
    ("168.63.129.16/32", "cloud metadata"),  # Azure wire server
    ("100.100.100.200/32", "cloud metadata"),  # Alibaba Cloud
    ("fd00:ec2::254/128", "cloud metadata"),  # AWS over IPv6
)
REFUSED_V4 = _table(
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),  # 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
REFUSED_V6 = _table(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "reserved"),  # IPv4-compatible (deprecated)
    ("64:ff9b:1::/48", "reserved"),  # local-use NAT64
    ("100::/64", "reserved"),  # discard-only
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "reserved"),  # site-local (deprecated)
    ("ff00::/8", "multicast"),
)
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
_NUMERIC_PART = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class ForbiddenDestination(InvalidInput):
    """The host is one connectors may not reach (or not a host at all)."""


class Unresolvable(InvalidInput):
    """The host name does not resolve (now; DNS may answer later)."""


class Unreachable(StageError):
    """A connection failed below the protocol; the message is the same whatever the reason."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(connection_failed(host, port))
        self.host, self.port = host, port


def connection_failed(host: str, port: int) -> str:
    """The one message a user sees for a refused, closed, reset, timed-out or non-matching connection."""
    shown = f"[{host}]" if ":" in host else host
    return f"could not connect to {shown}:{port} (connection failed or timed out)"


def unreachable(host: str, port: int, error: BaseException, *, kind: str) -> Unreachable:
    """The uniform error for a failed connection; its real cause goes to the log only."""
    log.warning(
        "source_connection_failed", kind=kind, host=host, port=port, error=f"{type(error).__name__}: {error}"
    )
    return Unreachable(host, port)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid name"
        raise Unresolvable(f"cannot resolve host {host!r}: {reason}") from exc
    return sorted({str(info[4][0]) for info in infos})


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a numeric host such as 2130706433, 0x7f.1 or 0177.0.0.1 stands for (as inet_aton reads it).

    Resolvers and drivers accept these forms, so the guard must read them the same way, not as names.
    """
    parts = host.split(".")
    if not all(_NUMERIC_PART.match(p) for p in parts):
        return None
    if len(parts) > 4:  # all numbers, yet no address: no real name looks like this either
        raise ForbiddenDestination(f"{host!r} is not a valid IPv4 address")
    values: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise ForbiddenDestination(f"{host!r} is not a valid IPv4 address")
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *leading, last = values
    if any(v > 255 for v in leading) or last >= 256 ** (4 - len(leading)):
        raise ForbiddenDestination(f"{host!r} is not a valid IPv4 address")
    number = 0
    for value in leading:
        number = number * 256 + value
    number = number * 256 ** (4 - len(leading)) + last
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """The address when host is an IP literal in any form the system would accept, else None."""
    if ":" in host:
        if "%" in host:
            raise ForbiddenDestination(f"an IPv6 address with a zone ({host!r}) is not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ForbiddenDestination(f"{host!r} is not a valid IPv6 address") from exc
    return numeric_ipv4(host)


def refused_kind(address: IPAddress) -> str | None:
    """Why an address is not public (e.g. 'loopback', 'private'), or None when it is."""
    for network, kind in METADATA:
        if address.version == network.version and address in network:
            return kind
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:  # the IPv4 address inside is what is reached
            return refused_kind(embedded)
        table = REFUSED_V6
    else:
        table = REFUSED_V4
    for network, kind in table:
        if address in network:
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address not in GLOBAL_UNICAST_V6:
        return "reserved"
    return None


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Destination:
    """A checked host: the name the user gave, its port, and the one address to connect to."""

    host: str
    port: int
    address: str


def normal_host(host: str) -> str:
    """The host as compared and resolved: lower case, no brackets, no trailing dot."""
    return host.strip().strip("[]").lower().rstrip(".")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


@dataclass(frozen=True)
class NetPolicy:
    """Which internal hosts are nevertheless allowed (names, addresses or CIDR networks)."""

    allow_hosts: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver)

    @classmethod
    def from_list(cls, entries: Iterable[str], resolver: Resolver = system_resolver) -> NetPolicy:
        """A policy from the allow_hosts setting."""
        hosts = tuple(normal_host(e) for e in entries if e.strip())
        return cls(allow_hosts=hosts, resolver=resolver)

    def _networks(self) -> list[Network]:
        networks: list[Network] = []
        for entry in self.allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue  # a host name, matched by name
        return networks

    def address_allowed(self, address: IPAddress) -> bool:
        """True when the address is public, or inside an allowed network."""
        plain = _plain(address)
        if any(plain.version == n.version and plain in n for n in self._networks()):
            return True
        return refused_kind(address) is None

    def check_host(self, host: str, port: int) -> Destination:
        """The host resolved once and checked, with the address to connect to; else ForbiddenDestination."""
        name = normal_host(host)
        if not name:
            raise ForbiddenDestination("the URL names no host")
        literal = literal_address(name)
        if literal is None and not _HOST_NAME.match(name):
            raise ForbiddenDestination(f"{host!r} is not a valid host name")
        allowed_by_name = name in self.allow_hosts
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        elif (name == "localhost" or name.endswith(".localhost")) and not allowed_by_name:
            addresses = [ipaddress.IPv4Address("127.0.0.1")]  # loopback by definition (RFC 6761)
        else:
            addresses = self._resolve(name, port)
        if not allowed_by_name:
            for address in addresses:
                if not self.address_allowed(address):
                    kind = refused_kind(address) or "non-public"
                    log.warning("destination_refused", host=name, port=port, address=str(address), kind=kind)
                    raise ForbiddenDestination(
                        f"refused to connect to {name}: it resolves to {address}, {_article(kind)} {kind} "
                        f"address (to allow it, add {name} to {ALLOW_SETTING})"
                    )
        chosen = next((a for a in addresses if _plain(a).version == 4), addresses[0])
        return Destination(host=name, port=port, address=str(_plain(chosen)))

    def _resolve(self, name: str, port: int) -> list[IPAddress]:
        addresses: list[IPAddress] = []
        for answer in self.resolver(name, port):
            try:
                addresses.append(ipaddress.ip_address(answer.split("%")[0]))
            except ValueError as exc:
                raise Unresolvable(f"host {name!r} resolves to {answer!r}, not an address") from exc
        if not addresses:
            raise Unresolvable(f"host {name!r} resolves to no address")
        return addresses

    def check_url(self, url: str) -> tuple[httpx.URL, str]:
        """An http(s) URL and the checked address to connect to, or ForbiddenDestination naming why."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ForbiddenDestination(
                f"only http and https URLs are allowed, not {scheme or 'no scheme'}://"
            )
        if not parts.hostname:
            raise ForbiddenDestination(f"the URL {url!r} has no host")
        if parts.username or parts.password:
            raise ForbiddenDestination("credentials in the URL are not allowed; use the auth settings")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise ForbiddenDestination(f"the URL {url!r} has an invalid port") from exc
        destination = self.check_host(parts.hostname, port)
        return httpx.URL(url), destination.address


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_port = 443 if url.scheme == "https" else 80
    return url.scheme, url.host.lower(), url.port or default_port


def _pinned(request_url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """Connect to the checked address while the server still sees the host name (Host header, SNI)."""
    host = request_url.host
    pinned = request_url.copy_with(host=address)
    default_port = 443 if request_url.scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets in a Host header
    host_header = shown if request_url.port in (None, default_port) else f"{shown}:{request_url.port}"
    extensions = {"sni_hostname": host} if request_url.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def pinned_send(
    client: httpx.Client,
    policy: NetPolicy,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes | None = None,
    kind: str,
) -> httpx.Response:
    """One request to the checked address of the URL's host, no redirect followed, the body left to stream.

    For clients that follow redirects themselves (S3 re-issues each one, and it comes back here).
    """
    checked, address = policy.check_url(url)
    target, extra_headers, extensions = _pinned(checked, address)
    kept = {k: v for k, v in headers.items() if k.lower() != "host"}
    request = client.build_request(
        method, target, headers={**kept, **extra_headers}, content=content, extensions=extensions
    )
    try:
        return client.send(request, stream=True, follow_redirects=False)
    except httpx.RequestError as exc:
        raise unreachable(checked.host, _port_of(checked), exc, kind=kind) from exc


def _port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def safe_request(
    client: httpx.Client,
    policy: NetPolicy,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    credentials: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    max_bytes: int = 100 * 1024 * 1024,
) -> httpx.Response:
    """One request with every hop checked; the body is read up to max_bytes; Unreachable if no answer.

    `credentials` are headers sent only to the first URL's origin: a redirect elsewhere goes without them.
    """
    current = url
    origin = _origin(httpx.URL(url))
    for _hop in range(MAX_REDIRECTS + 1):
        checked, address = policy.check_url(current)
        target, extra_headers, extensions = _pinned(checked, address)
        trusted = credentials if credentials and _origin(checked) == origin else {}
        request = client.build_request(
            method,
            target,
            headers={**(headers or {}), **trusted, **extra_headers},
            params=params or None,  # an empty dict would drop the query already in the URL
            extensions=extensions,
        )
        port = _port_of(checked)
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.RequestError as exc:
            raise unreachable(checked.host, port, exc, kind="api") from exc
        try:
            if response.is_redirect:
                location = response.headers.get("location", "")
                current = urljoin(str(checked), location)
                params = None  # the Location carries its own query
                continue
            _read_limited(response, max_bytes)
            return response
        except httpx.RequestError as exc:  # the answer broke off halfway
            raise unreachable(checked.host, port, exc, kind="api") from exc
        finally:
            response.close()
    raise InvalidInput(f"{url} redirected more than {MAX_REDIRECTS} times")


def _read_limited(response: httpx.Response, max_bytes: int) -> None:
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise InvalidInput(f"the response from {response.url.host} is larger than {max_bytes} bytes")
    response._content = bytes(body)
