"""ReceiptStore: the latest receipt per (room, type, user, thread). Tables: receipts."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str  # '' when unthreaded
    event_id: str
    ts: int
    stream_id: int


_COLUMNS = "room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id"


class ReceiptStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, room_id: str, receipt_type: str, user_id: str, thread_id: str, event_id: str,
                  event_stream_ordering: int, ts: int, stream_id: int) -> bool:
        """Store a receipt unless the user already has one at a later event; True when stored
        (receipts only move forwards, as in Synapse)."""
        row = await self._db.fetchval(
            """INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id,
                                     event_stream_ordering, ts, stream_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE
                   SET event_id = EXCLUDED.event_id, event_stream_ordering = EXCLUDED.event_stream_ordering,
                       ts = EXCLUDED.ts, stream_id = EXCLUDED.stream_id
                   WHERE receipts.event_stream_ordering < EXCLUDED.event_stream_ordering
               RETURNING stream_id""",
            room_id, receipt_type, user_id, thread_id, event_id, event_stream_ordering, ts, stream_id,
        )
        return row is not None

    async def in_rooms(self, room_ids: list[str], after: int | None, upto: int) -> list[ReceiptRow]:
        """Receipts in these rooms written in (after, upto] (all current ones when after is None)."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM receipts WHERE room_id = ANY($1::text[])
                AND stream_id > $2 AND stream_id <= $3""",
            room_ids, after if after is not None else 0, upto,
        )
        return [ReceiptRow(**r) for r in rows]

    async def read_upto(self, user_id: str, room_ids: list[str] | None = None) -> dict[str, dict[str | None, int]]:
        """room -> thread key -> the stream ordering the user has read up to (m.read or
        m.read.private, whichever is later). Key None is an unthreaded receipt."""
        rows = await self._db.fetch(
            """SELECT room_id, thread_id, max(event_stream_ordering) AS upto FROM receipts
               WHERE user_id = $1 AND receipt_type IN ('m.read', 'm.read.private')
                 AND ($2::text[] IS NULL OR room_id = ANY($2::text[]))
               GROUP BY room_id, thread_id""",
            user_id, room_ids,
        )
        out: dict[str, dict[str | None, int]] = {}
        for r in rows:
            out.setdefault(r["room_id"], {})[r["thread_id"] or None] = r["upto"]
        return out

    async def delete_room(self, room_id: str) -> None:
        await self._db.execute("DELETE FROM receipts WHERE room_id = $1", room_id)
