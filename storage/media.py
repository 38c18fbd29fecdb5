"""MediaStore: local media, cached remote media, and their thumbnails. Tables: local_media,
remote_media, media_thumbnails.
UrlPreviewStore: fetched URL previews. Tables: url_previews.

The bytes themselves are files of the MediaFileStore (storage/media_files.py), named by the
SHA-256 these rows hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class LocalMedia:
    media_id: str
    user_id: str
    created_ts: int
    media_type: str | None
    upload_name: str | None
    media_length: int | None  # None: reserved by /create, content not uploaded yet
    sha256: str | None
    authenticated: bool

    @property
    def uploaded(self) -> bool:
        return self.media_length is not None


@dataclass(frozen=True, slots=True)
class RemoteMedia:
    """Another server's content, fetched and kept (always complete)."""
    origin: str
    media_id: str
    media_type: str
    upload_name: str | None
    media_length: int
    sha256: str
    fetched_ts: int
    authenticated: bool

    @property
    def uploaded(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class ThumbnailRow:
    media_type: str
    thumbnail_sha256: str
    length: int


_MEDIA_COLUMNS = "media_id, user_id, created_ts, media_type, upload_name, media_length, sha256, authenticated"
_REMOTE_COLUMNS = "origin, media_id, media_type, upload_name, media_length, sha256, fetched_ts, authenticated"


class MediaStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_media(self, media: LocalMedia) -> None:
        """Record uploaded content, or reserve a media ID (media_length and sha256 None)."""
        await self._db.execute(
            f"INSERT INTO local_media ({_MEDIA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            media.media_id, media.user_id, media.created_ts, media.media_type, media.upload_name,
            media.media_length, media.sha256, media.authenticated,
        )

    async def fill_reserved(self, media_id: str, *, media_type: str, upload_name: str | None,
                            media_length: int, sha256: str, authenticated: bool) -> bool:
        """Give a reserved media ID its content; False when it already had some (a race lost)."""
        status = await self._db.execute(
            """UPDATE local_media SET media_type = $2, upload_name = $3, media_length = $4, sha256 = $5,
                                      authenticated = $6
               WHERE media_id = $1 AND media_length IS NULL""",
            media_id, media_type, upload_name, media_length, sha256, authenticated,
        )
        return status == "UPDATE 1"

    async def get_media(self, media_id: str) -> LocalMedia | None:
        row = await self._db.fetchrow(f"SELECT {_MEDIA_COLUMNS} FROM local_media WHERE media_id = $1", media_id)
        return LocalMedia(**row) if row else None

    async def pending_reservations(self, user_id: str, created_after_ts: int) -> tuple[int, int | None]:
        """How many media IDs the user reserved after the given time and has not uploaded yet,
        and when the oldest of them was created."""
        row = await self._db.fetchrow(
            """SELECT count(*) AS pending, min(created_ts) AS oldest FROM local_media
               WHERE user_id = $1 AND media_length IS NULL AND created_ts > $2""",
            user_id, created_after_ts,
        )
        return row["pending"], row["oldest"]

    async def get_remote(self, origin: str, media_id: str) -> RemoteMedia | None:
        row = await self._db.fetchrow(
            f"SELECT {_REMOTE_COLUMNS} FROM remote_media WHERE origin = $1 AND media_id = $2", origin, media_id)
        return RemoteMedia(**row) if row else None

    async def add_remote(self, media: RemoteMedia) -> None:
        # Two processes may fetch the same media at once; both stored the same content.
        await self._db.execute(
            f"""INSERT INTO remote_media ({_REMOTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT DO NOTHING""",
            media.origin, media.media_id, media.media_type, media.upload_name, media.media_length, media.sha256,
            media.fetched_ts, media.authenticated,
        )

    async def get_thumbnail(self, sha256: str, width: int, height: int, method: str,
                            animated: bool) -> ThumbnailRow | None:
        row = await self._db.fetchrow(
            """SELECT media_type, thumbnail_sha256, length FROM media_thumbnails
               WHERE sha256 = $1 AND width = $2 AND height = $3 AND method = $4 AND animated = $5""",
            sha256, width, height, method, animated,
        )
        return ThumbnailRow(**row) if row else None

    async def add_thumbnail(self, sha256: str, width: int, height: int, method: str, animated: bool,
                            thumbnail: ThumbnailRow) -> None:
        # Two processes may make the same thumbnail at once; both made the same bytes.
        await self._db.execute(
            """INSERT INTO media_thumbnails (sha256, width, height, method, animated, media_type,
                                             thumbnail_sha256, length)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
            sha256, width, height, method, animated, thumbnail.media_type, thumbnail.thumbnail_sha256,
            thumbnail.length,
        )


class UrlPreviewStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_preview(self, url: str, ts: int) -> tuple[dict[str, Any], int] | None:
        """The preview of `url` as it stood at `ts` (the last fetched at or before it, else the
        first after it), with the time it expires."""
        row = await self._db.fetchrow(
            """SELECT og, expires_ts FROM url_previews WHERE url = $1
               ORDER BY fetched_ts <= $2 DESC,
                        CASE WHEN fetched_ts <= $2 THEN -fetched_ts ELSE fetched_ts END
               LIMIT 1""",
            url, ts,
        )
        return (row["og"], row["expires_ts"]) if row else None

    async def add_preview(self, url: str, fetched_ts: int, expires_ts: int, og: dict[str, Any]) -> None:
        await self._db.execute(
            """INSERT INTO url_previews (url, fetched_ts, expires_ts, og) VALUES ($1, $2, $3, $4)
               ON CONFLICT (url, fetched_ts) DO UPDATE SET expires_ts = EXCLUDED.expires_ts, og = EXCLUDED.og""",
            url, fetched_ts, expires_ts, og,
        )
