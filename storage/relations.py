"""RelationQueries: reads of m.relates_to (relations, threads, bundled aggregations).
Tables read: events, redactions (written by EventStore).

Each aggregation query takes a whole page of event IDs, so bundling costs a fixed number of
queries per page, not per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database
from storage.events import EVENT_COLUMNS, REDACTION_APPLIES, EventRow

_ACCEPTED = "e.rejected_reason IS NULL AND NOT e.soft_failed AND e.stream_ordering IS NOT NULL"
_NOT_REDACTED = f"""NOT EXISTS (SELECT 1 FROM redactions r JOIN events re ON re.event_id = r.event_id
                   WHERE {REDACTION_APPLIES})"""


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    root_id: str
    count: int
    latest_event_id: str
    participated: bool


class RelationQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def relations(
        self, room_id: str, parent_id: str, *, rel_type: str | None, event_type: str | None,
        before: tuple[int, int] | None, after: tuple[int, int] | None, limit: int,
    ) -> list[EventRow]:
        backwards = after is None
        point = before if backwards else after
        cmp, order = ("<", "DESC") if backwards else (">", "ASC")
        args: list[Any] = [room_id, parent_id, rel_type, event_type]
        condition = ""
        if point is not None:
            args += [point[0], point[1]]
            condition = f"AND (e.depth, e.stream_ordering) {cmp} ($5, $6)"
        args.append(limit)
        rows = await self._db.fetch(
            f"""SELECT {EVENT_COLUMNS} FROM events e
                WHERE e.room_id = $1 AND e.relates_to = $2 AND ($3::text IS NULL OR e.rel_type = $3)
                  AND ($4::text IS NULL OR e.type = $4) AND {_ACCEPTED} {condition}
                ORDER BY e.depth {order}, e.stream_ordering {order} LIMIT ${len(args)}""",
            *args,
        )
        return [EventRow(**r) for r in rows]

    async def relation_types(self, event_ids: Sequence[str]) -> dict[str, set[str]]:
        """event ID -> the bundled relation types (edit, thread, reference) pointing at it; one
        cheap query that usually finds nothing, so the per-type queries can be skipped."""
        if not event_ids:
            return {}
        rows = await self._db.fetch(
            """SELECT relates_to, array_agg(DISTINCT rel_type) AS types FROM events
               WHERE relates_to = ANY($1::text[]) AND rel_type IN ('m.replace', 'm.thread', 'm.reference')
               GROUP BY relates_to""",
            list(event_ids),
        )
        return {r["relates_to"]: set(r["types"]) for r in rows}

    async def latest_edits(self, originals: Sequence[tuple[str, str]]) -> dict[str, str]:
        """original event ID -> its newest m.replace by the same sender (spec: edits).

        `originals` are (event_id, sender) pairs; redacted edits do not count.
        """
        if not originals:
            return {}
        rows = await self._db.fetch(
            f"""SELECT DISTINCT ON (e.relates_to) e.relates_to, e.event_id
                FROM unnest($1::text[], $2::text[]) AS o(event_id, sender)
                JOIN events e ON e.relates_to = o.event_id AND e.rel_type = 'm.replace' AND e.sender = o.sender
                WHERE {_ACCEPTED} AND {_NOT_REDACTED}
                ORDER BY e.relates_to, e.origin_server_ts DESC, e.event_id DESC""",
            [o[0] for o in originals], [o[1] for o in originals],
        )
        return {r["relates_to"]: r["event_id"] for r in rows}

    async def thread_summaries(self, root_ids: Sequence[str], user_id: str) -> dict[str, ThreadSummary]:
        if not root_ids:
            return {}
        rows = await self._db.fetch(
            f"""SELECT e.relates_to AS root_id, count(*)::int AS count,
                       (array_agg(e.event_id ORDER BY e.depth DESC, e.stream_ordering DESC))[1] AS latest_event_id,
                       bool_or(e.sender = $2) AS participated
                FROM events e
                WHERE e.relates_to = ANY($1::text[]) AND e.rel_type = 'm.thread' AND {_ACCEPTED}
                GROUP BY e.relates_to""",
            list(root_ids), user_id,
        )
        return {r["root_id"]: ThreadSummary(**r) for r in rows}

    async def references(self, parent_ids: Sequence[str]) -> dict[str, list[str]]:
        if not parent_ids:
            return {}
        rows = await self._db.fetch(
            f"""SELECT e.relates_to, array_agg(e.event_id ORDER BY e.stream_ordering) AS ids
                FROM events e WHERE e.relates_to = ANY($1::text[]) AND e.rel_type = 'm.reference' AND {_ACCEPTED}
                GROUP BY e.relates_to""",
            list(parent_ids),
        )
        return {r["relates_to"]: list(r["ids"]) for r in rows}

    async def thread_roots(
        self, room_id: str, *, participant: str | None, before: tuple[int, int] | None, limit: int,
    ) -> list[tuple[str, int, int]]:
        """(root_id, depth, stream) of threads ordered by their latest reply, newest first.

        The position is the latest reply's, which is what `from` tokens page by.
        """
        args: list[Any] = [room_id, participant]
        condition = ""
        if before is not None:
            args += [before[0], before[1]]
            condition = "WHERE (t.depth, t.stream) < ($3, $4)"
        args.append(limit)
        rows = await self._db.fetch(
            f"""SELECT t.root_id, t.depth, t.stream FROM (
                    SELECT e.relates_to AS root_id, max(e.depth) AS depth, max(e.stream_ordering) AS stream
                    FROM events e
                    WHERE e.room_id = $1 AND e.rel_type = 'm.thread' AND {_ACCEPTED}
                    GROUP BY e.relates_to
                    HAVING $2::text IS NULL OR bool_or(e.sender = $2)
                        OR EXISTS (SELECT 1 FROM events r WHERE r.event_id = e.relates_to AND r.sender = $2)
                ) t {condition}
                ORDER BY t.depth DESC, t.stream DESC LIMIT ${len(args)}""",
            *args,
        )
        return [(r["root_id"], r["depth"], r["stream"]) for r in rows]
