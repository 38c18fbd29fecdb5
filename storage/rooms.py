"""RoomStore: the rooms this server knows, which ones users forgot, and which ones admins blocked.
Tables: rooms, forgotten_rooms, blocked_rooms."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class RoomRow:
    room_id: str
    room_version: str
    creator: str | None
    created_ts: int


class RoomStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_room(self, room_id: str, room_version: str, creator: str | None, created_ts: int) -> bool:
        status = await self._db.execute(
            """INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING""",
            room_id, room_version, creator, created_ts,
        )
        return status == "INSERT 0 1"

    async def get_room(self, room_id: str) -> RoomRow | None:
        row = await self._db.fetchrow(
            "SELECT room_id, room_version, creator, created_ts FROM rooms WHERE room_id = $1", room_id
        )
        return RoomRow(**row) if row else None

    async def current_state_group(self, room_id: str) -> int | None:
        """The snapshot of the room's current state: the one recorded with it, else (rooms
        written before it was recorded) the one after the newest timeline event."""
        return await self._db.fetchval(
            """SELECT coalesce(
                   (SELECT state_group FROM rooms WHERE room_id = $1),
                   (SELECT state_after FROM events WHERE room_id = $1 AND stream_ordering IS NOT NULL
                      AND rejected_reason IS NULL AND NOT soft_failed AND NOT outlier
                    ORDER BY stream_ordering DESC LIMIT 1))""",
            room_id,
        )

    async def forget(self, user_id: str, room_id: str) -> None:
        await self._db.execute(
            "INSERT INTO forgotten_rooms (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            user_id, room_id,
        )

    async def unforget(self, user_id: str, room_id: str) -> None:
        await self._db.execute("DELETE FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2", user_id, room_id)

    async def delete_room(self, room_id: str) -> None:
        """Forget the room itself (its events go through EventStore.delete_room); a block stays."""
        await self._db.execute(
            """WITH forgotten AS (DELETE FROM forgotten_rooms WHERE room_id = $1)
               DELETE FROM rooms WHERE room_id = $1""",
            room_id,
        )

    async def block(self, room_id: str, admin_id: str, now_ts: int) -> None:
        await self._db.execute(
            """INSERT INTO blocked_rooms (room_id, user_id, blocked_ts) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            room_id, admin_id, now_ts,
        )

    async def unblock(self, room_id: str) -> None:
        await self._db.execute("DELETE FROM blocked_rooms WHERE room_id = $1", room_id)

    async def blocked_by(self, room_id: str) -> str | None:
        """The admin who blocked the room; None when it is not blocked."""
        return await self._db.fetchval("SELECT user_id FROM blocked_rooms WHERE room_id = $1", room_id)
