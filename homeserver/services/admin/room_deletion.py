"""Deleting a room (Synapse's Delete Room API): DELETE /_synapse/admin/v1/rooms/{roomId}, which
answers when done, and DELETE /_synapse/admin/v2/rooms/{roomId}, which runs in the background
and reports through the delete status endpoints.

A deletion (as Synapse's shutdown and purge):
1. with `block`, blocks the room first (even one this server does not know);
2. with `new_room_user_id`, creates a public notice room as that local user (everyone else at
   power -10, so it stays quiet);
3. makes every local member leave (joined, invited, knocking) and forget the room, and joins
   those who were joined to the notice room;
4. posts `message` in the notice room and moves the room's local aliases there; without a
   notice room the aliases are deleted; the room leaves the public directory either way;
5. with `purge` (the default), removes the room from the database: refused while local users
   are still joined, unless `force_purge`. The local users' departures stay, so their /sync
   shows them leaving however late they sync.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from homeserver.core.ids import is_valid_room_id, is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.admin.purge import RoomPurger
from homeserver.services.admin.room_tasks import RoomTaskRunner
from homeserver.services.clock import Clock
from homeserver.services.rooms.creation import RoomService
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.membership import MembershipService
from storage.admin_rooms import AdminRoomQueries, RoomTask
from storage.directory import DirectoryStore
from storage.rooms import RoomStore

logger = logging.getLogger(__name__)

DELETE = "delete"
DEFAULT_MESSAGE = "Sharing illegal content on this server is not permitted and rooms in violation will be blocked."
DEFAULT_ROOM_NAME = "Content Violation Notification"
# Everyone but its creator is at this power level in the notice room: they can read, not speak.
NOTICE_ROOM_USERS_DEFAULT = -10


@dataclass(frozen=True)
class DeleteRequest:
    new_room_user_id: str | None
    room_name: str
    message: str
    block: bool
    purge: bool
    force_purge: bool

    def params(self) -> dict[str, Any]:
        return {"new_room_user_id": self.new_room_user_id, "room_name": self.room_name, "message": self.message,
                "block": self.block, "purge": self.purge, "force_purge": self.force_purge}


def empty_result() -> dict[str, Any]:
    return {"kicked_users": [], "failed_to_kick_users": [], "local_aliases": [], "new_room_id": None}


class RoomDeletionService:
    def __init__(self, rooms: RoomStore, directory: DirectoryStore, queries: AdminRoomQueries, purger: RoomPurger,
                 tasks: RoomTaskRunner, room_creation: RoomService, membership: MembershipService,
                 events: EventService, audit: AdminAuditLog, clock: Clock, server_name: str) -> None:
        self._rooms = rooms
        self._directory = directory
        self._queries = queries
        self._purger = purger
        self._tasks = tasks
        self._room_creation = room_creation
        self._membership = membership
        self._events = events
        self._audit = audit
        self._clock = clock
        self._server_name = server_name

    # --- use cases -----------------------------------------------------------------------------

    async def delete_now(self, admin_id: str, room_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """v1: delete the room before answering; returns the shutdown result."""
        request = self._parse(room_id, body)
        await self._audit.record(admin_id, "room.delete", room_id, **request.params())
        return await self._delete(admin_id, room_id, request, None)

    async def start_delete(self, admin_id: str, room_id: str, body: dict[str, Any]) -> str:
        """v2: start the deletion in the background; returns its delete_id."""
        request = self._parse(room_id, body)
        if any(self._tasks.effective_status(t) in ("scheduled", "active")
               for t in await self._tasks.for_room(room_id, DELETE)):
            raise MatrixError(400, Codes.UNKNOWN, f"Purge already in progress for {room_id}")

        async def work(task_id: str) -> dict[str, Any]:
            return await self._delete(admin_id, room_id, request, task_id)

        delete_id = await self._tasks.start(DELETE, room_id, request.params(), admin_id, work)
        await self._audit.record(admin_id, "room.delete", room_id, delete_id=delete_id, **request.params())
        return delete_id

    async def status(self, delete_id: str) -> dict[str, Any]:
        task = await self._tasks.get(delete_id)
        if task is None or task.kind != DELETE:
            raise MatrixError(404, Codes.NOT_FOUND, f"delete id '{delete_id}' not found")
        return self._status_of(task)

    async def statuses_of_room(self, room_id: str) -> list[dict[str, Any]]:
        if not is_valid_room_id(room_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{room_id} is not a legal room ID")
        tasks = await self._tasks.for_room(room_id, DELETE)
        if not tasks:
            raise MatrixError(404, Codes.NOT_FOUND, f"No delete task for room_id '{room_id}' found")
        return [self._status_of(t) for t in tasks]

    async def wait(self, delete_id: str) -> None:
        await self._tasks.wait(delete_id)

    # --- internals -----------------------------------------------------------------------------

    def _parse(self, room_id: str, body: dict[str, Any]) -> DeleteRequest:
        flags = {}
        for key, default in (("block", False), ("purge", True), ("force_purge", False)):
            value = body.get(key, default)
            if not isinstance(value, bool):
                raise MatrixError(400, Codes.BAD_JSON, f"Param '{key}' must be a boolean, if given")
            flags[key] = value
        texts = {}
        for key, default in (("room_name", DEFAULT_ROOM_NAME), ("message", DEFAULT_MESSAGE)):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise MatrixError(400, Codes.BAD_JSON, f"Param '{key}' must be a string, if given")
            texts[key] = value or default
        if not is_valid_room_id(room_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{room_id} is not a legal room ID")
        new_room_user_id = body.get("new_room_user_id")
        if new_room_user_id is not None and (not is_valid_user_id(new_room_user_id)
                                             or server_name_of(new_room_user_id) != self._server_name):
            raise MatrixError(400, Codes.INVALID_PARAM, f"User must be our own: {new_room_user_id}")
        return DeleteRequest(new_room_user_id, texts["room_name"], texts["message"], **flags)

    def _status_of(self, task: RoomTask) -> dict[str, Any]:
        body: dict[str, Any] = {"delete_id": task.task_id, "room_id": task.room_id,
                                "status": self._tasks.effective_status(task), "shutdown_room": task.result}
        error = self._tasks.error_of(task)
        if error is not None:
            body["error"] = error
        return body

    async def _delete(self, admin_id: str, room_id: str, request: DeleteRequest, task_id: str | None) -> dict[str, Any]:
        result = empty_result()

        async def progress() -> None:
            if task_id is not None:
                await self._tasks.set_result(task_id, result)

        if request.block:
            await self._rooms.block(room_id, admin_id, self._clock.now_ms())
        if await self._rooms.get_room(room_id) is None:
            return result  # nothing more to do here (a block of a room not known yet)
        if request.new_room_user_id is not None:
            result["new_room_id"] = await self._room_creation.create_room(request.new_room_user_id, {
                "preset": "public_chat", "name": request.room_name,
                "power_level_content_override": {"users_default": NOTICE_ROOM_USERS_DEFAULT}}, ratelimited=False)
            await progress()
        await self._remove_local_users(room_id, result, progress)
        if result["new_room_id"] is not None:
            await self._events.send(result["new_room_id"], request.new_room_user_id, "m.room.message",
                                    {"msgtype": "m.text", "body": request.message})
            result["local_aliases"] = await self._directory.move_aliases(room_id, result["new_room_id"], admin_id)
        await self._directory.remove_room(room_id)  # what is left: out of the directory, aliases gone
        await progress()
        if request.purge:
            await self._purge(room_id, request.force_purge)
        return result

    async def _remove_local_users(self, room_id: str, result: dict[str, Any], progress) -> None:
        for member in await self._queries.local_memberships(room_id, self._server_name):
            if member.membership not in ("join", "invite", "knock"):
                continue
            try:
                await self._membership.leave(member.user_id, room_id)
                await self._rooms.forget(member.user_id, room_id)
                if result["new_room_id"] is not None and member.membership == "join":
                    await self._membership.join(member.user_id, result["new_room_id"], ratelimited=False)
                result["kicked_users"].append(member.user_id)
            except Exception:  # one user's failure must not stop the shutdown (Synapse goes on too)
                logger.exception("could not remove %s from %s", member.user_id, room_id)
                result["failed_to_kick_users"].append(member.user_id)
            await progress()

    async def _purge(self, room_id: str, force: bool) -> None:
        members = await self._queries.local_memberships(room_id, self._server_name)
        if not force and any(m.membership == "join" for m in members):
            raise MatrixError(400, Codes.UNKNOWN, "Users are still joined to this room")
        # The local users' departures stay, so that their /sync shows them leaving.
        await self._purger.purge_room(room_id, [(m.user_id, m.event_id) for m in members
                                                if m.membership in ("leave", "ban")])
