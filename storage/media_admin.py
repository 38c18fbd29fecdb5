"""MediaAdminQueries: media as the admin API looks at it (a user's uploads, the media a room's
events point at, media unused since a date, usage per user). Tables read: local_media (written
by MediaStore), events, current_state, profiles, room_memberships."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database
from storage.media import LOCAL_MEDIA_COLUMNS, LocalMedia

# What a user's media may be ordered by (Synapse's order_by values); ties go by media_id.
USER_MEDIA_ORDERS = ("media_id", "upload_name", "created_ts", "last_access_ts", "media_length", "media_type",
                     "quarantined_by", "safe_from_quarantine")
# What the per-user usage statistics may be ordered by.
USAGE_ORDERS = {"user_id": "lm.user_id", "displayname": "p.displayname", "media_length": "media_length",
                "media_count": "media_count"}


@dataclass(frozen=True, slots=True)
class MediaUsage:
    user_id: str
    displayname: str | None
    media_count: int
    media_length: int


class MediaAdminQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def user_media(self, user_id: str, start: int, limit: int, *, order_by: str,
                         backwards: bool) -> tuple[list[LocalMedia], int]:
        """A page of the media a local user uploaded (or reserved), and how many there are."""
        if order_by not in USER_MEDIA_ORDERS:
            raise ValueError(order_by)
        direction = "DESC" if backwards else "ASC"
        rows = await self._db.fetch(
            f"""SELECT {LOCAL_MEDIA_COLUMNS} FROM local_media WHERE user_id = $1
                ORDER BY {order_by} {direction}, media_id ASC LIMIT $2 OFFSET $3""",
            user_id, limit, start)
        total = await self._db.fetchval("SELECT count(*) FROM local_media WHERE user_id = $1", user_id)
        return [LocalMedia(**r) for r in rows], total

    async def user_media_ids(self, user_id: str) -> list[str]:
        rows = await self._db.fetch("SELECT media_id FROM local_media WHERE user_id = $1", user_id)
        return [r["media_id"] for r in rows]

    async def room_media_urls(self, room_id: str) -> list[str]:
        """The mxc:// URIs a room's events point at (`url`, `info.thumbnail_url`), newest first.
        Encrypted events show none: their content is not ours to read."""
        rows = await self._db.fetch(
            """SELECT u.url FROM events e,
                      LATERAL (VALUES (e.pdu->'content'->>'url'),
                                      (e.pdu->'content'->'info'->>'thumbnail_url')) AS u(url)
               WHERE e.room_id = $1 AND NOT e.outlier AND u.url LIKE 'mxc://%'
               ORDER BY e.stream_ordering DESC NULLS LAST""",
            room_id)
        return [r["url"] for r in rows]

    async def unused_local_media(self, before_ts: int, size_gt: int, *, keep_profiles: bool,
                                 mxc_prefix: str) -> list[str]:
        """Local media last served (or, never served, created) before `before_ts`, larger than
        `size_gt` bytes, neither quarantined nor protected; with `keep_profiles`, not a user's
        or a room's avatar (`mxc_prefix` is "mxc://<our server>/")."""
        rows = await self._db.fetch(
            """WITH avatars AS (
                   SELECT avatar_url AS url FROM profiles WHERE $3 AND starts_with(avatar_url, $4)
                   UNION SELECT avatar_url FROM room_memberships WHERE $3 AND starts_with(avatar_url, $4)
                   UNION SELECT e.pdu->'content'->>'url' FROM current_state cs JOIN events e ON e.event_id = cs.event_id
                         WHERE $3 AND cs.type = 'm.room.avatar' AND cs.state_key = '')
               SELECT media_id FROM local_media
               WHERE COALESCE(last_access_ts, created_ts) < $1 AND media_length > $2
                 AND quarantined_by IS NULL AND NOT safe_from_quarantine
                 AND $4 || media_id NOT IN (SELECT url FROM avatars WHERE url IS NOT NULL)
               ORDER BY media_id""",
            before_ts, size_gt, keep_profiles, mxc_prefix)
        return [r["media_id"] for r in rows]

    async def usage_by_user(self, start: int, limit: int, *, order_by: str, backwards: bool, from_ts: int,
                            until_ts: int | None, search_term: str | None) -> tuple[list[MediaUsage], int]:
        """Per local user: how many files they uploaded and their bytes, counting uploads made
        from `from_ts` to `until_ts`; `search_term` is any part of the localpart or display name."""
        column = USAGE_ORDERS[order_by]
        direction = "DESC" if backwards else "ASC"
        base = """FROM local_media lm LEFT JOIN profiles p ON p.user_id = lm.user_id
                  WHERE lm.media_length IS NOT NULL AND lm.created_ts >= $1
                    AND ($2::bigint IS NULL OR lm.created_ts <= $2)
                    AND ($3::text IS NULL OR strpos(split_part(substr(lm.user_id, 2), ':', 1), $3) > 0
                         OR strpos(p.displayname, $3) > 0)
                  GROUP BY lm.user_id, p.displayname"""
        rows = await self._db.fetch(
            f"""SELECT lm.user_id, p.displayname, count(*) AS media_count, sum(lm.media_length)::bigint AS media_length {base}
                ORDER BY {column} {direction}, lm.user_id {direction} LIMIT $4 OFFSET $5""",
            from_ts, until_ts, search_term, limit, start)
        total = await self._db.fetchval(f"SELECT count(*) FROM (SELECT 1 {base}) AS users", from_ts, until_ts,
                                        search_term)
        return [MediaUsage(**r) for r in rows], total
