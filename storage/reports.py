"""ReportStore: what users reported to the server admins. Tables: event_reports, room_reports,
user_reports (reads events and current_state for the reported event's sender and the room's
name and canonical alias).

Listings page by offset, as Synapse's admin API does, ordered by when the report arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class EventReport:
    id: int
    received_ts: int
    room_id: str
    event_id: str
    user_id: str
    reason: str | None
    score: Any  # as the reporter sent it (an integer), or None
    sender: str | None  # of the reported event; None when we no longer hold it
    name: str | None
    canonical_alias: str | None


@dataclass(frozen=True, slots=True)
class RoomReport:
    id: int
    received_ts: int
    room_id: str
    user_id: str
    reason: str
    name: str | None
    canonical_alias: str | None


@dataclass(frozen=True, slots=True)
class UserReport:
    id: int
    received_ts: int
    target_user_id: str
    user_id: str
    reason: str


def _room_state_text(event_type: str, key: str) -> str:
    """A scalar subquery: one content field of the room's current state event of that type."""
    return f"""(SELECT s.pdu->'content'->>'{key}' FROM current_state cs JOIN events s ON s.event_id = cs.event_id
               WHERE cs.room_id = r.room_id AND cs.type = '{event_type}' AND cs.state_key = '')"""


_ROOM_INFO = f"{_room_state_text('m.room.name', 'name')} AS name, " \
             f"{_room_state_text('m.room.canonical_alias', 'alias')} AS canonical_alias"
_EVENT_REPORT_COLUMNS = f"""r.id, r.received_ts, r.room_id, r.event_id, r.user_id, r.reason,
                            r.content->'score' AS score, e.sender, {_ROOM_INFO}"""
_EVENT_REPORT_FROM = "FROM event_reports r LEFT JOIN events e ON e.event_id = r.event_id"
_EVENT_FILTER = """WHERE ($1::text IS NULL OR strpos(r.user_id, $1) > 0)
                     AND ($2::text IS NULL OR strpos(r.room_id, $2) > 0)
                     AND ($3::text IS NULL OR e.sender = $3)"""
_ROOM_REPORT = f"SELECT r.id, r.received_ts, r.room_id, r.user_id, r.reason, {_ROOM_INFO} FROM room_reports r"
_ROOM_FILTER = """WHERE ($1::text IS NULL OR strpos(r.user_id, $1) > 0)
                    AND ($2::text IS NULL OR strpos(r.room_id, $2) > 0)"""
_USER_REPORT = "SELECT r.id, r.received_ts, r.target_user_id, r.user_id, r.reason FROM user_reports r"
_USER_FILTER = """WHERE ($1::text IS NULL OR strpos(r.user_id, $1) > 0)
                    AND ($2::text IS NULL OR strpos(r.target_user_id, $2) > 0)"""


def _order(backwards: bool) -> str:
    return "ORDER BY r.received_ts DESC, r.id DESC" if backwards else "ORDER BY r.received_ts, r.id"


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- filing -----------------------------------------------------------------------------

    async def add_event_report(self, received_ts: int, room_id: str, event_id: str, user_id: str,
                               reason: str | None, content: dict[str, Any]) -> int:
        return await self._db.fetchval(
            """INSERT INTO event_reports (received_ts, room_id, event_id, user_id, reason, content)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            received_ts, room_id, event_id, user_id, reason, content,
        )

    async def add_room_report(self, received_ts: int, room_id: str, user_id: str, reason: str) -> int:
        return await self._db.fetchval(
            "INSERT INTO room_reports (received_ts, room_id, user_id, reason) VALUES ($1, $2, $3, $4) RETURNING id",
            received_ts, room_id, user_id, reason,
        )

    async def add_user_report(self, received_ts: int, target_user_id: str, user_id: str, reason: str) -> int:
        return await self._db.fetchval(
            """INSERT INTO user_reports (received_ts, target_user_id, user_id, reason) VALUES ($1, $2, $3, $4)
               RETURNING id""",
            received_ts, target_user_id, user_id, reason,
        )

    # --- reading ----------------------------------------------------------------------------

    async def event_reports(self, start: int, limit: int, *, backwards: bool, reporter: str | None,
                            room_id: str | None, event_sender: str | None) -> tuple[list[EventReport], int]:
        """A page of event reports and how many match. `reporter` and `room_id` match any part
        of the ID (as Synapse), `event_sender` the whole sender of the reported event."""
        args = (reporter, room_id, event_sender)
        rows = await self._db.fetch(
            f"SELECT {_EVENT_REPORT_COLUMNS} {_EVENT_REPORT_FROM} {_EVENT_FILTER} {_order(backwards)} "
            "LIMIT $4 OFFSET $5", *args, limit, start)
        total = await self._db.fetchval(f"SELECT count(*) {_EVENT_REPORT_FROM} {_EVENT_FILTER}", *args)
        return [EventReport(**r) for r in rows], total

    async def event_report(self, report_id: int) -> tuple[EventReport, dict[str, Any] | None] | None:
        """One event report, with the reported event's PDU (None when we no longer hold it)."""
        row = await self._db.fetchrow(
            f"SELECT {_EVENT_REPORT_COLUMNS}, e.pdu {_EVENT_REPORT_FROM} WHERE r.id = $1", report_id)
        if row is None:
            return None
        values = dict(row)
        pdu = values.pop("pdu")
        return EventReport(**values), pdu

    async def room_reports(self, start: int, limit: int, *, backwards: bool, reporter: str | None,
                           room_id: str | None) -> tuple[list[RoomReport], int]:
        rows = await self._db.fetch(f"{_ROOM_REPORT} {_ROOM_FILTER} {_order(backwards)} LIMIT $3 OFFSET $4",
                                    reporter, room_id, limit, start)
        total = await self._db.fetchval(f"SELECT count(*) FROM room_reports r {_ROOM_FILTER}", reporter, room_id)
        return [RoomReport(**r) for r in rows], total

    async def room_report(self, report_id: int) -> RoomReport | None:
        row = await self._db.fetchrow(f"{_ROOM_REPORT} WHERE r.id = $1", report_id)
        return RoomReport(**row) if row else None

    async def user_reports(self, start: int, limit: int, *, backwards: bool, reporter: str | None,
                           target_user_id: str | None) -> tuple[list[UserReport], int]:
        rows = await self._db.fetch(f"{_USER_REPORT} {_USER_FILTER} {_order(backwards)} LIMIT $3 OFFSET $4",
                                    reporter, target_user_id, limit, start)
        total = await self._db.fetchval(f"SELECT count(*) FROM user_reports r {_USER_FILTER}",
                                        reporter, target_user_id)
        return [UserReport(**r) for r in rows], total

    async def user_report(self, report_id: int) -> UserReport | None:
        row = await self._db.fetchrow(f"{_USER_REPORT} WHERE r.id = $1", report_id)
        return UserReport(**row) if row else None

    # --- resolving --------------------------------------------------------------------------

    async def delete_report(self, kind: str, report_id: int) -> bool:
        """Resolve (delete) a report of `kind` ("event", "room" or "user"); False when unknown."""
        table = {"event": "event_reports", "room": "room_reports", "user": "user_reports"}[kind]
        return await self._db.execute(f"DELETE FROM {table} WHERE id = $1", report_id) == "DELETE 1"
