"""The deprecated snapshots: GET /initialSync (every room of the user) and
GET /rooms/{roomId}/initialSync (one room; also how a user peeks into a world-readable room).

Spec: client-server/old_sync.yaml and room_initial_sync.yaml. Each room carries its newest
`limit` events the user may see (`messages`: `start` pages back with /messages, `end` is a
/sync and /events token), its state, and the user's room account data (tags among it). A room
the user left shows what they saw when they left: the events and state up to their departure,
no presence or receipts. Presence is in the legacy form (`content.user_id`), events in the
"client v1" form (`legacy_stream.client_v1`).
"""

from __future__ import annotations

from typing import Any

from homeserver.core.room_versions import RoomVersion
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.rooms.timeline import topo_token
from homeserver.services.sync.legacy_stream import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    client_v1,
    is_world_readable,
    legacy_presence,
)
from homeserver.services.sync.sync import SyncService, SyncToken
from storage.account_data import AccountDataRow, AccountDataStore
from storage.events import EventRow, EventStore
from storage.state import StateStore
from storage.sync import RoomMembershipAt, SyncQueries


class InitialSyncService:
    def __init__(self, queries: SyncQueries, events: EventStore, state: StateStore, rooms: RoomStateCache,
                 formatter: EventFormatter, sync: SyncService, directory: DirectoryService,
                 account_data: AccountDataStore, receipts: ReceiptService, presence: PresenceService) -> None:
        self._queries = queries
        self._events = events
        self._state = state
        self._rooms = rooms
        self._format = formatter
        self._sync = sync
        self._directory = directory
        self._account_data = account_data
        self._receipts = receipts
        self._presence = presence

    async def initial_sync(self, requester: Requester, *, limit: int = DEFAULT_LIMIT,
                           archived: bool = False) -> dict[str, Any]:
        """GET /initialSync: the rooms the user is joined or invited to (and left, with
        `archived`), the presence of those they share rooms with, their account data."""
        user_id = requester.user_id
        limit = max(0, min(limit, MAX_LIMIT))
        upto = self._sync.current_token()
        memberships = await self._queries.memberships_at(user_id, upto.events)
        wanted = ("join", "invite", "leave") if archived else ("join", "invite")
        account_rows = await self._account_data.changed(user_id, None, upto.aux)
        rooms: list[dict[str, Any]] = []
        joined: list[str] = []
        for room_id, membership in memberships.items():
            if membership.membership not in wanted:
                continue
            room: dict[str, Any] = {"room_id": room_id, "membership": membership.membership,
                                    "visibility": await self._directory.visibility(room_id)}
            if membership.membership == "invite":
                room["inviter"] = membership.sender
                invite = await self._events.get_event(membership.event_id)
                snap = await self._rooms.snapshot(room_id)
                if invite is not None and snap is not None:
                    room["invite"] = (await self._formatted([invite], snap.version, requester))[0]
            else:
                if membership.membership == "join":
                    joined.append(room_id)
                room.update(await self._room_view(requester, room_id, membership, upto, limit))
                room["account_data"] = _room_account_data(account_rows, room_id)
            rooms.append(room)
        presence = [legacy_presence(e) for e in await self._presence.presence_events(user_id, None, upto.aux)
                    if e["content"].get("presence") != "offline"]
        receipts = await self._receipts.ephemeral_events(user_id, joined, None, upto.aux)
        return {
            "rooms": rooms,
            "presence": presence,
            "account_data": [{"type": r.type, "content": r.content} for r in account_rows
                             if not r.room_id and r.type != "m.push_rules"],
            "receipts": [{**event, "room_id": r} for r, event in receipts.items()],
            "end": str(upto),
        }

    async def room_initial_sync(self, requester: Requester, room_id: str, *,
                                limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """GET /rooms/{roomId}/initialSync: a member's (or a former member's) view of the room,
        or a peek into a world-readable room by anyone else (403 otherwise)."""
        user_id = requester.user_id
        limit = max(0, min(limit, MAX_LIMIT))
        upto = self._sync.current_token()
        membership = (await self._queries.memberships_at(user_id, upto.events)).get(room_id)
        current = membership.membership if membership else None
        peeking = current not in ("join", "leave")
        if peeking and not await is_world_readable(self._rooms, room_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room and it is not world-readable")
        view = await self._room_view(requester, room_id, None if peeking else membership, upto, limit)
        out: dict[str, Any] = {"room_id": room_id, **view}
        if peeking:
            del out["membership"]  # a peeker has none
        if current == "leave":
            out["presence"], out["receipts"] = [], []
        else:
            members = await self._queries.joined_members(room_id)
            out["presence"] = [legacy_presence(e) for e in await self._presence.current_states(members)]
            receipts = await self._receipts.ephemeral_events(user_id, [room_id], None, upto.aux)
            out["receipts"] = [{**event, "room_id": r} for r, event in receipts.items()]
        account_rows = await self._account_data.changed(user_id, None, upto.aux)
        out["account_data"] = _room_account_data(account_rows, room_id)
        return out

    # --- internals ---------------------------------------------------------------------------

    async def _room_view(self, requester: Requester, room_id: str, membership: RoomMembershipAt | None,
                         upto: SyncToken, limit: int) -> dict[str, Any]:
        """`messages` and `state`: now for a member or a peeker (`membership` None), at their
        departure for a former member."""
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        left = membership is not None and membership.membership == "leave"
        end = membership.stream_ordering if left and membership is not None else upto.events
        rows = await self._queries.recent_events(room_id, after=0, upto=end, limit=limit) if limit else []
        visibility = await self._format.visibility(room_id, requester.user_id)
        rows = self._format.visible(rows, visibility, requester.user_id)
        end_token = str(SyncToken(end, upto.aux, upto.typing))
        if left and membership is not None:
            leave = await self._events.get_event(membership.event_id)
            ids = await self._state.state_ids(leave.state_after) if leave and leave.state_after else {}
        else:
            ids = snap.state
        found = await self._events.get_events(list(ids.values()))
        state_rows = [found[i] for i in ids.values() if i in found]
        return {
            "membership": "leave" if left else "join",
            "messages": {
                "chunk": await self._formatted(rows, snap.version, requester),
                "start": topo_token(rows[0].depth, rows[0].stream_ordering) if rows else end_token,
                "end": end_token,
            },
            "state": await self._formatted(state_rows, snap.version, requester),
        }

    async def _formatted(self, rows: list[EventRow], version: RoomVersion, requester: Requester) -> list[dict[str, Any]]:
        # The "client v1" format, no bundled aggregations: a deprecated API (as Synapse serves it).
        return [client_v1(e) for e in await self._format.format_events(rows, version, requester, bundle=False)]


def _room_account_data(rows: list[AccountDataRow], room_id: str) -> list[dict[str, Any]]:
    return [{"type": r.type, "content": r.content} for r in rows if r.room_id == room_id]
