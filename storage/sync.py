"""SyncQueries: what changed for a user between two room-event stream positions.
Tables read: events, room_memberships, current_state (written by EventStore).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database
from storage.events import _EVENT_COLUMNS, EventRow


@dataclass(frozen=True, slots=True)
class RoomMembershipAt:
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int
    sender: str


class SyncQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def memberships_at(self, user_id: str, position: int) -> dict[str, RoomMembershipAt]:
        """room_id -> the user's latest membership at or before `position`, for every room."""
        rows = await self._db.fetch(
            """SELECT DISTINCT ON (room_id) room_id, membership, event_id, stream_ordering, sender
               FROM room_memberships WHERE user_id = $1 AND stream_ordering <= $2
               ORDER BY room_id, stream_ordering DESC""",
            user_id, position,
        )
        return {r["room_id"]: RoomMembershipAt(**r) for r in rows}

    async def rooms_with_events_between(self, room_ids: list[str], since: int, upto: int) -> set[str]:
        rows = await self._db.fetch(
            """SELECT DISTINCT room_id FROM events WHERE room_id = ANY($1::text[])
               AND stream_ordering > $2 AND stream_ordering <= $3""",
            room_ids, since, upto,
        )
        return {r["room_id"] for r in rows}

    async def recent_events(self, room_id: str, *, after: int, upto: int, limit: int) -> list[EventRow]:
        """Up to `limit` newest timeline events in (after, upto], oldest first."""
        rows = await self._db.fetch(
            f"""SELECT {_EVENT_COLUMNS} FROM events e
                WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3
                  AND e.rejected_reason IS NULL AND NOT e.soft_failed
                ORDER BY e.stream_ordering DESC LIMIT $4""",
            room_id, after, upto, limit,
        )
        return [EventRow(**r) for r in reversed(rows)]

    async def state_event_ids_changed_between(self, room_id: str, since: int, upto: int) -> list[str]:
        """The current state entries whose event arrived in (since, upto]."""
        rows = await self._db.fetch(
            """SELECT c.event_id FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3""",
            room_id, since, upto,
        )
        return [r["event_id"] for r in rows]

    async def event_at_or_before(self, room_id: str, position: int) -> EventRow | None:
        row = await self._db.fetchrow(
            f"""SELECT {_EVENT_COLUMNS} FROM events e WHERE e.room_id = $1 AND e.stream_ordering <= $2
                AND e.rejected_reason IS NULL ORDER BY e.stream_ordering DESC LIMIT 1""",
            room_id, position,
        )
        return EventRow(**row) if row else None

    async def users_sharing_rooms(self, user_id: str) -> set[str]:
        """Everyone joined to at least one room `user_id` is joined to (including them)."""
        rows = await self._db.fetch(
            """SELECT DISTINCT theirs.state_key AS user_id
               FROM current_state mine JOIN current_state theirs ON theirs.room_id = mine.room_id
               WHERE mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join'
                 AND theirs.type = 'm.room.member' AND theirs.membership = 'join'""",
            user_id,
        )
        return {r["user_id"] for r in rows}

    async def membership_changes_between(self, room_ids: list[str], since: int, upto: int) -> list[tuple[str, str, str]]:
        """(room_id, user_id, membership) of member events in these rooms in (since, upto]."""
        rows = await self._db.fetch(
            """SELECT room_id, user_id, membership FROM room_memberships WHERE room_id = ANY($1::text[])
               AND stream_ordering > $2 AND stream_ordering <= $3 ORDER BY stream_ordering""",
            room_ids, since, upto,
        )
        return [(r["room_id"], r["user_id"], r["membership"]) for r in rows]

    async def joined_members(self, room_id: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'
               AND membership = 'join'""",
            room_id,
        )
        return [r["state_key"] for r in rows]

    async def members_in_order(self, room_id: str) -> list[tuple[str, str]]:
        """(user_id, membership) of the room's current members, oldest membership first."""
        rows = await self._db.fetch(
            """SELECT c.state_key, c.membership FROM current_state c JOIN events e ON e.event_id = c.event_id
               WHERE c.room_id = $1 AND c.type = 'm.room.member' ORDER BY e.stream_ordering""",
            room_id,
        )
        return [(r["state_key"], r["membership"]) for r in rows]
