"""The guard on URLs the server fetches for its clients (``callback_url``): no SSRF.

An agent names the URL and the server posts to it, from inside the operator's network. Left
alone, a task could make the server post into that network: a database's HTTP port, an
admin console on loopback, the cloud's metadata service (credentials). So the server
refuses to connect to any address that is not public: loopback, private (RFC 1918, unique
local ``fc00::/7``, carrier-grade NAT), link-local, the metadata endpoints, unspecified,
multicast and the other reserved ranges.

Two checks, one rule:

* At create time, a ``callback_url`` whose host is an address literal (in any spelling the
  resolver accepts: ``127.1``, ``0x7f000001``, ``[::ffff:127.0.0.1]``) is refused at once.
* At connect time, every delivery resolves the host itself, checks every address it gets,
  and connects only to those checked addresses, so a name that resolves elsewhere the second
  time (DNS rebinding) cannot slip through. Redirects are never followed (webhook.py).

``AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS`` (``none``, ``loopback``, ``true``) relaxes the rule:
``loopback`` lets callbacks reach this machine (``awaithumans dev`` and the test helpers
set it: relays run next to the server), ``true`` lets them reach any private network (an
on-premises relay). The metadata endpoints, unspecified and multicast addresses stay
refused whatever the setting: no webhook receiver lives there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from awaithumans.server.settings import AllowPrivateCallbacks as AllowPrivate

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services: AWS/GCP/Azure/OpenStack (and its IPv6 twin on AWS
# Nitro), AWS ECS task metadata, Alibaba Cloud.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
# "This network": Linux connects 0.x.y.z to the local host.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# What each setting lets through, by the kind :func:`address_kind` names.
_ALLOWED_KINDS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "loopback": frozenset({"loopback"}),
    "all": frozenset({"loopback", "private", "link-local", "reserved"}),
}

# Spellings of an IPv4 address that inet_aton accepts and a URL parser leaves as a "name":
# 127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1.
_IPV4_SHORTHAND = re.compile(r"[0-9a-fA-FxX.]+")


class OutboundRefused(Exception):
    """A delivery's host is, or resolves to, an address the server may not reach."""

    def __init__(self, host: str, address: IPAddress, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        shown = host if host == str(address) else f"{host} ({address})"
        super().__init__(
            f"{shown} is a {kind} address: refused (set AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS"
            " to reach private networks)"
        )


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is what is reached."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is (``loopback``, ``private`` ...), or None."""
    ip = _embedded_ipv4(address)
    if ip in _METADATA or address in _METADATA:
        return "cloud metadata"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "private"
    if not ip.is_global:
        return "reserved"  # documentation, benchmarking, 240/4, broadcast ...
    return None


def refused_kind(address: IPAddress, allow: AllowPrivate) -> str | None:
    """The kind of ``address`` if the setting ``allow`` refuses it, else None."""
    kind = address_kind(address)
    if kind is None or kind in _ALLOWED_KINDS[allow]:
        return None
    return kind


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an address if it is one (as the resolver would read it), else None."""
    bare = host.strip("[]").split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) is still fe80::1
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _IPV4_SHORTHAND.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def url_refusal(url: str, allow: AllowPrivate) -> str | None:
    """Why ``url`` may not be fetched, judging by its literal host alone; None if it may.

    A host name is not resolved here (it is, at every connect): this is the early, cheap
    answer for the URLs that are already wrong.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None  # not a URL: the caller's own check says so
    address = literal_address(host) if host else None
    if address is None:
        return None
    kind = refused_kind(address, allow)
    return None if kind is None else str(OutboundRefused(host or "", address, kind))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the setting allows.

    It resolves the host itself, refuses the connection if any address it resolves to is
    refused (a name that mixes public and private addresses is not a receiver, it is an
    attempt), and connects to the checked addresses, one after another, never resolving
    again. TLS still verifies the certificate against the host name: httpcore passes the
    name, not the address, as the server name.
    """

    def __init__(self, allow: AllowPrivate, inner: httpcore.AsyncNetworkBackend | None = None):
        self.allow = allow
        self._inner = inner or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        """Every address ``host`` stands for, checked; raises :class:`OutboundRefused`."""
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
                )
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
            addresses = _unique(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                                for info in infos)  # fmt: skip
        for address in addresses:
            kind = refused_kind(address, self.allow)
            if kind is not None:
                raise OutboundRefused(host, address, kind)
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.resolve(host, port, timeout):
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from a callback_url")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a :class:`GuardedBackend`, with no proxy.

    httpx (0.29) takes no network backend, so the connection pool it builds (unopened) is
    replaced by the same pool over the guard; :func:`guarded_client` checks it took.
    """

    def __init__(self, allow: AllowPrivate, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # The CA bundle as httpx finds it (SSL_CERT_FILE included), loaded once.
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        self.backend = GuardedBackend(allow)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )


def guarded_client(allow: AllowPrivate, *, timeout: float) -> httpx.AsyncClient:
    """An HTTP client for client-named URLs: guarded connects, no redirects, no proxies.

    Environment proxies (``HTTPS_PROXY`` ...) are not used: through a proxy, the proxy
    resolves and connects, and the address could not be checked.
    """
    transport = GuardedTransport(allow)
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or pool._network_backend is not (
        transport.backend
    ):
        # A future httpx that renamed its pool would otherwise send unguarded.
        raise RuntimeError("the outbound guard could not be installed on httpx's transport")
    return httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
