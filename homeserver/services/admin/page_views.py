"""What one screen of the built-in admin page shows, gathered from the admin services' reads
(the page's handlers call one method each; the changes go through the admin services
themselves, as the admin API's do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.errors import MatrixError
from homeserver.services.admin.room_deletion import RoomDeletionService
from homeserver.services.admin.rooms import AdminRoomService


@dataclass(frozen=True)
class RoomView:
    details: dict[str, Any]    # the admin API's room details
    blocked_by: str | None     # the admin who blocked it (None: not blocked)
    members: list[str]         # joined members
    deletions: list[dict[str, Any]]  # the admin API's delete statuses, if any


class AdminPageViews:
    def __init__(self, rooms: AdminRoomService, room_deletion: RoomDeletionService) -> None:
        self._rooms = rooms
        self._room_deletion = room_deletion

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
