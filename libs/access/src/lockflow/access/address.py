"""The client's address as the login throttle and the audit log see it.

The socket peer is the client unless the peer is a configured proxy (LOCKFLOW_TRUSTED_PROXIES);
then X-Forwarded-For is read from the right, past every trusted proxy, and the first address no
trusted proxy vouches for is the client. Anything left of it was written by the client and is ignored,
so a spoofed header from anyone else changes nothing.
"""

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR networks as networks; ValueError names an entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


def _address(value: str) -> Address | None:
    """The IP address in a peer or X-Forwarded-For element ("1.2.3.4", "1.2.3.4:80", "[::1]:80")."""
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(value: str, proxies: Sequence[Network]) -> bool:
    address = _address(value)
    return address is not None and any(address in network for network in proxies)


def resolve_client(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client's address: the peer, or the right-most untrusted X-Forwarded-For hop behind proxies."""
    if not peer:
        return UNKNOWN
    if not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            address = _address(hop)
            return str(address) if address is not None else hop
    # Every hop is a proxy of ours (or there is no header): the left-most one is the best we know.
    return hops[0] if hops else peer


def client_address(connection: HTTPConnection) -> str:
    """The client of a request to an app with access installed (app.state.access), proxies considered."""
    access: Any = getattr(connection.app.state, "access", None)
    proxies: Sequence[Network] = access.proxies if access is not None else ()
    peer = connection.client.host if connection.client else None
    return resolve_client(peer, connection.headers.getlist("x-forwarded-for"), proxies)
