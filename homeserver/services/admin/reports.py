"""Reports: users report events, rooms and users (spec: "Reporting content"); server admins
list them, read them and resolve them by deleting them (Synapse's event reports admin API,
its user reports, and ChatGO's room reports listing of the same shape).

Filing, as Synapse does:
- an event report needs the event to exist in that room, unredacted, and the reporter joined
  to the room (spec v1.8); otherwise 404, whether the event exists or not;
- a room report needs a room this server knows (404 otherwise);
- a user report about a user that is not ours, or does not exist, is accepted and dropped
  (so the answer does not say who exists); its reason is at most 1000 characters;
- every report counts against the reporter's `rc_reports` rate limit.
Resolving a report deletes it and records the admin's action in the audit log, together.
"""

from __future__ import annotations

from typing import Any

from homeserver.core.ids import server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.membership import MembershipService
from storage.accounts import AccountStore
from storage.database import Database
from storage.events import EventStore
from storage.reports import EventReport, ReportStore, RoomReport, UserReport
from storage.rooms import RoomStore

MAX_USER_REPORT_REASON = 1000
_MAX_ID = 2**63 - 1


class ReportService:
    def __init__(self, db: Database, reports: ReportStore, events: EventStore, rooms: RoomStore,
                 accounts: AccountStore, membership: MembershipService, limiter: RateLimiter, audit: AdminAuditLog,
                 clock: Clock, server_name: str) -> None:
        self._db = db
        self._reports = reports
        self._events = events
        self._rooms = rooms
        self._accounts = accounts
        self._membership = membership
        self._clock = clock
        self._server_name = server_name
        self._limiter = limiter
        self._audit = audit

    # --- filing (client API) ------------------------------------------------------------------

    async def report_event(self, requester: Requester, room_id: str, event_id: str, body: dict[str, Any]) -> None:
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise MatrixError(400, Codes.BAD_JSON, "Param 'reason' must be a string")
        if "score" in body and type(body["score"]) is not int:
            raise MatrixError(400, Codes.BAD_JSON, "Param 'score' must be an integer")
        await self._check_rate(requester.user_id)
        event = await self._events.get_event(event_id)
        visible = (event is not None and event.room_id == room_id and event.redacted_by is None
                   and not event.outlier and event.rejected_reason is None
                   and await self._membership.membership_of(room_id, requester.user_id) == "join")
        if not visible:
            raise MatrixError(404, Codes.NOT_FOUND,
                              "Unable to report event: it does not exist or you aren't able to see it.")
        await self._reports.add_event_report(self._clock.now_ms(), room_id, event_id, requester.user_id, reason,
                                             body)

    async def report_room(self, requester: Requester, room_id: str, body: dict[str, Any]) -> None:
        reason = _required_reason(body)
        await self._check_rate(requester.user_id)
        if await self._rooms.get_room(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room does not exist")
        await self._reports.add_room_report(self._clock.now_ms(), room_id, requester.user_id, reason)

    async def report_user(self, requester: Requester, user_id: str, body: dict[str, Any]) -> None:
        reason = _required_reason(body)
        await self._check_rate(requester.user_id)
        if len(reason) > MAX_USER_REPORT_REASON:
            raise MatrixError(400, Codes.BAD_JSON, f"Reason must be less than {MAX_USER_REPORT_REASON} characters")
        if server_name_of(user_id) != self._server_name or not await self._accounts.user_exists(user_id):
            return  # not ours, or nobody: dropped without saying so
        await self._reports.add_user_report(self._clock.now_ms(), user_id, requester.user_id, reason)

    async def _check_rate(self, user_id: str) -> None:
        await self._limiter.check(Action.REPORT, user_id, user_id=user_id)

    # --- handling (admin API) -----------------------------------------------------------------

    async def event_reports(self, start: int, limit: int, *, backwards: bool = True, reporter: str | None = None,
                            room_id: str | None = None, event_sender: str | None = None,
                            ) -> tuple[list[EventReport], int]:
        return await self._reports.event_reports(start, limit, backwards=backwards, reporter=reporter,
                                                 room_id=room_id, event_sender=event_sender)

    async def event_report(self, report_id: str) -> tuple[EventReport, dict[str, Any] | None]:
        """One event report and the reported event's JSON."""
        found = await self._reports.event_report(_report_id(report_id))
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event report not found")
        return found

    async def room_reports(self, start: int, limit: int, *, backwards: bool = True, reporter: str | None = None,
                           room_id: str | None = None) -> tuple[list[RoomReport], int]:
        return await self._reports.room_reports(start, limit, backwards=backwards, reporter=reporter,
                                                room_id=room_id)

    async def room_report(self, report_id: str) -> RoomReport:
        report = await self._reports.room_report(_report_id(report_id))
        if report is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room report not found")
        return report

    async def user_reports(self, start: int, limit: int, *, backwards: bool = True, reporter: str | None = None,
                           target_user_id: str | None = None) -> tuple[list[UserReport], int]:
        return await self._reports.user_reports(start, limit, backwards=backwards, reporter=reporter,
                                                target_user_id=target_user_id)

    async def user_report(self, report_id: str) -> UserReport:
        report = await self._reports.user_report(_report_id(report_id))
        if report is None:
            raise MatrixError(404, Codes.NOT_FOUND, "User report not found")
        return report

    async def resolve(self, admin_id: str, kind: str, report_id: str) -> None:
        """Delete (resolve) an "event", "room" or "user" report; 404 when there is none."""
        number = _report_id(report_id)
        async with self._db.transaction():
            if not await self._reports.delete_report(kind, number):
                raise MatrixError(404, Codes.NOT_FOUND, f"{kind.capitalize()} report not found")
            await self._audit.record(admin_id, f"{kind}_report.delete", str(number))


def _required_reason(body: dict[str, Any]) -> str:
    if "reason" not in body:
        raise MatrixError(400, Codes.BAD_JSON, "Missing 'reason'")
    reason = body["reason"]
    if not isinstance(reason, str):
        raise MatrixError(400, Codes.BAD_JSON, "'reason' must be a string")
    return reason


def _report_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) > _MAX_ID:
        raise MatrixError(400, Codes.INVALID_PARAM,
                          "The report_id parameter must be a string representing a positive integer.")
    return int(raw)
