"""Rooms as server admins see them: listings and details across every room (AdminRoomQueries,
which only reads), and the background room tasks of the admin API (RoomTaskStore).

Tables read: rooms, room_stats, published_rooms, current_state, events, room_memberships,
devices, users, forgotten_rooms, forward_extremities. Tables written: room_admin_tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database

# order_by of the room list -> (SQL expression over the listing, largest first by default).
ROOM_ORDERS: dict[str, tuple[str, bool]] = {
    "name": ("name", False),
    "alphabetical": ("name", False),
    "canonical_alias": ("canonical_alias", False),
    "joined_members": ("joined_members", True),
    "size": ("joined_members", True),
    "joined_local_members": ("joined_local_members", True),
    "version": ("version", True),
    "creator": ("creator", False),
    "encryption": ("encryption", False),
    "federatable": ("federatable", False),
    "public": ("public", False),
    "join_rules": ("join_rules", False),
    "guest_access": ("guest_access", False),
    "history_visibility": ("history_visibility", False),
    "state_events": ("state_events", True),
}

# One row per room: its figures (room_stats) and whether it is in the public directory.
_LISTING = """
SELECT r.room_id, r.room_version AS version, r.creator,
       s.state->>'name' AS name, s.state->>'canonical_alias' AS canonical_alias,
       coalesce(s.joined_members, 0) AS joined_members,
       coalesce(s.joined_local_members, 0) AS joined_local_members,
       s.state->>'encryption' AS encryption,
       coalesce(s.state->>'federatable', 'true') <> 'false' AS federatable,
       EXISTS (SELECT 1 FROM published_rooms p WHERE p.room_id = r.room_id) AS public,
       s.state->>'join_rules' AS join_rules, s.state->>'guest_access' AS guest_access,
       s.state->>'history_visibility' AS history_visibility,
       coalesce(s.state_events, 0) AS state_events, s.state->>'room_type' AS room_type,
       s.state->>'topic' AS topic, s.state->>'avatar' AS avatar
FROM rooms r LEFT JOIN room_stats s USING (room_id)
"""

_LIST_COLUMNS = ("room_id", "name", "canonical_alias", "joined_members", "joined_local_members", "version",
                 "creator", "encryption", "federatable", "public", "join_rules", "guest_access",
                 "history_visibility", "state_events", "room_type")


@dataclass(frozen=True, slots=True)
class ExtremityRow:
    event_id: str
    state_group: int | None
    depth: int
    received_ts: int


@dataclass(frozen=True, slots=True)
class LocalMembership:
    user_id: str
    membership: str
    event_id: str


class AdminRoomQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, *, order_by: str, backwards: bool, search: str | None, public: bool | None,
                   empty: bool | None, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the room list (the Synapse admin API's room objects) and how many rooms
        match, in one query. `order_by` is a key of ROOM_ORDERS."""
        column, descending = ROOM_ORDERS[order_by]
        direction = "DESC" if descending != backwards else "ASC"
        rows = await self._db.fetch(
            f"""WITH listing AS ({_LISTING}),
                     matching AS MATERIALIZED (
                         SELECT * FROM listing WHERE
                           ($1::text IS NULL OR strpos(lower(name), lower($1)) > 0
                            OR strpos(lower(substr(split_part(canonical_alias, ':', 1), 2)), lower($1)) > 0
                            OR room_id = $1)
                           AND ($2::bool IS NULL OR public = $2)
                           AND ($3::bool IS NULL OR (joined_members = 0) = $3))
                SELECT (SELECT count(*) FROM matching) AS total, page.*
                FROM (SELECT 1) AS one LEFT JOIN LATERAL (
                    SELECT {", ".join(_LIST_COLUMNS)} FROM matching
                    ORDER BY {column} {direction}, room_id {direction} LIMIT $4 OFFSET $5) AS page ON TRUE""",
            search, public, empty, limit, offset,
        )
        total = rows[0]["total"]
        return [{k: r[k] for k in _LIST_COLUMNS} for r in rows if r["room_id"] is not None], total

    async def details(self, room_id: str) -> dict[str, Any] | None:
        """The room object of the room list plus topic, avatar, joined_local_devices,
        forgotten (every local user with a membership forgot the room) and the tombstone's
        content (None when not tombstoned)."""
        row = await self._db.fetchrow(
            f"""SELECT l.*,
                   (SELECT count(*) FROM current_state c JOIN devices d ON d.user_id = c.state_key
                    WHERE c.room_id = $1 AND c.type = 'm.room.member' AND c.membership = 'join')
                     AS joined_local_devices,
                   NOT EXISTS (SELECT 1 FROM current_state c JOIN users u ON u.user_id = c.state_key
                               WHERE c.room_id = $1 AND c.type = 'm.room.member' AND NOT EXISTS (
                                 SELECT 1 FROM forgotten_rooms f WHERE f.room_id = $1 AND f.user_id = c.state_key))
                     AS forgotten,
                   (SELECT e.pdu->'content' FROM current_state c JOIN events e USING (event_id)
                    WHERE c.room_id = $1 AND c.type = 'm.room.tombstone' AND c.state_key = '') AS tombstone
                FROM ({_LISTING} WHERE r.room_id = $1) AS l""",
            room_id,
        )
        return dict(row) if row else None

    async def joined_members(self, room_id: str) -> list[str]:
        rows = await self._db.fetch(
            """SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'
               AND membership = 'join' ORDER BY state_key""",
            room_id,
        )
        return [r["state_key"] for r in rows]

    async def local_memberships(self, room_id: str, server_name: str) -> list[LocalMembership]:
        """Each local user's latest membership in the room, in or out of its DAG."""
        rows = await self._db.fetch(
            """SELECT DISTINCT ON (user_id) user_id, membership, event_id FROM room_memberships
               WHERE room_id = $1 AND substr(user_id, strpos(user_id, ':') + 1) = $2
               ORDER BY user_id, stream_ordering DESC""",
            room_id, server_name,
        )
        return [LocalMembership(**r) for r in rows]

    async def forward_extremities(self, room_id: str) -> list[ExtremityRow]:
        rows = await self._db.fetch(
            """SELECT f.event_id, e.state_after AS state_group, e.depth, e.received_ts
               FROM forward_extremities f JOIN events e USING (event_id) WHERE f.room_id = $1
               ORDER BY e.depth, f.event_id""",
            room_id,
        )
        return [ExtremityRow(**r) for r in rows]

    async def event_received_before(self, room_id: str, ts: int) -> tuple[str, int] | None:
        """(event_id, depth) of the room's newest timeline event received before `ts`."""
        row = await self._db.fetchrow(
            """SELECT event_id, depth FROM events WHERE room_id = $1 AND stream_ordering IS NOT NULL
               AND NOT outlier AND received_ts < $2 ORDER BY stream_ordering DESC LIMIT 1""",
            room_id, ts,
        )
        return (row["event_id"], row["depth"]) if row else None


@dataclass(frozen=True, slots=True)
class RoomTask:
    task_id: str
    kind: str
    room_id: str
    status: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    updated_ts: int


_TASK_COLUMNS = "task_id, kind, room_id, status, params, result, error, updated_ts"


class RoomTaskStore:
    """Room deletions and history purges running in the background. Tables: room_admin_tasks."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, task_id: str, kind: str, room_id: str, params: dict[str, Any], requester: str,
                  now_ts: int) -> None:
        await self._db.execute(
            """INSERT INTO room_admin_tasks (task_id, kind, room_id, status, params, requester, created_ts, updated_ts)
               VALUES ($1, $2, $3, 'scheduled', $4, $5, $6, $6)""",
            task_id, kind, room_id, params, requester, now_ts,
        )

    async def update(self, task_id: str, now_ts: int, *, status: str | None = None,
                     result: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Set what is given (None keeps the stored value) and refresh the heartbeat."""
        await self._db.execute(
            """UPDATE room_admin_tasks SET status = coalesce($2, status), result = coalesce($3, result),
                   error = coalesce($4, error), updated_ts = $5 WHERE task_id = $1""",
            task_id, status, result, error, now_ts,
        )

    async def heartbeat(self, task_ids: Sequence[str], now_ts: int) -> None:
        await self._db.execute(
            "UPDATE room_admin_tasks SET updated_ts = $2 WHERE task_id = ANY($1::text[])", list(task_ids), now_ts)

    async def get(self, task_id: str) -> RoomTask | None:
        row = await self._db.fetchrow(f"SELECT {_TASK_COLUMNS} FROM room_admin_tasks WHERE task_id = $1", task_id)
        return RoomTask(**row) if row else None

    async def for_room(self, room_id: str, kind: str) -> list[RoomTask]:
        rows = await self._db.fetch(
            f"""SELECT {_TASK_COLUMNS} FROM room_admin_tasks WHERE room_id = $1 AND kind = $2
                ORDER BY created_ts, task_id""",
            room_id, kind,
        )
        return [RoomTask(**r) for r in rows]

    async def fail_stale(self, heartbeat_before_ts: int, error: str, now_ts: int) -> int:
        """Record as failed the running tasks whose heartbeat stopped; returns how many."""
        status = await self._db.execute(
            """UPDATE room_admin_tasks SET status = 'failed', error = $2, updated_ts = $3
               WHERE status IN ('scheduled', 'active') AND updated_ts < $1""",
            heartbeat_before_ts, error, now_ts,
        )
        return int(status.split()[-1])
