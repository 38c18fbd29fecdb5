"""URL previews: fetch a page a user links to and describe it with OpenGraph data.

Use case: GET .../preview_url?url=...&ts=... . Off unless `media.url_preview_enabled`.

Invariants:
- the server only ever connects to public addresses: every address a host name resolves to
  is checked (any private one refuses the whole host, as Synapse does), IP literals too, and
  redirects are followed by hand so that each hop is checked again; ranges in
  `url_preview_ip_range_allowlist` are let through;
- a fetch reads at most `url_preview_max_size` bytes and lasts at most `url_preview_timeout_ms`;
- a page's image is fetched the same way and kept in the media repository: the preview
  points at it with an mxc:// URI;
- previews are kept per URL for an hour (the `ts` parameter may ask for an older one), and
  simultaneous requests for one URL fetch it once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from homeserver.config import MediaConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.media.opengraph import decode_html, parse_open_graph
from homeserver.services.media.repository import MediaService
from homeserver.services.media.thumbnailer import ImageTooLarge, NotAnImage, image_size
from storage.media import UrlPreviewStore
from storage.media_files import MediaFileStore

logger = logging.getLogger(__name__)

PREVIEW_LIFETIME_MS = 3600 * 1000
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_USER_AGENT = "ChatGO URL preview (bot)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(OSError):
    """A host resolved to an address previews may not reach (an OSError, as aiohttp expects
    of a resolver)."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    url: yarl.URL          # after redirects
    media_type: str
    charset: str | None
    body: bytes            # empty for content types we do not preview


class UrlPreviewService:
    def __init__(self, media: MediaService, files: MediaFileStore, store: UrlPreviewStore, clock: Clock,
                 config: MediaConfig) -> None:
        self._media = media
        self._files = files
        self._store = store
        self._clock = clock
        self._config = config
        self._allowlist = [ipaddress.ip_network(r, strict=False) for r in config.url_preview_ip_range_allowlist]
        self._in_flight: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def preview(self, requester: Requester, url: str, ts: int | None) -> dict[str, Any]:
        if not self._config.url_preview_enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "URL previews are disabled")
        parsed = _http_url(url)
        now = self._clock.now_ms()
        ts = now if ts is None else ts
        cached = await self._store.get_preview(url, ts)
        if cached is not None and cached[1] > ts:
            return cached[0]
        task = self._in_flight.get(url)
        if task is None:
            task = asyncio.ensure_future(self._fetch_preview(requester.user_id, url, parsed))
            self._in_flight[url] = task
            task.add_done_callback(lambda done: self._forget(url, done))
        return await asyncio.shield(task)

    def _forget(self, url: str, task: asyncio.Task[dict[str, Any]]) -> None:
        self._in_flight.pop(url, None)
        if not task.cancelled():
            task.exception()  # retrieved here, in case every waiter went away

    async def _fetch_preview(self, user_id: str, url: str, parsed: yarl.URL) -> dict[str, Any]:
        async with self._session() as session:
            page = await self._fetch(session, parsed)
            if page.media_type.startswith("image/"):
                og: dict[str, Any] = {}
                await self._keep_image(user_id, page, og)
            elif page.media_type in _HTML_TYPES:
                og = dict(await asyncio.to_thread(_open_graph_of, page.body, page.charset))
                image_url = og.pop("og:image", None)
                if image_url:
                    await self._fetch_image(session, user_id, page.url, image_url, og)
            else:
                og = {}
        now = self._clock.now_ms()
        await self._store.add_preview(url, now, now + PREVIEW_LIFETIME_MS, og)
        return og

    async def _fetch_image(self, session: aiohttp.ClientSession, user_id: str, page_url: yarl.URL,
                           image_url: str, og: dict[str, Any]) -> None:
        """Keep the page's image in the repository; a failure only leaves the preview without it."""
        try:
            image = await self._fetch(session, _http_url(str(page_url.join(yarl.URL(image_url)))))
        except (MatrixError, ValueError) as err:
            logger.info("URL preview: no image from %s: %s", image_url, err)
            return
        if image.media_type.startswith("image/"):
            await self._keep_image(user_id, image, og)

    async def _keep_image(self, user_id: str, image: _Fetched, og: dict[str, Any]) -> None:
        filename = image.url.name or None
        mxc, stored = await self._media.store_fetched(user_id, image.body, image.media_type, filename)
        og.update({"og:image": mxc, "og:image:type": image.media_type, "matrix:image:size": stored.length})
        stored_path = str(self._files.path_of(stored.sha256))
        try:
            width, height = await asyncio.to_thread(image_size, stored_path, self._config.max_image_pixels)
        except (NotAnImage, ImageTooLarge):
            return
        og.update({"og:image:width": width, "og:image:height": height})

    # --- fetching, with the address checks -----------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        # One session per preview: its resolver checks every address a name resolves to.
        connector = aiohttp.TCPConnector(resolver=_CheckingResolver(self._allowed), use_dns_cache=False)
        timeout = aiohttp.ClientTimeout(total=self._config.url_preview_timeout_ms / 1000)
        return aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"User-Agent": _USER_AGENT, "Accept-Language": "en"})

    async def _fetch(self, session: aiohttp.ClientSession, url: yarl.URL) -> _Fetched:
        for _ in range(MAX_REDIRECTS + 1):
            self._check_literal_host(url)
            try:
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in _REDIRECTS and "Location" in response.headers:
                        url = _http_url(str(url.join(yarl.URL(response.headers["Location"]))))
                        continue
                    if not 200 <= response.status < 300:
                        raise MatrixError(502, Codes.UNKNOWN, f"The page answered {response.status}")
                    return await self._read(url, response)
            except aiohttp.ClientConnectorError as err:
                if isinstance(err.os_error, BlockedAddress):
                    raise _blocked() from None
                raise MatrixError(502, Codes.UNKNOWN, "Could not connect to the page's server") from None
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                raise MatrixError(502, Codes.UNKNOWN, f"Failed to fetch the page: {type(err).__name__}") from None
        raise MatrixError(502, Codes.UNKNOWN, "Too many redirects")

    async def _read(self, url: yarl.URL, response: aiohttp.ClientResponse) -> _Fetched:
        media_type = response.content_type.lower()
        if not (media_type in _HTML_TYPES or media_type.startswith("image/")):
            return _Fetched(url, media_type, None, b"")
        limit = self._config.url_preview_max_size
        too_large = MatrixError(502, Codes.TOO_LARGE, f"The page is larger than {limit} bytes")
        if response.content_length is not None and response.content_length > limit:
            raise too_large
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise too_large
        return _Fetched(url, media_type, response.charset, bytes(body))

    def _check_literal_host(self, url: yarl.URL) -> None:
        # aiohttp connects to an IP literal without asking the resolver: check it here.
        try:
            address = ipaddress.ip_address((url.host or "").strip("[]"))
        except ValueError:
            return
        if not self._allowed(address):
            raise _blocked()

    def _allowed(self, address: IPAddress) -> bool:
        if any(address in network for network in self._allowlist):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_global and not address.is_multicast


class _CheckingResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, and refuses a host with any address not allowed."""

    def __init__(self, allowed) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not self._allowed(ipaddress.ip_address(result["host"].split("%", 1)[0])):
                raise BlockedAddress(f"{host} resolves to a private address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def _http_url(url: str) -> yarl.URL:
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        raise MatrixError(400, Codes.INVALID_PARAM, "'url' is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise MatrixError(400, Codes.INVALID_PARAM, "'url' must be an http or https URL")
    return parsed


def _open_graph_of(body: bytes, charset: str | None) -> dict[str, str]:
    return parse_open_graph(decode_html(body, charset))  # up to url_preview_max_size of HTML: in a thread


def _blocked() -> MatrixError:
    return MatrixError(403, Codes.FORBIDDEN, "The URL's address is not allowed for previews")

