"""TimelineQueries: reads of the timeline for clients (pagination, visibility inputs).
Tables read: events, room_memberships. Written by EventStore (storage/events.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database
from storage.events import EVENT_COLUMNS, EventRow


@dataclass(frozen=True, slots=True)
class MembershipAt:
    stream_ordering: int
    membership: str


class TimelineQueries:
    """Reads of the timeline for clients (pagination, visibility inputs). Tables read: events,
    room_memberships."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def paginate(
        self, room_id: str, *, before: tuple[int, int] | None = None, after: tuple[int, int] | None = None,
        limit: int, types: Sequence[str] | None = None, not_types: Sequence[str] | None = None,
        senders: Sequence[str] | None = None, not_senders: Sequence[str] | None = None,
    ) -> list[EventRow]:
        """Timeline events in topological order (depth, stream), strictly before or after a point.

        `before` pages backwards (newest first), `after` forwards (oldest first).
        Rejected and soft-failed events are never returned.
        """
        backwards = after is None
        point = before if backwards else after
        cmp, order = ("<", "DESC") if backwards else (">", "ASC")
        conditions = ["e.room_id = $1", "e.stream_ordering IS NOT NULL", "e.rejected_reason IS NULL",
                      "NOT e.soft_failed", "NOT e.outlier"]
        args: list[Any] = [room_id]
        if point is not None:
            args += [point[0], point[1]]
            conditions.append(f"(e.depth, e.stream_ordering) {cmp} ($2, $3)")
        for column, values, negate in (("type", types, False), ("type", not_types, True),
                                       ("sender", senders, False), ("sender", not_senders, True)):
            if values is not None:
                args.append(list(values))
                conditions.append(f"{'NOT ' if negate else ''}(e.{column} = ANY(${len(args)}::text[]))")
        args.append(limit)
        rows = await self._db.fetch(
            f"""SELECT {EVENT_COLUMNS} FROM events e WHERE {' AND '.join(conditions)}
                ORDER BY e.depth {order}, e.stream_ordering {order} LIMIT ${len(args)}""",
            *args,
        )
        return [EventRow(**r) for r in rows]

    async def closest_to_timestamp(self, room_id: str, ts: int, *, forwards: bool, limit: int) -> list[EventRow]:
        cmp, order = (">=", "ASC") if forwards else ("<=", "DESC")
        rows = await self._db.fetch(
            f"""SELECT {EVENT_COLUMNS} FROM events e
                WHERE e.room_id = $1 AND e.origin_server_ts {cmp} $2 AND e.stream_ordering IS NOT NULL
                  AND e.rejected_reason IS NULL AND NOT e.soft_failed
                ORDER BY e.origin_server_ts {order}, e.stream_ordering {order} LIMIT $3""",
            room_id, ts, limit,
        )
        return [EventRow(**r) for r in rows]

    async def topological_position(self, room_id: str, stream_ordering: int) -> tuple[int, int] | None:
        """The (depth, stream) of the room's newest event at or before a stream position."""
        row = await self._db.fetchrow(
            """SELECT depth, stream_ordering FROM events
               WHERE room_id = $1 AND stream_ordering IS NOT NULL AND stream_ordering <= $2
               ORDER BY stream_ordering DESC LIMIT 1""",
            room_id, stream_ordering,
        )
        return (row["depth"], row["stream_ordering"]) if row else None

    async def memberships_of(self, room_id: str, user_id: str) -> list[MembershipAt]:
        """The user's membership changes in the room, oldest first."""
        rows = await self._db.fetch(
            """SELECT stream_ordering, membership FROM room_memberships
               WHERE room_id = $1 AND user_id = $2 ORDER BY stream_ordering""",
            room_id, user_id,
        )
        return [MembershipAt(r["stream_ordering"], r["membership"]) for r in rows]

    async def state_changes(self, room_id: str, event_type: str) -> list[tuple[int, dict[str, Any]]]:
        """(stream position, content) of every accepted state event of one type, oldest first."""
        rows = await self._db.fetch(
            """SELECT stream_ordering, pdu->'content' AS content FROM events
               WHERE room_id = $1 AND type = $2 AND state_key = '' AND stream_ordering IS NOT NULL
                 AND rejected_reason IS NULL AND NOT soft_failed ORDER BY stream_ordering""",
            room_id, event_type,
        )
        return [(r["stream_ordering"], r["content"]) for r in rows]

    async def joined_members_with_profiles(self, room_id: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self._db.fetch(
            """SELECT c.state_key, e.pdu->'content' AS content FROM current_state c
               JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = $1 AND c.type = 'm.room.member' AND c.membership = 'join'""",
            room_id,
        )
        return [(r["state_key"], r["content"]) for r in rows]
