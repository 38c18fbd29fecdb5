"""What one screen of the built-in admin page shows, gathered from the admin services' reads
(the page's handlers call one method each; the changes go through the admin services
themselves, as the admin API's do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.errors import MatrixError
from homeserver.services.admin.reports import ReportService
from homeserver.services.admin.room_deletion import RoomDeletionService
from homeserver.services.admin.rooms import AdminRoomService
from storage.reports import EventReport, RoomReport, UserReport


@dataclass(frozen=True)
class RoomView:
    details: dict[str, Any]    # the admin API's room details
    blocked_by: str | None     # the admin who blocked it (None: not blocked)
    members: list[str]         # joined members
    deletions: list[dict[str, Any]]  # the admin API's delete statuses, if any


@dataclass(frozen=True)
class ReportsView:
    events: list[EventReport]
    event_total: int
    rooms: list[RoomReport]
    room_total: int
    users: list[UserReport]
    user_total: int


class AdminPageViews:
    def __init__(self, rooms: AdminRoomService, room_deletion: RoomDeletionService, reports: ReportService) -> None:
        self._rooms = rooms
        self._room_deletion = room_deletion
        self._reports = reports

    async def room(self, room_id: str) -> RoomView:
        """A room's details, block, members and deletions; 404 for a room this server does not know."""
        details = await self._rooms.details(room_id)
        block = await self._rooms.block_status(room_id)
        members = await self._rooms.members(room_id)
        try:
            deletions = await self._room_deletion.statuses_of_room(room_id)
        except MatrixError as err:
            if err.status != 404:  # 404: never deleted
                raise
            deletions = []
        return RoomView(details, block.get("user_id") if block["block"] else None, members["members"], deletions)

    async def reports(self, limit: int) -> ReportsView:
        """The newest reports of each kind (events, rooms, users), and how many there are."""
        events, event_total = await self._reports.event_reports(0, limit)
        rooms, room_total = await self._reports.room_reports(0, limit)
        users, user_total = await self._reports.user_reports(0, limit)
        return ReportsView(events, event_total, rooms, room_total, users, user_total)
