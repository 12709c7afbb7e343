"""Outbound HTTP that cannot be pointed at the server's own network (SSRF protection).

Every address a host name resolves to is checked (loopback, private, link-local, shared, reserved,
multicast and cloud metadata addresses are refused unless explicitly allowed); the request then
connects to the checked address itself, so a second DNS answer cannot swap it (DNS rebinding);
redirects are followed by hand and each hop is checked again; only http and https are allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from lockflow.common.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 5
# Cloud metadata services that are not covered by "not global" (169.254.169.254 already is).
METADATA = {
    ipaddress.ip_address("168.63.129.16"),  # Azure wire server
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
}
Resolver = Callable[[str, int], list[str]]


class ForbiddenDestination(InvalidInput):
    """The URL points at an address connectors may not reach."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class NetPolicy:
    """Which internal hosts are nevertheless allowed (names or CIDR networks)."""

    allow_hosts: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver)

    @classmethod
    def from_list(cls, entries: Iterable[str], resolver: Resolver = system_resolver) -> NetPolicy:
        """A policy from the allow_hosts setting."""
        return cls(allow_hosts=tuple(e.strip().lower() for e in entries if e.strip()), resolver=resolver)

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
        plain = (
            address.ipv4_mapped
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped
            else address
        )
        if any(plain in network for network in self._networks()):
            return True
        return plain.is_global and not plain.is_multicast and plain not in METADATA

    def check_url(self, url: str) -> tuple[httpx.URL, str]:
        """The URL and the checked address to connect to, or ForbiddenDestination naming why."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ForbiddenDestination(
                f"only http and https URLs are allowed, not {scheme or 'no scheme'}://"
            )
        host = (parts.hostname or "").lower()
        if not host:
            raise ForbiddenDestination(f"the URL {url!r} has no host")
        if parts.username or parts.password:
            raise ForbiddenDestination("credentials in the URL are not allowed; use the auth settings")
        port = parts.port or (443 if scheme == "https" else 80)
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)]
        if not addresses:
            raise InvalidInput(f"host {host!r} resolves to no address")
        if host not in self.allow_hosts:
            refused = [a for a in addresses if not self.address_allowed(a)]
            if refused:
                raise ForbiddenDestination(
                    f"refused to connect to {host}: it resolves to {refused[0]}, a "
                    f"{_kind(refused[0])} address (to allow it, list it in LOCKFLOW_ALLOW_HOSTS)"
                )
        return httpx.URL(url), str(addresses[0])


def _kind(address: IPAddress) -> str:
    plain = (
        address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    )
    if plain in METADATA or str(plain) == "169.254.169.254":
        return "cloud metadata"
    for name in ("loopback", "private", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(plain, f"is_{name}"):
            return name.replace("_", "-")
    return "non-public"


def _pinned(request_url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """Connect to the checked address while the server still sees the host name (Host header, SNI)."""
    host = request_url.host
    literal = f"[{address}]" if ":" in address else address
    pinned = request_url.copy_with(host=literal.strip("[]"))
    default_port = 443 if request_url.scheme == "https" else 80
    host_header = host if request_url.port in (None, default_port) else f"{host}:{request_url.port}"
    extensions = {"sni_hostname": host} if request_url.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def safe_request(
    client: httpx.Client,
    policy: NetPolicy,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    max_bytes: int = 100 * 1024 * 1024,
) -> httpx.Response:
    """One request with every hop checked; the body is read up to max_bytes."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        checked, address = policy.check_url(current)
        target, extra_headers, extensions = _pinned(checked, address)
        request = client.build_request(
            method,
            target,
            headers={**(headers or {}), **extra_headers},
            params=params or None,  # an empty dict would drop the query already in the URL
            extensions=extensions,
        )
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            if response.is_redirect:
                location = response.headers.get("location", "")
                current = urljoin(str(checked), location)
                params = None  # the Location carries its own query
                continue
            _read_limited(response, max_bytes)
            return response
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
