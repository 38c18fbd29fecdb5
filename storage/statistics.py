"""StatisticsQueries: where the database's space goes, from PostgreSQL's own statistics.
Tables read: pg_stats and the sizes of the tables that hold rows per room."""

from __future__ import annotations

from collections import Counter

from storage.database import Database

# The tables that grow with a room's history.
ROOM_TABLES = ("events", "event_push_actions", "room_memberships", "current_state", "state_groups", "receipts",
               "event_txn_ids")


class StatisticsQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def largest_rooms(self, count: int = 10) -> list[tuple[str, int]]:
        """The rooms that take the most space, estimated as Synapse does: each table's size on
        disk shared out by how often the planner saw each room_id in it (its most common
        values). Rough, and empty until PostgreSQL has analysed the tables."""
        rows = await self._db.fetch(
            """SELECT pg_total_relation_size(format('%I.%I', s.schemaname, s.tablename)::regclass) AS size,
                      s.most_common_vals::text::text[] AS vals, s.most_common_freqs::text::float8[] AS freqs
               FROM pg_stats s
               WHERE s.schemaname = current_schema() AND s.attname = 'room_id' AND s.tablename = ANY($1::text[])
                 AND s.most_common_vals IS NOT NULL""",
            list(ROOM_TABLES))
        estimates: Counter[str] = Counter()
        for row in rows:
            for room_id, freq in zip(row["vals"], row["freqs"]):
                estimates[room_id] += int(freq * row["size"])
        return estimates.most_common(count)
