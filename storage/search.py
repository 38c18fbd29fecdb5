"""SearchQueries: full-text search of room events and the user directory.
Tables read: events, current_state (both written by EventStore), profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


from storage.database import Database
from storage.events import EVENT_COLUMNS, REDACTION_APPLIES, EventRow

# Must match the expression of the events_search index (migration 0005).
_VECTOR = """to_tsvector('simple', coalesce(e.pdu->'content'->>'body', '') || ' ' ||
                                   coalesce(e.pdu->'content'->>'name', '') || ' ' ||
                                   coalesce(e.pdu->'content'->>'topic', ''))"""


@dataclass(frozen=True, slots=True)
class SearchHit:
    row: EventRow
    rank: float


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    user_id: str
    display_name: str | None
    avatar_url: str | None


class SearchQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search_events(
        self, room_ids: Sequence[str], query: str, types: Sequence[str], *, order_by_rank: bool,
        offset: int, limit: int, senders: Sequence[str] | None = None, not_senders: Sequence[str] | None = None,
    ) -> tuple[list[SearchHit], int]:
        """Matching events (and the total count) in the given rooms, by rank or most recent first."""
        order = "rank DESC, e.stream_ordering DESC" if order_by_rank else "e.stream_ordering DESC"
        base = f"""FROM events e, plainto_tsquery('simple', $2) q
                   WHERE e.room_id = ANY($1::text[]) AND e.type = ANY($3::text[])
                     AND e.type IN ('m.room.message', 'm.room.name', 'm.room.topic')
                     AND {_VECTOR} @@ q AND e.stream_ordering IS NOT NULL
                     AND e.rejected_reason IS NULL AND NOT e.soft_failed
                     AND NOT EXISTS (SELECT 1 FROM redactions r JOIN events re ON re.event_id = r.event_id
                                     WHERE {REDACTION_APPLIES})
                     AND ($4::text[] IS NULL OR e.sender = ANY($4::text[]))
                     AND ($5::text[] IS NULL OR NOT e.sender = ANY($5::text[]))"""
        args = [list(room_ids), query, list(types), senders, not_senders]
        rows = await self._db.fetch(
            f"SELECT {EVENT_COLUMNS}, ts_rank({_VECTOR}, q) AS rank {base} ORDER BY {order} OFFSET $6 LIMIT $7",
            *args, offset, limit,
        )
        count = await self._db.fetchval(f"SELECT count(*) {base}", *args)
        hits = []
        for r in rows:
            values = dict(r)
            rank = values.pop("rank")
            hits.append(SearchHit(EventRow(**values), float(rank)))
        return hits, count

    async def search_users(self, searcher: str, term: str, limit: int) -> list[DirectoryUser]:
        """Users joined to a public room (public join rule, or world-readable history), or
        sharing a private room with `searcher` (not the searcher themself, as Synapse: a user
        in no public room is not in their own directory), matching `term` in their user ID or
        display name. Returns up to `limit` + 1 rows (to detect more)."""
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._db.fetch(
            """WITH mine AS (
                   SELECT room_id FROM current_state
                   WHERE type = 'm.room.member' AND state_key = $1 AND membership = 'join'
               ),
               public_rooms AS (
                   SELECT c.room_id FROM current_state c JOIN events e ON e.event_id = c.event_id
                   WHERE c.state_key = '' AND (
                       (c.type = 'm.room.join_rules' AND e.pdu->'content'->>'join_rule' = 'public')
                       OR (c.type = 'm.room.history_visibility'
                           AND e.pdu->'content'->>'history_visibility' = 'world_readable'))
               ),
               candidates AS (
                   SELECT DISTINCT ON (c.state_key) c.state_key AS user_id,
                          e.pdu->'content'->>'displayname' AS display_name,
                          e.pdu->'content'->>'avatar_url' AS avatar_url
                   FROM current_state c JOIN events e ON e.event_id = c.event_id
                   WHERE c.type = 'm.room.member' AND c.membership = 'join'
                     AND (c.room_id IN (SELECT room_id FROM public_rooms)
                          OR (c.room_id IN (SELECT room_id FROM mine) AND c.state_key <> $1))
                   ORDER BY c.state_key, e.stream_ordering DESC
               )
               SELECT user_id, display_name, avatar_url FROM candidates
               WHERE user_id ILIKE $2 OR display_name ILIKE $2
               ORDER BY (display_name ILIKE $3 OR user_id ILIKE $4) DESC, user_id
               LIMIT $5""",
            searcher, f"%{escaped}%", f"{escaped}%", f"@{escaped}%", limit + 1,
        )
        return [DirectoryUser(**r) for r in rows]

    async def rooms_with_membership(self, user_id: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1
               AND membership = 'join'""",
            user_id,
        )
        return [r["room_id"] for r in rows]
