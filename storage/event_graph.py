"""EventGraphQueries: walks of the room DAG for federation (auth chains, extremities).
Tables read: events, event_auth_edges, event_edges. Written by EventStore (storage/events.py)."""

from __future__ import annotations

from collections.abc import Sequence

from storage.database import Database


# The union of the auth chains of some of a room's events ($2), as {columns} of `events e`.
# Each step and each event is read by its primary key in a LATERAL subquery (OFFSET 0 keeps it
# from being flattened): as plain joins the planner, which cannot tell how few rows the walk
# holds, sorted every auth edge on the server at each step and hashed every event of the room,
# so a two-event chain cost as much as the room (30 ms in a room of 10,000 state events).
AUTH_CHAIN = """
WITH RECURSIVE chain(event_id) AS (
    SELECT auth_event_id FROM event_auth_edges WHERE event_id = ANY($2::text[])
    UNION
    SELECT a.auth_event_id FROM chain c CROSS JOIN LATERAL (
        SELECT x.auth_event_id FROM event_auth_edges x WHERE x.event_id = c.event_id OFFSET 0) a
)
SELECT {columns} FROM chain CROSS JOIN LATERAL (
    SELECT * FROM events x WHERE x.event_id = chain.event_id AND x.room_id = $1 OFFSET 0) e
"""


# Which of $3 lie in the auth chain of $1, the walk not going below the events of $2 (the
# caller knows none of $3 lies below them). Steps by the primary key, as AUTH_CHAIN.
_AUTH_CHAIN_HITS = """
WITH RECURSIVE walk(event_id) AS (
    SELECT a.auth_event_id FROM event_auth_edges a
    WHERE a.event_id = ANY($1::text[]) AND NOT a.event_id = ANY($2::text[])
    UNION
    SELECT a.auth_event_id FROM walk w CROSS JOIN LATERAL (
        SELECT x.auth_event_id FROM event_auth_edges x WHERE x.event_id = w.event_id OFFSET 0) a
    WHERE NOT w.event_id = ANY($2::text[])
)
SELECT event_id FROM walk WHERE event_id = ANY($3::text[])
"""


class EventGraphQueries:
    """Walks of the room DAG for federation. Tables read: events, event_auth_edges, event_edges."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def auth_chain_ids(self, room_id: str, event_ids: Sequence[str]) -> set[str]:
        """The stored events of the room reachable from `event_ids` through auth_events (not
        including them)."""
        rows = await self._db.fetch(AUTH_CHAIN.format(columns="e.event_id"), room_id, list(event_ids))
        return {r["event_id"] for r in rows}

    async def auth_chain_hits(self, event_ids: Sequence[str], targets: Sequence[str],
                              stop: Sequence[str] = ()) -> set[str]:
        """Which of `targets` are in the auth chain of `event_ids`, walking in the database
        without loading the chain; the walk does not go below the events of `stop`."""
        rows = await self._db.fetch(_AUTH_CHAIN_HITS, list(event_ids), list(stop), list(targets))
        return {r["event_id"] for r in rows}

    async def known(self, event_ids: Sequence[str]) -> dict[str, tuple[bool, str | None, int | None]]:
        """event_id -> (outlier, rejected_reason, state_after) of the events we hold."""
        rows = await self._db.fetch(
            """SELECT event_id, outlier, rejected_reason, state_after FROM events
               WHERE event_id = ANY($1::text[])""",
            list(event_ids),
        )
        return {r["event_id"]: (r["outlier"], r["rejected_reason"], r["state_after"]) for r in rows}

    async def rejected_among(self, event_ids: Sequence[str]) -> set[str]:
        rows = await self._db.fetch(
            "SELECT event_id FROM events WHERE event_id = ANY($1::text[]) AND rejected_reason IS NOT NULL",
            list(event_ids),
        )
        return {r["event_id"] for r in rows}

    async def backward_extremities(self, room_id: str, limit: int = 5) -> list[tuple[str, int]]:
        """(event_id, depth) of the room's oldest timeline events whose prev events we lack: where
        backfill continues from."""
        rows = await self._db.fetch(
            """SELECT DISTINCT e.event_id, e.depth FROM events e
               JOIN event_edges p ON p.event_id = e.event_id
               LEFT JOIN events pe ON pe.event_id = p.prev_event_id AND NOT pe.outlier
               WHERE e.room_id = $1 AND NOT e.outlier AND e.stream_ordering IS NOT NULL AND pe.event_id IS NULL
               ORDER BY e.depth LIMIT $2""",
            room_id, limit,
        )
        return [(r["event_id"], r["depth"]) for r in rows]
