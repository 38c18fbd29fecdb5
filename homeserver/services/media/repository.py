"""The media repository's content: uploads, reserved uploads (/create), and finding content to serve.

Invariants:
- a `local_media` row has a size and hash only once its file is complete in the media store
  (content first, row second), so whatever a row points at can be served;
- a media ID reserved with /create gets content once, from its creator, before it expires;
- media IDs are 24 characters of [A-Za-z0-9], within the spec's [A-Za-z0-9_-] alphabet;
- quarantined media (an admin's decision, services/admin/media.py) is served to nobody: 404,
  its thumbnails included.

Remote media (an mxc:// URI of another server) is fetched from its origin once and kept
(`remote_media.RemoteMediaFetcher`); it is then served like local content.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import string
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from homeserver.config import MediaConfig
from homeserver.core.ids import is_valid_server_name
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.media.remote import RemoteMediaFetcher
from homeserver.services.ratelimit import Action, RateLimiter
from storage.media import LocalMedia, MediaStore, RemoteMedia
from storage.media_files import ContentTooLarge, MediaFileStore, StoredContent

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# How long a download waits at most for reserved content (the client's timeout_ms is capped
# here), and how often it looks for content uploaded through another process.
MAX_WAIT_MS = 60_000
_POLL_SECONDS = 0.5
# How stale a media's last_access_ts may get before serving it writes the time again.
ACCESS_RESOLUTION_MS = 10 * 60 * 1000

_MEDIA_ID_ALPHABET = string.ascii_letters + string.digits
_VALID_MEDIA_ID = re.compile(r"[A-Za-z0-9_\-]{1,255}")
# A Content-Type worth keeping: printable ASCII (it is sent back as a header).
_PRINTABLE_HEADER = re.compile(r"[\x20-\x7e]{1,255}")
_MAX_FILENAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class ServedContent:
    """Content ready to be sent: where its file is, and what to call it."""
    path: Path
    media_type: str
    length: int
    upload_name: str | None


class MediaService:
    def __init__(self, media: MediaStore, files: MediaFileStore, clock: Clock, config: MediaConfig,
                 server_name: str, remote: RemoteMediaFetcher, *, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._media = media
        self._files = files
        self._clock = clock
        self._config = config
        self._server_name = server_name
        self._remote = remote
        # Downloads waiting for reserved content, woken when it arrives through this process.
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def upload_config(self) -> dict[str, int]:
        return {"m.upload.size": self._config.max_upload_size}

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self._server_name}/{media_id}"

    # --- uploads ------------------------------------------------------------------------

    async def upload(self, requester: Requester, content: AsyncIterable[bytes], *, content_type: str | None,
                     filename: str | None, declared_length: int | None) -> str:
        """Store new content; its mxc:// URI. Each new URI counts against rc_media_create."""
        media_type, upload_name = _media_type(content_type), _upload_name(filename)
        await self._limiter.check(Action.MEDIA_CREATE, requester.user_id, user_id=requester.user_id)
        stored = await self._store(content, declared_length)
        media_id = _new_media_id()
        await self._media.add_media(LocalMedia(
            media_id=media_id, user_id=requester.user_id, created_ts=self._clock.now_ms(),
            media_type=media_type, upload_name=upload_name, media_length=stored.length, sha256=stored.sha256,
            authenticated=self._config.freeze_legacy_unauthenticated,
        ))
        return self.mxc(media_id)

    async def create(self, requester: Requester) -> tuple[str, int]:
        """Reserve an mxc:// URI for content uploaded later; the URI and when it expires.

        429 when the user already has `max_pending_media_uploads` reservations waiting, or
        past rc_media_create."""
        await self._limiter.check(Action.MEDIA_CREATE, requester.user_id, user_id=requester.user_id)
        now = self._clock.now_ms()
        lifetime = self._config.unused_expiration_time_ms
        pending, oldest = await self._media.pending_reservations(requester.user_id, now - lifetime)
        if pending >= self._config.max_pending_media_uploads:
            retry_after_ms = max(0, (oldest or now) + lifetime - now)
            raise MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many pending media uploads",
                              retry_after_ms=retry_after_ms)
        media_id = _new_media_id()
        await self._media.add_media(LocalMedia(
            media_id=media_id, user_id=requester.user_id, created_ts=now, media_type=None, upload_name=None,
            media_length=None, sha256=None, authenticated=False,
        ))
        return self.mxc(media_id), now + lifetime

    async def upload_to(self, requester: Requester, server_name: str, media_id: str,
                        content: AsyncIterable[bytes], *, content_type: str | None, filename: str | None,
                        declared_length: int | None) -> None:
        """Give a reserved mxc:// URI its content (PUT /upload/{serverName}/{mediaId})."""
        media_type, upload_name = _media_type(content_type), _upload_name(filename)
        if server_name != self._server_name:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown media ID")
        self._check_can_fill(requester, await self._get_local(media_id))
        stored = await self._store(content, declared_length)
        filled = await self._media.fill_reserved(
            media_id, media_type=media_type, upload_name=upload_name, media_length=stored.length,
            sha256=stored.sha256, authenticated=self._config.freeze_legacy_unauthenticated,
        )
        if not filled:  # another upload to the same ID finished first
            raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media ID already has content")
        for event in self._waiting.get(media_id, ()):
            event.set()

    def _check_can_fill(self, requester: Requester, media: LocalMedia | None) -> None:
        if media is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown media ID")
        if media.user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Only the creator of the media ID can upload to it")
        if media.uploaded:
            raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media ID already has content")
        if self._expired(media):
            raise MatrixError(404, Codes.NOT_FOUND, "Media ID has expired")

    async def store_fetched(self, user_id: str, data: bytes, media_type: str,
                            upload_name: str | None) -> tuple[str, StoredContent]:
        """Keep content the server fetched itself (a URL preview's image); its mxc:// URI and file."""
        try:
            upload_name = _upload_name(upload_name)
        except MatrixError:  # a name taken from a URL: not worth failing for
            upload_name = None
        stored = await self._files.write_bytes(data)
        media_id = _new_media_id()
        await self._media.add_media(LocalMedia(
            media_id=media_id, user_id=user_id, created_ts=self._clock.now_ms(), media_type=_media_type(media_type),
            upload_name=upload_name, media_length=stored.length, sha256=stored.sha256,
            authenticated=self._config.freeze_legacy_unauthenticated,
        ))
        return self.mxc(media_id), stored

    async def _store(self, content: AsyncIterable[bytes], declared_length: int | None) -> StoredContent:
        limit = self._config.max_upload_size
        too_large = MatrixError(413, Codes.TOO_LARGE, f"Cannot upload files larger than {limit} bytes")
        if declared_length is not None and declared_length > limit:
            raise too_large
        try:
            return await self._files.write_stream(content, limit)
        except ContentTooLarge:
            raise too_large from None

    # --- serving ------------------------------------------------------------------------

    async def get_content(self, server_name: str, media_id: str, *, timeout_ms: int, legacy: bool,
                          allow_remote: bool = True) -> ServedContent:
        """Uploaded content to serve, waiting up to `timeout_ms` for reserved content to arrive."""
        return self.served(await self.get_uploaded(server_name, media_id, timeout_ms=timeout_ms, legacy=legacy,
                                                   allow_remote=allow_remote))

    async def get_uploaded(self, server_name: str, media_id: str, *, timeout_ms: int, legacy: bool,
                           allow_remote: bool = True) -> LocalMedia | RemoteMedia:
        """Media with its content, waiting up to `timeout_ms` for reserved content to arrive;
        another server's media from our cache, else fetched from it (unless not `allow_remote`).

        `legacy`: asked through the deprecated unauthenticated endpoints, which do not serve
        media uploaded (or fetched) during a freeze, nor fetch remote media then."""
        frozen = legacy and self._config.freeze_legacy_unauthenticated
        media: LocalMedia | RemoteMedia
        if server_name != self._server_name:
            if not is_valid_server_name(server_name) or not _VALID_MEDIA_ID.fullmatch(media_id):
                raise MatrixError(404, Codes.NOT_FOUND, "Not found")
            media = await self._remote.get(server_name, media_id, timeout_ms=timeout_ms,
                                           allow_fetch=allow_remote and not frozen)
        else:
            media = await self._wait_uploaded(media_id, timeout_ms)
        if (frozen and media.authenticated) or media.quarantined_by is not None:
            raise MatrixError(404, Codes.NOT_FOUND, "Not found")
        await self._note_access(media)
        return media

    async def _note_access(self, media: LocalMedia | RemoteMedia) -> None:
        """Remember when media was last served (what the admin's clean-ups go by), to within
        ACCESS_RESOLUTION_MS: a popular file costs a write that often, not per download."""
        now = self._clock.now_ms()
        if media.last_access_ts is not None and now - media.last_access_ts < ACCESS_RESOLUTION_MS:
            return
        if isinstance(media, RemoteMedia):
            await self._media.touch_remote(media.origin, media.media_id, now)
        else:
            await self._media.touch_local(media.media_id, now)

    def served(self, media: LocalMedia | RemoteMedia) -> ServedContent:
        assert media.sha256 is not None and media.media_length is not None, "not uploaded yet"
        return ServedContent(self._files.path_of(media.sha256), media.media_type or DEFAULT_CONTENT_TYPE,
                             media.media_length, media.upload_name)

    async def _wait_uploaded(self, media_id: str, timeout_ms: int) -> LocalMedia:
        deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_WAIT_MS) / 1000
        while True:
            media = await self._get_local(media_id)
            if media is None or (not media.uploaded and self._expired(media)):
                raise MatrixError(404, Codes.NOT_FOUND, "Not found")
            if media.uploaded:
                return media
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MatrixError(504, Codes.NOT_YET_UPLOADED, "Content has not yet been uploaded")
            event = asyncio.Event()
            self._waiting.setdefault(media_id, set()).add(event)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, _POLL_SECONDS))
            finally:
                waiting = self._waiting.get(media_id)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiting[media_id]

    async def _get_local(self, media_id: str) -> LocalMedia | None:
        if not _VALID_MEDIA_ID.fullmatch(media_id):
            return None
        return await self._media.get_media(media_id)

    def _expired(self, media: LocalMedia) -> bool:
        return media.created_ts + self._config.unused_expiration_time_ms <= self._clock.now_ms()


def _new_media_id() -> str:
    return "".join(secrets.choice(_MEDIA_ID_ALPHABET) for _ in range(24))


def _media_type(content_type: str | None) -> str:
    """The type to store for an upload: as the client said, unless absent or not fit for a header."""
    content_type = (content_type or "").strip()
    return content_type if _PRINTABLE_HEADER.fullmatch(content_type) else DEFAULT_CONTENT_TYPE


def _upload_name(filename: str | None) -> str | None:
    if not filename:
        return None
    if len(filename) > _MAX_FILENAME_LENGTH:
        raise MatrixError(400, Codes.INVALID_PARAM, f"'filename' is longer than {_MAX_FILENAME_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in filename):
        raise MatrixError(400, Codes.INVALID_PARAM, "'filename' contains control characters")
    return filename
