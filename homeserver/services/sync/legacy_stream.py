"""The deprecated event stream: GET /events (also peeking into a world-readable room with
`room_id`) and GET /events/{eventId}.

Spec: client-server/old_sync.yaml and peeking_events.yaml. A stream token is a /sync token
(`SyncToken`), so a token from /sync, /initialSync or a room initialSync's `messages.end` can
start an /events stream and the reverse. The stream carries, in (from, now]: the room events
of the user's joined rooms (oldest first, at most `limit`; `end` then stops at the last one)
and their own member events elsewhere (an invite, a kick), history visibility applied; the
presence of users sharing a room with them; typing and receipts of those rooms (with
`room_id`); and their account data (room entries with `room_id`). A peeker (a user not in a
world-readable room) gets that room's events, its members' presence, its typing and receipts.

Long-polls wait on the notifier: under the user's ID, or under the room's ID while peeking
(the room's events, typing and receipts wake that key). Events in the stream have the legacy
presence format: `content.user_id`, no `sender`; room events have the "client v1" format
(`client_v1`), as Synapse gives them.
"""

from __future__ import annotations

import time
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.streams.notifier import Notifier
from homeserver.services.sync.sync import MAX_TIMEOUT_MS, SyncService, SyncToken
from storage.account_data import AccountDataStore
from storage.events import EventRow, EventStore
from storage.sync import SyncQueries

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


# Keys of `unsigned` that the deprecated APIs also put at the top of an event.
V1_COPIED_KEYS = ("age", "redacted_because", "replaces_state", "prev_content", "invite_room_state",
                  "knock_room_state")


def client_v1(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the deprecated APIs serve it (Synapse's "client v1" format, which sytest
    reads): the client format plus `user_id` (the sender) and some `unsigned` keys on top."""
    out = {**event, "user_id": event["sender"]}
    unsigned = event.get("unsigned") or {}
    for key in V1_COPIED_KEYS:
        if key in unsigned:
            out[key] = unsigned[key]
    return out


def legacy_presence(event: dict[str, Any]) -> dict[str, Any]:
    """A /sync m.presence event in the deprecated APIs' form: the user ID in the content."""
    return {"type": "m.presence", "content": {**event["content"], "user_id": event["sender"]}}


async def is_world_readable(rooms: RoomStateCache, room_id: str) -> bool:
    snap = await rooms.snapshot(room_id)
    if snap is None:
        return False
    found = (await rooms.state_events(snap, [("m.room.history_visibility", "")])).get(("m.room.history_visibility", ""))
    return found is not None and found.content.get("history_visibility") == "world_readable"


class EventStreamService:
    def __init__(self, queries: SyncQueries, events: EventStore, rooms: RoomStateCache, formatter: EventFormatter,
                 sync: SyncService, notifier: Notifier, account_data: AccountDataStore, receipts: ReceiptService,
                 typing: TypingService, presence: PresenceService) -> None:
        self._queries = queries
        self._events = events
        self._rooms = rooms
        self._format = formatter
        self._sync = sync
        self._notifier = notifier
        self._account_data = account_data
        self._receipts = receipts
        self._typing = typing
        self._presence = presence

    async def events(self, requester: Requester, *, from_token: str | None, timeout_ms: int,
                     room_id: str | None = None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """GET /events: what happened since `from_token` (now, without one), waiting up to
        `timeout_ms` for something when nothing has."""
        user_id = requester.user_id
        peeking = False
        if room_id is None:
            if requester.is_guest:
                raise MatrixError(400, Codes.MISSING_PARAM, "Guests must give a room_id to peek into")
        elif await self._membership(room_id, user_id) != "join":
            if not await is_world_readable(self._rooms, room_id):
                raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room and it is not world-readable")
            peeking = True
        if not requester.is_guest:
            await self._presence.on_sync(user_id, None)
        limit = min(limit, MAX_LIMIT) if limit > 0 else DEFAULT_LIMIT
        since = SyncToken.parse(from_token) if from_token else self._sync.current_token()
        start = str(since)
        key = room_id if peeking and room_id is not None else user_id
        deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        while True:
            upto = self._sync.current_token()
            # A token from the future (a restored database) reads from now on.
            since = SyncToken(min(since.events, upto.events), min(since.aux, upto.aux), since.typing)
            chunk, end = await self._build(requester, since, upto, room_id, peeking, limit)
            remaining = deadline - time.monotonic()
            if chunk or remaining <= 0:
                return {"chunk": chunk, "start": start, "end": str(end)}
            future = self._notifier.register(key)
            if self._sync.current_token() != upto:  # something landed while we were building
                self._notifier.notify_users([key])
            await self._notifier.wait(key, future, remaining)

    async def get_event(self, requester: Requester, event_id: str) -> dict[str, Any]:
        """GET /events/{eventId}: one event of any room, if the user may see it."""
        row = await self._events.get_event(event_id)
        if row is None or row.rejected_reason or row.stream_ordering is None or row.outlier:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        visibility = await self._format.visibility(row.room_id, requester.user_id)
        if not self._format.visible([row], visibility, requester.user_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You may not see this event")
        return (await self._formatted([row], requester))[0]

    # --- internals ---------------------------------------------------------------------------

    async def _membership(self, room_id: str, user_id: str) -> str | None:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return None
        event = (await self._rooms.state_events(snap, [("m.room.member", user_id)])).get(("m.room.member", user_id))
        return event.content.get("membership") if event else None

    async def _build(self, requester: Requester, since: SyncToken, upto: SyncToken, room_id: str | None,
                     peeking: bool, limit: int) -> tuple[list[dict[str, Any]], SyncToken]:
        user_id = requester.user_id
        if room_id is not None:
            rooms = [room_id]
        else:
            now = await self._queries.memberships_at(user_id, upto.events)
            rooms = [r for r, m in now.items() if m.membership == "join"]
        chunk: list[dict[str, Any]] = []
        end_events = upto.events
        if since.events < upto.events:
            rows = await self._queries.stream_events(rooms, None if peeking else user_id, after=since.events,
                                                     upto=upto.events, limit=limit + 1)
            if len(rows) > limit:
                rows = rows[:limit]
                end_events = rows[-1].stream_ordering or end_events
            visible = await self._visible(rows, user_id)
            chunk += await self._formatted(visible, requester)
            chunk += await self._presence_of_joiners(visible, user_id)
        if since.aux < upto.aux:
            if peeking and room_id is not None:
                members = await self._queries.joined_members(room_id)
                presence = await self._presence.presence_of_users(members, since.aux, upto.aux)
            else:
                presence = await self._presence.presence_events(user_id, since.aux, upto.aux)
            chunk += [legacy_presence(e) for e in presence]
            receipts = await self._receipts.ephemeral_events(user_id, rooms, since.aux, upto.aux)
            chunk += [{**event, "room_id": r} for r, event in receipts.items()]
            if not peeking:
                for row in await self._account_data.changed(user_id, since.aux, upto.aux):
                    if row.type == "m.push_rules" and not row.room_id:
                        continue  # push rules have their own endpoints, as in Synapse's stream
                    entry: dict[str, Any] = {"type": row.type, "content": row.content}
                    if row.room_id:
                        entry["room_id"] = row.room_id
                    chunk.append(entry)
        if since.typing != upto.typing:
            typing = self._typing.typing_events(rooms, since.typing, upto.typing)
            chunk += [{**event, "room_id": r} for r, event in typing.items()]
        return chunk, SyncToken(end_events, upto.aux, upto.typing)

    async def _visible(self, rows: list[EventRow], user_id: str) -> list[EventRow]:
        by_room: dict[str, list[EventRow]] = {}
        for row in rows:
            by_room.setdefault(row.room_id, []).append(row)
        keep: set[str] = set()
        for room_id, room_rows in by_room.items():
            visibility = await self._format.visibility(room_id, user_id)
            keep.update(r.event_id for r in self._format.visible(room_rows, visibility, user_id))
        return [r for r in rows if r.event_id in keep]

    async def _formatted(self, rows: list[EventRow], requester: Requester) -> list[dict[str, Any]]:
        """Client-format events of several rooms, in the order given."""
        by_room: dict[str, list[EventRow]] = {}
        for row in rows:
            by_room.setdefault(row.room_id, []).append(row)
        out: dict[str, dict[str, Any]] = {}
        for room_id, room_rows in by_room.items():
            snap = await self._rooms.snapshot(room_id)
            if snap is None:
                continue
            for row, event in zip(room_rows, await self._format.format_events(room_rows, snap.version, requester)):
                out[row.event_id] = client_v1(event)
        return [out[r.event_id] for r in rows if r.event_id in out]

    async def _presence_of_joiners(self, rows: list[EventRow], user_id: str) -> list[dict[str, Any]]:
        """A join in the stream brings the presence it makes visible (as Synapse sends it): on
        the user's own join, everyone in the room; on another's, theirs."""
        users: list[str] = []
        for row in rows:
            if row.type != "m.room.member" or row.pdu.get("content", {}).get("membership") != "join":
                continue
            if row.state_key == user_id:
                users += await self._queries.joined_members(row.room_id)
            elif row.state_key:
                users.append(row.state_key)
        if not users:
            return []
        return [legacy_presence(e) for e in await self._presence.current_states(users)]
