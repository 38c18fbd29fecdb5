"""Server discovery: where to connect for a server name, and which Host and TLS name to use.

https://spec.matrix.org/v1.19/server-server-api/#resolving-server-names, step by step:

1. an IP literal: that address, the given port or 8448; Host = the server name; the
   certificate must be valid for the IP.
2. a hostname with an explicit port: that host and port; Host = the server name; certificate
   for the hostname.
3. `https://<hostname>/.well-known/matrix/server` names a delegated `host[:port]`:
   3.1 an IP literal: it with its port or 8448, Host = the delegated value;
   3.2 with a port: that, Host = `<delegated_hostname>:<port>`;
   3.3/3.4 SRV `_matrix-fed._tcp.<delegated>` then (deprecated) `_matrix._tcp.<delegated>`:
       the targets, Host and certificate = the delegated hostname;
   3.5 the delegated hostname on 8448.
4/5. no (valid) well-known: SRV `_matrix-fed._tcp.<hostname>` then `_matrix._tcp.<hostname>`,
   Host and certificate = the hostname;
6. the hostname on 8448.

Well-known answers are cached: for the response's Cache-Control max-age / Expires within
[5 minutes, 48 hours], 24 hours (±10%) when it says nothing; failures for an hour, or two
minutes when the domain had a valid answer lately; a cached answer is refreshed in the last
fifth of its life, and kept when the refresh fails for a transient reason. SRV look-ups use
dnspython's asynchronous resolver with its TTL cache; the resolver is a constructor argument
so tests replace it (the one outside part). `federation.server_name_overrides` maps a server
name straight to a host and port for test networks.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from federation.transport import Transport, read_limited
from homeserver.core.ids import is_valid_server_name

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_DEFAULT_TTL = 24 * 3600.0
WELL_KNOWN_MIN_TTL = 5 * 60.0
WELL_KNOWN_MAX_TTL = 48 * 3600.0
WELL_KNOWN_FAILURE_TTL = 3600.0
WELL_KNOWN_DOWN_TTL = 2 * 60.0            # failure soon after a valid answer: try again sooner
WELL_KNOWN_REMEMBER_VALID = 2 * 3600.0   # how long past its expiry a valid answer is remembered
WELL_KNOWN_JITTER = 0.1
WELL_KNOWN_REFRESH_FRACTION = 0.2        # refresh in the last fifth of an answer's life
WELL_KNOWN_MAX_BYTES = 50 * 1024
WELL_KNOWN_TIMEOUT = 10.0
WELL_KNOWN_MAX_REDIRECTS = 10
SRV_SERVICES = ("_matrix-fed._tcp", "_matrix._tcp")  # the second is deprecated (spec steps 3.4, 5)


@dataclass(frozen=True, slots=True)
class Route:
    """One way to reach a server: connect to `host`:`port` (a hostname to resolve or an IP
    literal, unbracketed), send `Host: host_header`, and expect a certificate for `tls_name`."""
    server_name: str
    host: str
    port: int
    host_header: str
    tls_name: str

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def server_hostname(self) -> str | None:
        """The SNI / certificate name to ask aiohttp for when it differs from the URL's host."""
        return None if self.tls_name == self.host else self.tls_name


def split_server_name(name: str) -> tuple[str, int | None]:
    """(host, port) of `host[:port]`; an IPv6 literal's brackets are removed. ValueError if invalid."""
    if not is_valid_server_name(name):
        raise ValueError(f"{name!r} is not a valid server name")
    if name.startswith("["):
        end = name.index("]")
        host, rest = name[1:end], name[end + 1:]
        return host, int(rest[1:]) if rest else None
    host, _, port = name.partition(":")
    return host, int(port) if port else None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class _WellKnownEntry:
    result: str | None
    expires: float
    ttl: float


class _WellKnownFailure(Exception):
    def __init__(self, reason: str, *, temporary: bool) -> None:
        super().__init__(reason)
        self.temporary = temporary


class Discovery:
    def __init__(self, transport: Transport, *, dns_resolver: Any = None, well_known_port: int = 443,
                 now: Callable[[], float] = time.time) -> None:
        """`dns_resolver`: an object with dnspython's `async resolve(qname, rdtype)` (default:
        `dns.asyncresolver.Resolver` with a cache, made on first use). `well_known_port`: the
        port .well-known is fetched from, 443 except in tests."""
        self._transport = transport
        self._dns = dns_resolver
        self._well_known_port = well_known_port
        self._now = now
        self._overrides = {o.server_name: o for o in transport.config.server_name_overrides}
        self._well_known: dict[str, _WellKnownEntry] = {}
        self._had_valid: dict[str, float] = {}  # host -> until when a valid answer is remembered
        self._in_flight: dict[str, asyncio.Future[str | None]] = {}

    async def resolve(self, server_name: str) -> list[Route]:
        """The routes to try in order (several only for SRV records). ValueError for a bad name."""
        override = self._overrides.get(server_name)
        host, port = split_server_name(server_name)
        if override is not None:
            return [Route(server_name, override.host, override.port, server_name, host)]
        if is_ip_literal(host):  # step 1
            return [Route(server_name, host, port or DEFAULT_PORT, server_name, host)]
        if port is not None:  # step 2
            return [Route(server_name, host, port, server_name, host)]
        delegated = await self.well_known(host)  # step 3
        if delegated is not None:
            d_host, d_port = split_server_name(delegated)
            if is_ip_literal(d_host):  # 3.1
                return [Route(server_name, d_host, d_port or DEFAULT_PORT, delegated, d_host)]
            if d_port is not None:  # 3.2
                return [Route(server_name, d_host, d_port, delegated, d_host)]
            return await self._srv_or_default(server_name, d_host)  # 3.3 - 3.5
        return await self._srv_or_default(server_name, host)  # steps 4 - 6

    async def _srv_or_default(self, server_name: str, host: str) -> list[Route]:
        for service in SRV_SERVICES:
            targets = await self._srv(f"{service}.{host}")
            if targets:
                return [Route(server_name, target, port, host, host) for target, port in targets]
        return [Route(server_name, host, DEFAULT_PORT, host, host)]

    # --- SRV -------------------------------------------------------------------------------

    async def _srv(self, qname: str) -> list[tuple[str, int]]:
        """The targets of an SRV record in RFC 2782 order (priority, then weighted random);
        empty when there is none, when it says "no service" (target "."), or on DNS errors."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self._resolver().resolve(qname, "SRV")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as err:
            logger.info("SRV look-up of %s failed: %s", qname, err)
            return []
        records = [(r.priority, r.weight, r.target.to_text(omit_final_dot=True), r.port) for r in answer]
        records = [r for r in records if r[2] not in ("", ".")]
        ordered: list[tuple[str, int]] = []
        for priority in sorted({r[0] for r in records}):
            group = [r for r in records if r[0] == priority]
            while group:
                total = sum(r[1] for r in group)
                pick = random.uniform(0, total) if total else 0
                chosen = group[0]
                for r in group:
                    pick -= r[1]
                    if pick <= 0:
                        chosen = r
                        break
                group.remove(chosen)
                ordered.append((chosen[2], chosen[3]))
        return ordered

    def _resolver(self) -> Any:
        if self._dns is None:
            import dns.asyncresolver
            import dns.resolver

            resolver = dns.asyncresolver.Resolver()
            resolver.cache = dns.resolver.Cache()
            self._dns = resolver
        return self._dns

    # --- .well-known ---------------------------------------------------------------------------

    async def well_known(self, host: str) -> str | None:
        """The delegated server name from `https://host/.well-known/matrix/server`, or None."""
        now = self._now()
        entry = self._well_known.get(host)
        if entry is not None and now < entry.expires - WELL_KNOWN_REFRESH_FRACTION * entry.ttl:
            return entry.result
        pending = self._in_flight.get(host)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh_well_known(host, entry))
            self._in_flight[host] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(host, None))
        return await asyncio.shield(pending)

    async def _refresh_well_known(self, host: str, entry: _WellKnownEntry | None) -> str | None:
        try:
            result, ttl = await self._fetch_well_known(host)
        except _WellKnownFailure as failure:
            now = self._now()
            still_valid = entry is not None and entry.result is not None and now < entry.expires
            if failure.temporary and still_valid:
                return entry.result  # keep the answer we have; the peer is probably back soon
            logger.info("no usable .well-known/matrix/server for %s: %s", host, failure)
            ttl = WELL_KNOWN_DOWN_TTL if self._had_valid.get(host, 0) > now else WELL_KNOWN_FAILURE_TTL
            ttl *= random.uniform(1 - WELL_KNOWN_JITTER, 1 + WELL_KNOWN_JITTER)
            result = None
        now = self._now()
        if result is not None:
            self._had_valid[host] = now + ttl + WELL_KNOWN_REMEMBER_VALID
        self._well_known[host] = _WellKnownEntry(result, now + ttl, ttl)
        return result

    async def _fetch_well_known(self, host: str) -> tuple[str, float]:
        """(delegated server name, cache time in seconds), or _WellKnownFailure."""
        port = "" if self._well_known_port == 443 else f":{self._well_known_port}"
        url = f"https://{host}{port}/.well-known/matrix/server"
        try:
            async with self._transport.session.get(
                url, allow_redirects=True, max_redirects=WELL_KNOWN_MAX_REDIRECTS,
                timeout=aiohttp.ClientTimeout(total=WELL_KNOWN_TIMEOUT),
            ) as resp:
                body = await read_limited(resp, WELL_KNOWN_MAX_BYTES)
                if body is None:
                    raise _WellKnownFailure("response too large", temporary=True)
                if resp.status >= 500:
                    raise _WellKnownFailure(f"HTTP {resp.status}", temporary=True)
                if resp.status != 200:
                    raise _WellKnownFailure(f"HTTP {resp.status}", temporary=False)
                headers = resp.headers
        except aiohttp.TooManyRedirects:
            raise _WellKnownFailure("too many redirects", temporary=False) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise _WellKnownFailure(f"{type(err).__name__}: {err}", temporary=True) from None
        try:
            delegated = orjson.loads(body)["m.server"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            raise _WellKnownFailure("not a JSON object with m.server", temporary=False) from None
        if not isinstance(delegated, str) or not is_valid_server_name(delegated):
            raise _WellKnownFailure(f"m.server {delegated!r} is not a server name", temporary=False)
        ttl = cache_period(headers, self._now())
        if ttl is None:
            ttl = WELL_KNOWN_DEFAULT_TTL * random.uniform(1 - WELL_KNOWN_JITTER, 1 + WELL_KNOWN_JITTER)
        # Within bounds whatever the headers say (no-store included): not hammered, not forever.
        return delegated, min(max(ttl, WELL_KNOWN_MIN_TTL), WELL_KNOWN_MAX_TTL)


def cache_period(headers: Any, now: float) -> float | None:
    """Seconds a response may be cached from its Cache-Control / Expires headers: 0 for
    no-store (or an unreadable Expires), None when the headers say nothing."""
    directives: dict[str, str | None] = {}
    for header in headers.getall("Cache-Control", []):
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            directives[name.strip().lower()] = value.strip().strip('"') or None
    if "no-store" in directives:
        return 0
    max_age = directives.get("max-age")
    if max_age is not None:
        try:
            return float(int(max_age))
        except ValueError:
            pass
    expires = headers.get("Expires")
    if expires is not None:
        try:
            return email.utils.parsedate_to_datetime(expires).timestamp() - now
        except (TypeError, ValueError):
            return 0  # RFC 9111: an invalid Expires means "already expired"
    return None
