"""The address a request comes from: the one answer every rate limit and log line uses.

Without configuration it is the socket peer. Behind a reverse proxy every peer is the proxy,
so the operator names their proxies (``AWAITHUMANS_TRUSTED_PROXIES``) and the client is read
from ``X-Forwarded-For``. Each proxy *appends* the address it received the request from, so
the header reads left to right from the claimed origin to the nearest hop, and everything
left of the first hop that no trusted proxy wrote is whatever the client chose to send. The
walk therefore goes right to left over trusted hops and stops at the first untrusted one:
a client that prepends made-up entries only adds text we never reach, and cannot choose the
bucket it is counted in.

RFC 7239's ``Forwarded`` header is not read: the proxies people put in front of this server
(nginx, Caddy, haproxy, cloud load balancers) all write ``X-Forwarded-For``, and reading two
headers would give a client two to play against each other.

Pure functions over strings: no web framework, so any door (HTTP, a test) can call them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TypeAlias

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

#: What a request with no peer at all (some test transports) is counted as.
UNKNOWN = "unknown"


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, ``1.2.3.4:port`` or ``[v6]:port``; else None.

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``, what a dual-stack socket reports for
    an IPv4 peer) is returned as the IPv4 address, so one host has one spelling.
    """
    text = text.strip()
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


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]
) -> str:
    """The client's address for rate limits and logs.

    Args:
        peer: The socket peer's host (``request.client.host``), None when there is none.
        forwarded_for: Every ``X-Forwarded-For`` header of the request, in order (several
            headers are one comma-separated list, as HTTP defines).
        proxies: The trusted proxies; empty means the header is never read.

    Returns:
        The peer, unless it is a trusted proxy: then the right-most ``X-Forwarded-For``
        entry that is not a trusted proxy. When every entry is trusted, the left-most one
        (the furthest hop we can vouch for). An entry that is not an address ends the walk
        at the hop that wrote it: a trusted proxy reported something we cannot read, so the
        request is counted as that proxy's rather than as whatever lies further left.
    """
    if peer is None:
        return UNKNOWN
    hop = parse_address(peer)
    if hop is None or not proxies or not _trusted(hop, proxies):
        return str(hop) if hop is not None else peer
    entries = [entry for header in forwarded_for for entry in header.split(",")]
    for entry in reversed(entries):
        if not entry.strip():
            continue  # "a, , b" or a trailing comma: no hop there
        found = parse_address(entry)
        if found is None:
            break
        hop = found
        if not _trusted(hop, proxies):
            break
    return str(hop)
