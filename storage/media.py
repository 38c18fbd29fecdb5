"""MediaStore: local media, cached remote media, and their thumbnails, with their moderation
(quarantine, protection, deletion). Tables: local_media, remote_media, media_thumbnails.
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
    quarantined_by: str | None = None  # the admin who quarantined it: served to nobody
    safe_from_quarantine: bool = False
    last_access_ts: int | None = None  # when last served (to within ACCESS_RESOLUTION_MS)

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
    quarantined_by: str | None = None
    last_access_ts: int | None = None

    @property
    def uploaded(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class ThumbnailRow:
    media_type: str
    thumbnail_sha256: str
    length: int


_MEDIA_NEW_COLUMNS = "media_id, user_id, created_ts, media_type, upload_name, media_length, sha256, authenticated"
LOCAL_MEDIA_COLUMNS = f"{_MEDIA_NEW_COLUMNS}, quarantined_by, safe_from_quarantine, last_access_ts"
_REMOTE_NEW_COLUMNS = "origin, media_id, media_type, upload_name, media_length, sha256, fetched_ts, authenticated"
_REMOTE_COLUMNS = f"{_REMOTE_NEW_COLUMNS}, quarantined_by, last_access_ts"


def _quarantined_hash(param: str) -> str:
    """Who quarantined content with the hash in `param`, if anyone did: new media with that
    content (uploaded, or fetched from another server) is born quarantined, as Synapse does."""
    return f"""(SELECT q.quarantined_by FROM (
                   SELECT quarantined_by FROM local_media WHERE sha256 = {param} AND quarantined_by IS NOT NULL
                   UNION ALL
                   SELECT quarantined_by FROM remote_media WHERE sha256 = {param} AND quarantined_by IS NOT NULL
               ) q LIMIT 1)"""


# Files a deletion may have left unused: those no media and no thumbnail points at any more.
_UNUSED_FILES = """SELECT h FROM unnest($1::text[]) AS h
                   WHERE NOT EXISTS (SELECT 1 FROM local_media WHERE sha256 = h)
                     AND NOT EXISTS (SELECT 1 FROM remote_media WHERE sha256 = h)
                     AND NOT EXISTS (SELECT 1 FROM media_thumbnails WHERE thumbnail_sha256 = h)"""


class MediaStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_media(self, media: LocalMedia) -> None:
        """Record uploaded content, or reserve a media ID (media_length and sha256 None)."""
        await self._db.execute(
            f"""INSERT INTO local_media ({_MEDIA_NEW_COLUMNS}, quarantined_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {_quarantined_hash("$7::text")})""",
            media.media_id, media.user_id, media.created_ts, media.media_type, media.upload_name,
            media.media_length, media.sha256, media.authenticated,
        )

    async def fill_reserved(self, media_id: str, *, media_type: str, upload_name: str | None,
                            media_length: int, sha256: str, authenticated: bool) -> bool:
        """Give a reserved media ID its content; False when it already had some (a race lost)."""
        status = await self._db.execute(
            f"""UPDATE local_media SET media_type = $2, upload_name = $3, media_length = $4, sha256 = $5,
                                       authenticated = $6, quarantined_by = {_quarantined_hash("$5::text")}
                WHERE media_id = $1 AND media_length IS NULL""",
            media_id, media_type, upload_name, media_length, sha256, authenticated,
        )
        return status == "UPDATE 1"

    async def get_media(self, media_id: str) -> LocalMedia | None:
        row = await self._db.fetchrow(f"SELECT {LOCAL_MEDIA_COLUMNS} FROM local_media WHERE media_id = $1",
                                      media_id)
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
            f"""INSERT INTO remote_media ({_REMOTE_NEW_COLUMNS}, quarantined_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {_quarantined_hash("$6::text")})
                ON CONFLICT DO NOTHING""",
            media.origin, media.media_id, media.media_type, media.upload_name, media.media_length, media.sha256,
            media.fetched_ts, media.authenticated,
        )

    async def touch_local(self, media_id: str, now_ts: int) -> None:
        await self._db.execute("UPDATE local_media SET last_access_ts = $2 WHERE media_id = $1", media_id, now_ts)

    async def touch_remote(self, origin: str, media_id: str, now_ts: int) -> None:
        await self._db.execute("UPDATE remote_media SET last_access_ts = $3 WHERE origin = $1 AND media_id = $2",
                               origin, media_id, now_ts)

    # --- moderation (the admin API) ---------------------------------------------------------

    async def quarantine(self, local_ids: list[str], remote: list[tuple[str, str]], quarantined_by: str | None) -> int:
        """(Un)quarantine the named media and every media with the same content (quarantining
        skips protected local media); how many media rows were marked. `quarantined_by` None
        lifts the quarantine."""
        return await self._db.fetchval(
            """WITH named_local AS (
                   SELECT media_id, sha256 FROM local_media
                   WHERE media_id = ANY($1::text[]) AND ($4::text IS NULL OR NOT safe_from_quarantine)),
               named_remote AS (
                   SELECT m.sha256 FROM remote_media m JOIN unnest($2::text[], $3::text[]) AS r(origin, media_id)
                   ON m.origin = r.origin AND m.media_id = r.media_id),
               hashes AS (SELECT sha256 FROM named_local WHERE sha256 IS NOT NULL
                          UNION SELECT sha256 FROM named_remote),
               marked_local AS (
                   UPDATE local_media SET quarantined_by = $4
                   WHERE (sha256 IN (SELECT sha256 FROM hashes)
                          OR media_id IN (SELECT media_id FROM named_local WHERE sha256 IS NULL))
                     AND ($4::text IS NULL OR NOT safe_from_quarantine)
                   RETURNING 1),
               marked_remote AS (
                   UPDATE remote_media SET quarantined_by = $4 WHERE sha256 IN (SELECT sha256 FROM hashes)
                   RETURNING 1)
               SELECT (SELECT count(*) FROM marked_local) + (SELECT count(*) FROM marked_remote)""",
            local_ids, [origin for origin, _ in remote], [media_id for _, media_id in remote], quarantined_by,
        )

    async def set_safe_from_quarantine(self, media_id: str, safe: bool) -> bool:
        """Protect (or unprotect) local media from quarantine; False when there is no such media."""
        status = await self._db.execute(
            "UPDATE local_media SET safe_from_quarantine = $2 WHERE media_id = $1", media_id, safe)
        return status == "UPDATE 1"

    async def delete_local(self, media_ids: list[str]) -> tuple[list[str], list[str]]:
        """Forget local media (and the thumbnails of content nothing else has); the media IDs
        deleted, and the hashes of the files nothing uses any more (for the caller to remove)."""
        async with self._db.transaction():
            rows = await self._db.fetch(
                "DELETE FROM local_media WHERE media_id = ANY($1::text[]) RETURNING media_id, sha256", media_ids)
            return [r["media_id"] for r in rows], await self._drop_unused([r["sha256"] for r in rows])

    async def delete_remote_unused_since(self, before_ts: int) -> tuple[int, list[str]]:
        """Forget cached remote media last served (or, never served, fetched) before `before_ts`,
        quarantined media excepted (kept as evidence); how many went, and the files now unused."""
        async with self._db.transaction():
            rows = await self._db.fetch(
                """DELETE FROM remote_media WHERE COALESCE(last_access_ts, fetched_ts) < $1 AND quarantined_by IS NULL
                   RETURNING sha256""",
                before_ts)
            return len(rows), await self._drop_unused([r["sha256"] for r in rows])

    async def _drop_unused(self, hashes: list[str | None]) -> list[str]:
        """After media rows went: drop the thumbnails of content no media has any more, and
        return the files (content and thumbnails) nothing points at."""
        content = sorted({h for h in hashes if h is not None})
        if not content:
            return []
        thumbnails = await self._db.fetch(
            """DELETE FROM media_thumbnails t WHERE t.sha256 = ANY($1::text[])
                 AND NOT EXISTS (SELECT 1 FROM local_media WHERE sha256 = t.sha256)
                 AND NOT EXISTS (SELECT 1 FROM remote_media WHERE sha256 = t.sha256)
               RETURNING thumbnail_sha256""",
            content)
        candidates = sorted(set(content) | {r["thumbnail_sha256"] for r in thumbnails})
        return [r["h"] for r in await self._db.fetch(_UNUSED_FILES, candidates)]

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
