"""Removing room data from the database: a whole room (the purge of a room deletion) and a
room's history before a point (POST /_synapse/admin/v1/purge_history, with its status).

Invariants:
- each purge is one transaction, taken under the room's lock, so no local event is built on
  what it removes and nothing is half-removed; it starts once the push actions of the events
  published so far are written, so that none is written after it for an event it removed;
- a history purge keeps what the room still needs (as Synapse): its state events, and, unless
  `delete_local_events`, the events sent from this server; those kept leave the timeline
  (outliers), so /messages and /sync no longer show anything before the point;
- once a purge committed, every in-memory copy of the room (this process's and, through the
  `on_purged` listeners wired by the app, the other processes') is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from homeserver.core.ids import is_valid_event_id, is_valid_room_id
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.admin.room_tasks import RoomTaskRunner
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.state import RoomStateCache
from storage.account_data import AccountDataStore
from storage.admin_rooms import AdminRoomQueries
from storage.database import Database
from storage.directory import DirectoryStore
from storage.events import EventStore
from storage.federation_rooms import FederationRoomStore
from storage.push import PushActionStore
from storage.receipts import ReceiptStore
from storage.rooms import RoomStore

logger = logging.getLogger(__name__)

PURGE_HISTORY = "purge_history"


class RoomPurger:
    def __init__(self, db: Database, events: EventService, event_store: EventStore, rooms: RoomStore,
                 directory: DirectoryStore, account_data: AccountDataStore, receipts: ReceiptStore,
                 push_actions: PushActionStore, federation_rooms: FederationRoomStore, server_name: str,
                 push_settled: Callable[[Iterable[str]], Awaitable[None]]) -> None:
        """`push_settled(room_ids)` returns once the push actions of the rooms' events
        published so far are written (UnreadCounts.settled)."""
        self._db = db
        self._push_settled = push_settled
        self._events = events
        self._event_store = event_store
        self._rooms = rooms
        self._directory = directory
        self._account_data = account_data
        self._receipts = receipts
        self._push_actions = push_actions
        self._federation_rooms = federation_rooms
        self._server_name = server_name
        self._listeners: list[Callable[[str], None]] = []

    def on_purged(self, listener: Callable[[str], None]) -> None:
        """Call `listener(room_id)` after a purge committed: drop what you hold of the room."""
        self._listeners.append(listener)

    async def purge_room(self, room_id: str, departed: Sequence[tuple[str, str]] = ()) -> int:
        """Remove every trace of the room but what the /sync of local users who left it
        (`departed`: user ID, departure event ID) needs to show them leaving: their departures
        and their membership history. Returns how many events went."""
        async with self._events.room_lock(room_id):
            await self._push_settled([room_id])
            async with self._db.transaction():
                await self._push_actions.delete_room(room_id)
                await self._receipts.delete_room(room_id)
                await self._account_data.delete_room(room_id)
                await self._federation_rooms.delete_room(room_id)
                await self._directory.remove_room(room_id)
                deleted = await self._event_store.delete_room(room_id, [event_id for _, event_id in departed],
                                                              [user_id for user_id, _ in departed])
                await self._rooms.delete_room(room_id)
        self._purged(room_id)
        logger.info("purged room %s: %d events deleted", room_id, deleted)
        return deleted

    async def purge_history(self, room_id: str, before_depth: int, delete_local_events: bool) -> int:
        """Remove the room's history below `before_depth`; returns how many events went."""
        async with self._events.room_lock(room_id):
            await self._push_settled([room_id])
            async with self._db.transaction():
                deleted = await self._event_store.purge_history(room_id, before_depth, self._server_name,
                                                                delete_local_events)
                await self._push_actions.delete_for_events(deleted)
        self._purged(room_id)
        logger.info("purged the history of %s below depth %d: %d events deleted", room_id, before_depth,
                    len(deleted))
        return len(deleted)

    def _purged(self, room_id: str) -> None:
        for listener in self._listeners:
            try:
                listener(room_id)
            except Exception:  # one cache failing to forget must not stop the others
                logger.exception("could not drop cached data of purged room %s", room_id)


class PurgeHistoryService:
    """POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}] and its status."""

    def __init__(self, purger: RoomPurger, tasks: RoomTaskRunner, rooms: RoomStateCache, event_store: EventStore,
                 queries: AdminRoomQueries, audit: AdminAuditLog) -> None:
        self._purger = purger
        self._tasks = tasks
        self._rooms = rooms
        self._event_store = event_store
        self._queries = queries
        self._audit = audit

    async def start(self, admin_id: str, room_id: str, event_id: str | None, body: dict[str, Any]) -> str:
        """Check the request, start the purge in the background; returns its purge_id."""
        if not is_valid_room_id(room_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{room_id} is not a legal room ID")
        delete_local = body.get("delete_local_events", False)
        if not isinstance(delete_local, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'delete_local_events' must be a boolean")
        if await self._rooms.snapshot(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if event_id is None:
            event_id = body.get("purge_up_to_event_id")
        if event_id is not None:
            if not is_valid_event_id(event_id):
                raise MatrixError(400, Codes.INVALID_PARAM, "'purge_up_to_event_id' must be an event ID")
            row = await self._event_store.get_event(event_id)
            if row is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
            if row.room_id != room_id:
                raise MatrixError(400, Codes.INVALID_PARAM, "Event is for wrong room.")
            depth = row.depth
        elif "purge_up_to_ts" in body:
            ts = body["purge_up_to_ts"]
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise MatrixError(400, Codes.BAD_JSON, "purge_up_to_ts must be an int")
            found = await self._queries.event_received_before(room_id, ts)
            if found is None:
                raise MatrixError(404, Codes.NOT_FOUND, "there is no event to be purged")
            event_id, depth = found
        else:
            raise MatrixError(400, Codes.BAD_JSON, "must specify purge_up_to_event_id or purge_up_to_ts")
        extremities = await self._queries.forward_extremities(room_id)
        if extremities and max(e.depth for e in extremities) < depth:
            # Keep the room's newest events: the next event must have prev_events to point at.
            raise MatrixError(400, Codes.INVALID_PARAM, "topological_ordering is greater than forward extremities")

        async def work(_task_id: str) -> None:
            await self._purger.purge_history(room_id, depth, delete_local)

        params = {"event_id": event_id, "depth": depth, "delete_local_events": delete_local}
        purge_id = await self._tasks.start(PURGE_HISTORY, room_id, params, admin_id, work)
        await self._audit.record(admin_id, "room.purge_history", room_id, purge_id=purge_id, **params)
        return purge_id

    async def status(self, purge_id: str) -> dict[str, Any]:
        task = await self._tasks.get(purge_id)
        if task is None or task.kind != PURGE_HISTORY:
            raise MatrixError(404, Codes.NOT_FOUND, f"purge id '{purge_id}' not found")
        status = self._tasks.effective_status(task)
        body: dict[str, Any] = {"status": status if status in ("complete", "failed") else "active"}
        error = self._tasks.error_of(task)
        if error is not None:
            body["error"] = error
        return body

    async def wait(self, purge_id: str) -> None:
        await self._tasks.wait(purge_id)
