"""FederationReadQueries: walks of the room DAG for other servers (auth chains, backfill, missing
events) and what a server may see at a point of a room. A user's server is the part of its
ID after the first ':' (localparts hold none), compared exactly. Tables read: events, event_edges,
event_auth_edges, state_groups, state_group_entries, current_state (all written by EventStore).

Every walk is ONE recursive query, however long the chain: no query per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.database import Database
from storage.event_graph import AUTH_CHAIN
from storage.events import EVENT_COLUMNS, EventRow

# The auth chain of some events: their auth events, theirs, and so on (the events themselves
# only when another one's auth chain reaches them). UNION drops rows already found, so the
# walk ends on any graph.
# Backfill: the given events and their ancestors, deepest first. Taking the `limit` deepest
# ancestors is what a breadth-first walk by depth (Synapse's priority queue) returns; since
# depth falls along prev_events, each of them lies fewer than `limit` steps from a given
# event, which bounds the walk. Rows are (event, steps) pairs, so at most events x limit.
# (Rejected and soft-failed events use up steps without being counted, so behind a run of
# them the answer can stop short; peers then ask again from the oldest event they got.)
_BACKFILL = """
WITH RECURSIVE walk(event_id, steps) AS (
    SELECT unnest($2::text[]), 0
    UNION
    SELECT ee.prev_event_id, w.steps + 1 FROM walk w JOIN event_edges ee ON ee.event_id = w.event_id
    WHERE w.steps + 1 < $3
)
SELECT {columns} FROM (SELECT DISTINCT event_id FROM walk) w JOIN events e ON e.event_id = w.event_id
WHERE e.room_id = $1 AND e.rejected_reason IS NULL AND NOT e.soft_failed
ORDER BY e.depth DESC, e.stream_ordering DESC NULLS LAST, e.event_id
LIMIT $3
"""

# get_missing_events: breadth-first from the latest events' prev_events, never entering (or
# passing) the earliest events; the `limit` nearest, by steps then depth.
_MISSING = """
WITH RECURSIVE walk(event_id, steps) AS (
    SELECT ee.prev_event_id, 1 FROM event_edges ee
    WHERE ee.event_id = ANY($3::text[]) AND NOT ee.prev_event_id = ANY($2::text[])
    UNION
    SELECT ee.prev_event_id, w.steps + 1 FROM walk w JOIN event_edges ee ON ee.event_id = w.event_id
    WHERE w.steps < $4 AND NOT ee.prev_event_id = ANY($2::text[])
)
SELECT {columns} FROM (SELECT event_id, min(steps) AS steps FROM walk GROUP BY event_id) w
JOIN events e ON e.event_id = w.event_id
WHERE e.room_id = $1 AND e.depth >= $5 AND e.rejected_reason IS NULL AND NOT e.soft_failed
ORDER BY w.steps, e.depth DESC, e.event_id
LIMIT $4
"""

# For each state group: its history visibility and the member events of one server's users,
# resolved the way StateStore resolves a snapshot (nearest entry along the parent chain).
# Groups of a room share most of their chain, so each group's matching entries are read once.
_SERVER_VIEW = """
WITH RECURSIVE chain(root, id, prev, n) AS (
    SELECT id, id, prev_group, 0 FROM state_groups WHERE id = ANY($1::bigint[])
    UNION ALL
    SELECT c.root, g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
),
relevant AS MATERIALIZED (
    SELECT s.group_id, s.type, s.state_key, s.event_id FROM state_group_entries s
    WHERE s.group_id IN (SELECT id FROM chain)
      AND ((s.type = 'm.room.history_visibility' AND s.state_key = '')
           OR (s.type = 'm.room.member' AND substr(s.state_key, strpos(s.state_key, ':') + 1) = $2))
),
entries AS (
    SELECT DISTINCT ON (chain.root, r.type, r.state_key) chain.root, r.type, r.event_id
    FROM chain JOIN relevant r ON r.group_id = chain.id
    ORDER BY chain.root, r.type, r.state_key, chain.n
)
SELECT entries.root, entries.type,
       CASE WHEN entries.type = 'm.room.member' THEN e.pdu->'content'->>'membership'
            ELSE e.pdu->'content'->>'history_visibility' END AS value
FROM entries JOIN events e ON e.event_id = entries.event_id
"""


@dataclass(frozen=True, slots=True)
class ServerView:
    """What decides whether a server may see events at one state snapshot: the room's
    history_visibility there (None: no event, or not a string) and the memberships of that
    server's users there."""
    history_visibility: str | None
    memberships: tuple[str, ...]


class FederationReadQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def auth_chain(self, room_id: str, event_ids: Sequence[str]) -> list[EventRow]:
        """The union of the auth chains of `event_ids` (a room's events), in no order."""
        rows = await self._db.fetch(AUTH_CHAIN.format(columns=EVENT_COLUMNS), room_id, list(event_ids))
        return [EventRow(**r) for r in rows]

    async def auth_chain_ids(self, room_id: str, event_ids: Sequence[str]) -> list[str]:
        rows = await self._db.fetch(AUTH_CHAIN.format(columns="e.event_id"), room_id, list(event_ids))
        return [r["event_id"] for r in rows]

    async def backfill(self, room_id: str, event_ids: Sequence[str], limit: int) -> list[EventRow]:
        """Up to `limit` of the given events and their ancestors, deepest first; rejected and
        soft-failed events are walked through but not returned."""
        rows = await self._db.fetch(_BACKFILL.format(columns=EVENT_COLUMNS), room_id, list(event_ids), limit)
        return [EventRow(**r) for r in rows]

    async def missing_events(self, room_id: str, earliest: Sequence[str], latest: Sequence[str], limit: int,
                             min_depth: int) -> list[EventRow]:
        """Up to `limit` ancestors of `latest` not behind `earliest`, nearest first; only those
        at `min_depth` or deeper, never rejected or soft-failed ones."""
        rows = await self._db.fetch(_MISSING.format(columns=EVENT_COLUMNS), room_id, list(earliest),
                                    list(latest), limit, min_depth)
        return [EventRow(**r) for r in rows]

    async def server_views(self, group_ids: Sequence[int], server_name: str) -> dict[int, ServerView]:
        """For each state group: the history visibility and `server_name`'s users' memberships."""
        rows = await self._db.fetch(_SERVER_VIEW, list(set(group_ids)), server_name)
        visibility: dict[int, str | None] = {}
        memberships: dict[int, list[str]] = {}
        for r in rows:
            if r["type"] == "m.room.member":
                memberships.setdefault(r["root"], []).append(r["value"])
            else:
                visibility[r["root"]] = r["value"]
        return {g: ServerView(visibility.get(g), tuple(m for m in memberships.get(g, ()) if m))
                for g in set(group_ids)}

    async def server_joined(self, room_id: str, server_name: str) -> bool:
        """Whether a user of `server_name` is joined to the room now (current state)."""
        return await self._db.fetchval(
            """SELECT EXISTS (SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'
                              AND membership = 'join' AND substr(state_key, strpos(state_key, ':') + 1) = $2)""",
            room_id, server_name,
        )
