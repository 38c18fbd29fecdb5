"""Read receipts and read markers.

Receipts (`m.read`, `m.read.private`, threaded or not) are stored per (room, type, user,
thread) and only move forwards. They go out through /sync as the rooms' `m.receipt` ephemeral
event (a private receipt only to its owner), and they set where unread counts start.
The fully-read marker is the room's `m.fully_read` account data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from homeserver.core.ids import is_valid_event_id
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.streams.aux import AuxStream
from storage.events import EventStore
from storage.receipts import ReceiptRow, ReceiptStore

READ_RECEIPT_TYPES = ("m.read", "m.read.private")
MAIN_THREAD = "main"


class ReceiptService:
    def __init__(self, store: ReceiptStore, events: EventStore, membership: MembershipService,
                 account_data: AccountDataService, aux: AuxStream, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._membership = membership
        self._account_data = account_data
        self._aux = aux
        self._clock = clock
        # Set by the app: the user's read position moved (phone badges follow, via pushers).
        self.on_read: Callable[[str], None] | None = None
        # Set by the app: wraps each write of a user's read receipt in a room (the unread
        # counts kept in memory must not be read from the database meanwhile).
        self.read_moving: Callable[[str, str], AbstractContextManager[None]] = lambda _user, _room: nullcontext()
        self._receipt_listeners: list[Callable[[ReceiptRow], Awaitable[None]]] = []

    def on_receipt(self, listener: Callable[[ReceiptRow], Awaitable[None]]) -> None:
        """Call `listener(row)` after a local user's receipt moved (federation sends public ones)."""
        self._receipt_listeners.append(listener)

    async def post_receipt(self, requester: Requester, room_id: str, receipt_type: str, event_id: str,
                           body: dict[str, Any]) -> None:
        """POST /rooms/{roomId}/receipt/{receiptType}/{eventId}."""
        thread_id = body.get("thread_id")
        if thread_id is not None and (not isinstance(thread_id, str) or
                                      (thread_id != MAIN_THREAD and not is_valid_event_id(thread_id))):
            raise MatrixError(400, Codes.INVALID_PARAM, "'thread_id' must be 'main' or an event ID")
        if receipt_type == "m.fully_read":
            if thread_id is not None:
                raise MatrixError(400, Codes.INVALID_PARAM, "m.fully_read cannot be threaded")
            await self.set_read_markers(requester, room_id, {"m.fully_read": event_id})
            return
        if receipt_type not in READ_RECEIPT_TYPES:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unknown receipt type {receipt_type!r}")
        await self._receipt(requester.user_id, room_id, receipt_type, event_id, thread_id or "")

    async def set_read_markers(self, requester: Requester, room_id: str, body: dict[str, Any]) -> None:
        """POST /rooms/{roomId}/read_markers: the fully-read marker and optional receipts."""
        for key in ("m.fully_read", "m.read", "m.read.private"):
            value = body.get(key)
            if value is not None and not is_valid_event_id(value):
                raise MatrixError(400, Codes.INVALID_PARAM, f"{key!r} must be an event ID")
        fully_read = body.get("m.fully_read")
        user_id = requester.user_id
        if fully_read is not None:
            await self._event_in_room(user_id, room_id, fully_read)
            await self._account_data.put(user_id, room_id, "m.fully_read", {"event_id": fully_read})
        for receipt_type in READ_RECEIPT_TYPES:
            if body.get(receipt_type) is not None:
                await self._receipt(user_id, room_id, receipt_type, body[receipt_type], "")

    async def read_upto(self, user_id: str, room_ids: list[str] | None = None) -> dict[str, dict[str | None, int]]:
        """room -> thread key (None: unthreaded) -> stream ordering read up to."""
        return await self._store.read_upto(user_id, room_ids)

    async def ephemeral_events(self, user_id: str, room_ids: list[str], since: int | None,
                               upto: int) -> dict[str, dict[str, Any]]:
        """room -> its m.receipt event for a sync in (since, upto]."""
        if not room_ids:
            return {}
        by_room: dict[str, list[ReceiptRow]] = {}
        for row in await self._store.in_rooms(room_ids, since, upto):
            if row.receipt_type == "m.read.private" and row.user_id != user_id:
                continue
            by_room.setdefault(row.room_id, []).append(row)
        return {room_id: receipt_event(rows) for room_id, rows in by_room.items()}

    async def apply_remote(self, room_id: str, user_id: str, event_id: str, thread_id: str, ts: int) -> bool:
        """A public receipt of another server's user (from an m.receipt EDU; the caller checked
        that the user's server sent it and that they are in the room). Receipts on events we do
        not have are skipped: a receipt is placed by its event's position. True when stored."""
        row = await self._events.get_event(event_id)
        if row is None or row.room_id != room_id or row.outlier or row.rejected_reason:
            return False
        members = await self._events.members(room_id)
        wake = [u for u, m in members.items() if m == "join"] + [room_id]  # and peekers
        with self.read_moving(user_id, room_id):
            async with self._aux.write(wake) as position:
                return await self._store.put(room_id, "m.read", user_id, thread_id, event_id,
                                             row.stream_ordering or 0, ts, position)

    # --- internals ---------------------------------------------------------------------------

    async def _receipt(self, user_id: str, room_id: str, receipt_type: str, event_id: str, thread_id: str) -> None:
        row = await self._event_in_room(user_id, room_id, event_id)
        members = await self._events.members(room_id)
        wake = [u for u, m in members.items() if m == "join"] + [room_id] if receipt_type == "m.read" else [user_id]
        ts = self._clock.now_ms()
        with self.read_moving(user_id, room_id):
            async with self._aux.write(wake) as position:
                moved = await self._store.put(room_id, receipt_type, user_id, thread_id, event_id,
                                              row.stream_ordering or 0, ts, position)
        if moved and self.on_read is not None:
            self.on_read(user_id)
        if moved:
            receipt = ReceiptRow(room_id, receipt_type, user_id, thread_id, event_id, ts, position)
            for listener in self._receipt_listeners:
                await listener(receipt)

    async def _event_in_room(self, user_id: str, room_id: str, event_id: str):
        if await self._membership.membership_of(room_id, user_id) != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not joined to this room")
        row = await self._events.get_event(event_id)
        if row is None or row.room_id != room_id or row.outlier or row.rejected_reason:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown event")
        return row


def receipt_event(rows: list[ReceiptRow]) -> dict[str, Any]:
    """The m.receipt ephemeral event for a set of receipts."""
    content: dict[str, Any] = {}
    for row in rows:
        receipt: dict[str, Any] = {"ts": row.ts}
        if row.thread_id:
            receipt["thread_id"] = row.thread_id
        content.setdefault(row.event_id, {}).setdefault(row.receipt_type, {})[row.user_id] = receipt
    return {"type": "m.receipt", "content": content}
