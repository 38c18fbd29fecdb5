"""Thumbnails: picked from the spec's preset sizes, made on first request, then kept.

A request is answered with the smallest preset of its method that is at least the size asked
(the largest preset when none is), as Synapse does with its default sizes. A thumbnail is made
once per content, preset and animation wish: its bytes go to the media store and a row
remembers them, so identical uploads share their thumbnails too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from homeserver.config import MediaConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.media.repository import MediaService, ServedContent
from homeserver.services.media.thumbnailer import (
    THUMBNAILABLE_TYPES,
    ImageTooLarge,
    NotAnImage,
    render_thumbnail,
)
from storage.media import MediaStore, ThumbnailRow
from storage.media_files import MediaFileStore


@dataclass(frozen=True, slots=True)
class Preset:
    width: int
    height: int
    method: str


# The sizes the spec recommends ("Thumbnails"), Synapse's defaults.
PRESETS = (
    Preset(32, 32, "crop"),
    Preset(96, 96, "crop"),
    Preset(320, 240, "scale"),
    Preset(640, 480, "scale"),
    Preset(800, 600, "scale"),
)
METHODS = ("crop", "scale")


def choose_preset(width: int, height: int, method: str) -> Preset:
    """The smallest preset of `method` at least `width`x`height`, else the largest of them."""
    candidates = sorted((p for p in PRESETS if p.method == method), key=lambda p: p.width * p.height)
    for preset in candidates:
        if preset.width >= width and preset.height >= height:
            return preset
    return candidates[-1]


_CacheKey = tuple[str, int, int, str, bool]


class ThumbnailService:
    def __init__(self, media: MediaService, store: MediaStore, files: MediaFileStore, config: MediaConfig) -> None:
        self._media = media
        self._store = store
        self._files = files
        self._config = config
        # Thumbnails being made, so that simultaneous requests make each one once.
        self._in_flight: dict[_CacheKey, asyncio.Task[ThumbnailRow]] = {}

    async def thumbnail(self, server_name: str, media_id: str, *, width: int, height: int, method: str,
                        animated: bool, timeout_ms: int, legacy: bool, allow_remote: bool = True) -> ServedContent:
        """A thumbnail of local or remote media. Remote media is fetched whole and thumbnailed
        here (as Synapse's dynamic thumbnails), not asked of its origin as a thumbnail."""
        if method not in METHODS:
            raise MatrixError(400, Codes.INVALID_PARAM, "'method' must be 'crop' or 'scale'")
        if width < 1 or height < 1:
            raise MatrixError(400, Codes.INVALID_PARAM, "'width' and 'height' must be positive")
        media = await self._media.get_uploaded(server_name, media_id, timeout_ms=timeout_ms, legacy=legacy,
                                               allow_remote=allow_remote)
        content = self._media.served(media)
        if content.media_type.split(";", 1)[0].strip().lower() not in THUMBNAILABLE_TYPES:
            raise MatrixError(400, Codes.UNKNOWN, "Cannot generate thumbnails for the requested content")
        assert media.sha256 is not None
        preset = choose_preset(width, height, method)
        key = (media.sha256, preset.width, preset.height, preset.method, animated)
        row = await self._store.get_thumbnail(*key)
        if row is None or not await self._files.exists(row.thumbnail_sha256):
            row = await self._make_once(key, content)
        return ServedContent(self._files.path_of(row.thumbnail_sha256), row.media_type, row.length, None)

    async def _make_once(self, key: _CacheKey, content: ServedContent) -> ThumbnailRow:
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._make(key, content))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def _forget(self, key: _CacheKey, task: asyncio.Task[ThumbnailRow]) -> None:
        self._in_flight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, in case every waiter went away

    async def _make(self, key: _CacheKey, content: ServedContent) -> ThumbnailRow:
        sha256, width, height, method, animated = key
        try:
            rendered = await asyncio.to_thread(render_thumbnail, str(content.path), width, height, method,
                                               animated, self._config.max_image_pixels)
        except ImageTooLarge:
            raise MatrixError(413, Codes.TOO_LARGE, "Content is too large to thumbnail") from None
        except NotAnImage:
            raise MatrixError(400, Codes.UNKNOWN, "Cannot generate thumbnails for the requested content") from None
        if rendered.data is None:  # the original is small enough to be its own thumbnail
            row = ThumbnailRow(rendered.media_type, sha256, content.length)
        else:
            stored = await self._files.write_bytes(rendered.data)
            row = ThumbnailRow(rendered.media_type, stored.sha256, stored.length)
        await self._store.add_thumbnail(sha256, width, height, method, animated, row)
        return row
