"""PartialStateStore: rooms whose state we hold only in part (faster joins). Tables:
partial_state_rooms, partial_state_cleared."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True)
class PartialStateRoom:
    room_id: str
    join_event_id: str
    servers_in_room: tuple[str, ...]
    started_ts: int


_COLUMNS = "room_id, join_event_id, servers_in_room, started_ts"


def _row(record) -> PartialStateRoom:
    return PartialStateRoom(record["room_id"], record["join_event_id"], tuple(record["servers_in_room"]),
                            record["started_ts"])


class PartialStateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, room_id: str, join_event_id: str, servers: Sequence[str], now_ms: int) -> None:
        await self._db.execute(
            """INSERT INTO partial_state_rooms (room_id, join_event_id, servers_in_room, started_ts)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (room_id) DO UPDATE SET join_event_id = EXCLUDED.join_event_id,
                 servers_in_room = EXCLUDED.servers_in_room, started_ts = EXCLUDED.started_ts""",
            room_id, join_event_id, list(servers), now_ms)

    async def claim(self, room_id: str, now_ms: int, until_ms: int) -> bool:
        """Take the room's resync until `until_ms`, unless another process holds it now."""
        return await self._db.fetchval(
            """UPDATE partial_state_rooms SET lease_until_ts = $3
               WHERE room_id = $1 AND (lease_until_ts IS NULL OR lease_until_ts < $2) RETURNING true""",
            room_id, now_ms, until_ms) is not None

    async def release(self, room_ids: Sequence[str]) -> None:
        await self._db.execute("UPDATE partial_state_rooms SET lease_until_ts = NULL WHERE room_id = ANY($1::text[])",
                               list(room_ids))

    async def all(self) -> list[PartialStateRoom]:
        return [_row(r) for r in await self._db.fetch(f"SELECT {_COLUMNS} FROM partial_state_rooms ORDER BY started_ts")]

    async def remove(self, room_id: str, join_event_id: str, stream_ordering: int) -> None:
        """Clear the flag (unless a later join started another partial state meanwhile) and
        record the position at which the full state came in."""
        await self._db.execute(
            """WITH gone AS (DELETE FROM partial_state_rooms WHERE room_id = $1 AND join_event_id = $2
                             RETURNING room_id)
               INSERT INTO partial_state_cleared (room_id, stream_ordering) SELECT room_id, $3 FROM gone
               ON CONFLICT (room_id) DO UPDATE SET stream_ordering = EXCLUDED.stream_ordering""",
            room_id, join_event_id, stream_ordering)

    async def cleared(self) -> dict[str, int]:
        """room ID -> the position at which its full state came in."""
        rows = await self._db.fetch("SELECT room_id, stream_ordering FROM partial_state_cleared")
        return {r["room_id"]: r["stream_ordering"] for r in rows}
