"""RoomHeadQueries: what the next local event of a room builds on, and the room's writer lock.

Tables read: rooms, room_heads, forward_extremities, events, current_state, state_groups.
Tables written: none (room_heads is written by EventStore.persist, which claims the head).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class RoomHead:
    """What the next local event of a room builds on, read in one statement (so consistent)."""
    room_version: str
    version: int  # room_heads
    state_group: int | None
    chain_length: int
    extremities: dict[str, int]  # event_id -> depth
    state: dict[tuple[str, str], str]


class RoomHeadQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def head_of(self, room_id: str) -> RoomHead | None:
        """The room's version, head version, current state snapshot (recorded with the room,
        else the one after its newest timeline event), forward extremities and current state:
        one round trip, one snapshot of the database. None for a room we do not have."""
        row = await self._db.fetchrow(
            """SELECT r.room_version, coalesce(h.version, 0) AS head, g.id AS state_group,
                      coalesce(sg.chain_length, 0) AS chain_length,
                      ARRAY(SELECT f.event_id FROM forward_extremities f JOIN events e USING (event_id)
                            WHERE f.room_id = $1 ORDER BY f.event_id) AS extremity_ids,
                      ARRAY(SELECT e.depth FROM forward_extremities f JOIN events e USING (event_id)
                            WHERE f.room_id = $1 ORDER BY f.event_id) AS extremity_depths,
                      ARRAY(SELECT type FROM current_state WHERE room_id = $1 ORDER BY type, state_key) AS types,
                      ARRAY(SELECT state_key FROM current_state WHERE room_id = $1 ORDER BY type, state_key) AS keys,
                      ARRAY(SELECT event_id FROM current_state WHERE room_id = $1 ORDER BY type, state_key) AS ids
               FROM rooms r
               LEFT JOIN room_heads h ON h.room_id = r.room_id
               CROSS JOIN LATERAL (SELECT coalesce(r.state_group,
                   (SELECT state_after FROM events WHERE room_id = $1 AND stream_ordering IS NOT NULL
                      AND rejected_reason IS NULL AND NOT soft_failed AND NOT outlier
                    ORDER BY stream_ordering DESC LIMIT 1)) AS id) g
               LEFT JOIN state_groups sg ON sg.id = g.id
               WHERE r.room_id = $1""",
            room_id,
        )
        if row is None:
            return None
        return RoomHead(
            row["room_version"], row["head"], row["state_group"], row["chain_length"],
            dict(zip(row["extremity_ids"], row["extremity_depths"])),
            {(t, k): e for t, k, e in zip(row["types"], row["keys"], row["ids"])},
        )

    @contextlib.asynccontextmanager
    async def room_writer_lock(self, room_id: str) -> AsyncIterator[None]:
        """Hold the room's writer lock (a transaction-level advisory lock, on a connection of
        its own) while the block runs; other processes asking for it wait. One round trip to
        take it, one to let go; a dropped connection lets go by itself. The block's statements
        run on other connections: the lock only orders writers, the persist's head check
        still decides."""
        key = int.from_bytes(hashlib.blake2b(room_id.encode(), digest_size=8).digest(), "big", signed=True)
        async with self._db.pinned_connection() as conn:
            # One message: BEGIN and the lock (the key is our integer, not user input).
            await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({key})")
            try:
                yield
            finally:
                await conn.execute("ROLLBACK")  # the transaction wrote nothing; this frees the lock
