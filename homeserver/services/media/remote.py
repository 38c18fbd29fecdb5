"""Other servers' media: fetched over federation on first request, then served from here.

Use case: a client asks for `mxc://<other server>/<id>`. We ask the origin with
`GET /_matrix/federation/v1/media/download/{mediaId}` (signed; Matrix v1.11), whose answer is
multipart/mixed: JSON metadata, then the bytes or a `Location` to GET them from (a plain GET
through the federation transport, so the IP range filter still applies). The bytes are
streamed into the media store as they arrive, never held whole in memory. A server too old for
that endpoint (404/405/400 `M_UNRECOGNIZED`, or no Matrix error at all) is asked the legacy
way, `GET /_matrix/media/v3/download/{serverName}/{mediaId}?allow_remote=false`.

Invariants:
- a `remote_media` row exists only once its bytes are complete in the media store, so a
  second request is served locally even when the origin is down;
- simultaneous requests for the same media fetch it once (one task per (origin, media_id));
- nothing larger than `media.max_upload_size` is accepted (502 M_TOO_LARGE, as Synapse);
- errors as the client should see them: the origin unreachable or misbehaving -> 502
  (`client_error`), the origin's 404 -> 404 M_NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse

from federation.client import FederationClient, FederationError, MediaStream, RemoteError, client_error, path
from homeserver.config import MediaConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from storage.media import MediaStore, RemoteMedia
from storage.media_files import ContentTooLarge, MediaFileStore, StoredContent

logger = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
_PRINTABLE_HEADER = re.compile(r"[\x20-\x7e]{1,255}")
_FILENAME_STAR = re.compile(r"""filename\*\s*=\s*(?:utf-8|UTF-8)''([^;\s]+)""")
_FILENAME = re.compile(r"""filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))""")


class RemoteMediaFetcher:
    def __init__(self, client: FederationClient, store: MediaStore, files: MediaFileStore, clock: Clock,
                 config: MediaConfig) -> None:
        self._client = client
        self._store = store
        self._files = files
        self._clock = clock
        self._config = config
        self._in_flight: dict[tuple[str, str], asyncio.Task[RemoteMedia]] = {}

    async def get(self, origin: str, media_id: str, *, timeout_ms: int, allow_fetch: bool) -> RemoteMedia:
        """The media, from our cache or (when `allow_fetch`) from its origin."""
        cached = await self._store.get_remote(origin, media_id)
        if cached is not None and await self._files.exists(cached.sha256):
            return cached
        if not allow_fetch:
            raise MatrixError(404, Codes.NOT_FOUND, "Not found")
        key = (origin, media_id)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(origin, media_id, timeout_ms))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: a client going away does not cancel the fetch others wait for.
        return await asyncio.shield(task)

    def _forget(self, key: tuple[str, str], task: asyncio.Task[RemoteMedia]) -> None:
        self._in_flight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, in case every waiter went away

    async def _fetch(self, origin: str, media_id: str, timeout_ms: int) -> RemoteMedia:
        limit = self._config.max_upload_size
        try:
            stored, raw_type, disposition = await self._download(origin, media_id, timeout_ms)
        except ContentTooLarge:
            raise MatrixError(502, Codes.TOO_LARGE, f"Remote media is larger than {limit} bytes") from None
        except RemoteError as err:
            if err.status == 404:
                raise MatrixError(404, Codes.NOT_FOUND, "Remote media not found") from None
            if err.status == 504 and err.errcode == Codes.NOT_YET_UPLOADED:  # reserved there, not uploaded yet
                raise MatrixError(504, Codes.NOT_YET_UPLOADED, "Content has not yet been uploaded") from None
            raise client_error(err) from None
        except FederationError as err:
            logger.info("fetching mxc://%s/%s failed: %s", origin, media_id, err)
            raise client_error(err) from None
        media = RemoteMedia(
            origin=origin, media_id=media_id, media_type=_media_type(raw_type), upload_name=_filename(disposition),
            media_length=stored.length, sha256=stored.sha256, fetched_ts=self._clock.now_ms(),
            authenticated=self._config.freeze_legacy_unauthenticated,
        )
        await self._store.add_remote(media)
        # As stored: content an admin quarantined (by hash) arrives quarantined.
        return await self._store.get_remote(origin, media_id) or media

    async def _download(self, origin: str, media_id: str, timeout_ms: int) -> tuple[StoredContent, str, str | None]:
        """The media from its origin, streamed into the media store, with its Content-Type and
        Content-Disposition."""
        query = {"timeout_ms": str(timeout_ms)}
        try:
            async with self._client.get_media(
                    origin, path("/_matrix/federation/v1/media/download/{}", media_id), query=query) as media:
                if media.location is None:
                    return await self._keep(media)
                location = media.location
        except RemoteError as err:
            if not _endpoint_unknown(err):
                raise
            async with self._client.get_media(
                    origin, path("/_matrix/media/v3/download/{}/{}", origin, media_id),
                    query={**query, "allow_remote": "false"}, multipart=False) as media:
                return await self._keep(media)
        # A redirect part. The URL is not kept (the spec says it may expire); its content is.
        async with self._client.get_url_media(location) as media:
            return await self._keep(media)

    async def _keep(self, media: MediaStream) -> tuple[StoredContent, str, str | None]:
        stored = await self._files.write_stream(media.chunks, self._config.max_upload_size)
        return stored, media.content_type, media.disposition


def _endpoint_unknown(err: RemoteError) -> bool:
    """The origin does not know the federation media endpoints (a server older than v1.11):
    an unrecognised-endpoint answer, not a Matrix 'no such media'."""
    if err.errcode == Codes.UNRECOGNIZED:
        return True
    return err.errcode is None and err.status in (400, 404, 405, 501)


def _media_type(content_type: str) -> str:
    content_type = content_type.strip()
    return content_type if _PRINTABLE_HEADER.fullmatch(content_type) else DEFAULT_CONTENT_TYPE


def _filename(disposition: str | None) -> str | None:
    """The file name a Content-Disposition gives (RFC 6266: filename* preferred), if sane."""
    if not disposition:
        return None
    name: str | None = None
    if match := _FILENAME_STAR.search(disposition):
        name = urllib.parse.unquote(match.group(1), errors="replace")
    elif match := _FILENAME.search(disposition):
        name = match.group(1).replace('\\"', '"') if match.group(1) is not None else match.group(2)
    if not name or len(name) > 255 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return None
    return name
