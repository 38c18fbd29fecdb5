"""The connection layer of outbound federation: one aiohttp session for every peer.

TLS verifies peers' certificates against the system's CAs plus the configured
`federation.ca_certificates` (verification can be switched off for development only). Every
address a connection is about to use — resolved from a name or written as an IP literal, on a
first request or after a redirect — passes the IP range filter: `ip_range_denylist` (private,
loopback, link-local, CGNAT, multicast... by default) unless `ip_range_allowlist` lets it
through. The check sits in the connector's socket factory, so nothing can go around it.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.resolver import ThreadedResolver

from homeserver.config import FederationConfig

USER_AGENT = "ChatGO"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeniedAddress(OSError):
    """A connection to an address in the denylist (and not in the allowlist) was refused."""

    def __init__(self, address: str) -> None:
        super().__init__(errno.EACCES, f"connections to {address} are denied by federation.ip_range_denylist")
        self.address = address


class IpRangeFilter:
    """Which addresses outbound federation may connect to. The unspecified addresses (0.0.0.0,
    ::) are always refused; an IPv4-mapped IPv6 address is judged as its IPv4 address."""

    def __init__(self, denylist: Iterable[str], allowlist: Iterable[str] = ()) -> None:
        self._deny = [ipaddress.ip_network(r, strict=False) for r in denylist]
        self._allow = [ipaddress.ip_network(r, strict=False) for r in allowlist]

    def allows(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_unspecified:
            return False
        if any(ip in network for network in self._allow):
            return True
        return not any(ip in network for network in self._deny)

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """For aiohttp's TCPConnector: refuse a denied address before its socket exists."""
        family, type_, proto, _, sockaddr = addr_info
        if not self.allows(sockaddr[0]):
            raise DeniedAddress(sockaddr[0])
        return socket.socket(family=family, type=type_, proto=proto)


def client_ssl_context(verify: bool, ca_files: Iterable[Path] = ()) -> ssl.SSLContext:
    """The TLS context for connections to peers."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        for path in ca_files:
            context.load_verify_locations(cafile=str(path))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body of a response, or None when it is longer than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Transport:
    """Owns the aiohttp session used for all federation traffic (created on first use, in the
    running event loop) and closes it with `close()`."""

    def __init__(self, config: FederationConfig, ca_files: Iterable[Path] = (), *, user_agent: str = USER_AGENT) -> None:
        self.config = config
        self.ip_filter = IpRangeFilter(config.ip_range_denylist, config.ip_range_allowlist)
        self._ca_files = list(ca_files)
        missing = [str(p) for p in self._ca_files if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"federation.ca_certificates: no such file {missing[0]}")
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Made on first use: loading the system's CAs takes a while.
            context = client_ssl_context(self.config.verify_certificates, self._ca_files)
            connector = aiohttp.TCPConnector(
                ssl=context, resolver=ThreadedResolver(), socket_factory=self.ip_filter.socket_factory,
                limit=0, limit_per_host=8, ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_ms / 1000,
                                              sock_connect=self.config.connect_timeout_ms / 1000),
                headers={"User-Agent": self._user_agent},
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
