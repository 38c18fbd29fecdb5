"""Rooms for server admins (Synapse's admin API: rooms.md and room_membership.md): the room
list, a room's details, members, state, messages and event context whatever the admin's own
membership, blocking, forward extremities, making a user room admin, and joining a local user
to a room. Deleting rooms is in room_deletion.py, purging history in purge.py.

Every change is recorded in the admin audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeserver.core import power_levels
from homeserver.core.ids import is_valid_room_id, is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from homeserver.services.rooms.timeline import Page, TimelineService
from storage.accounts import AccountStore
from storage.admin_rooms import ROOM_ORDERS, AdminRoomQueries
from storage.events import EventStore
from storage.rooms import RoomStore

DEFAULT_LIST_LIMIT = 100
# Paging values past this are no position in any list (and would overflow the database's integers).
MAX_PAGING = 2**31 - 1


class AdminRoomService:
    def __init__(self, queries: AdminRoomQueries, room_store: RoomStore, rooms: RoomStateCache,
                 event_store: EventStore, formatter: EventFormatter, timeline: TimelineService,
                 membership: MembershipService, events: EventService, directory: DirectoryService,
                 accounts: AccountStore, audit: AdminAuditLog, clock: Clock, server_name: str,
                 drop_cached: Callable[[str], None]) -> None:
        self._queries = queries
        self._room_store = room_store
        self._rooms = rooms
        self._event_store = event_store
        self._format = formatter
        self._timeline = timeline
        self._membership = membership
        self._events = events
        self._directory = directory
        self._accounts = accounts
        self._audit = audit
        self._clock = clock
        self._server_name = server_name
        # Drop every cached copy of a room (in this process and the others) after changing it
        # behind the event pipeline's back.
        self._drop_cached = drop_cached

    # --- reading -------------------------------------------------------------------------------

    async def list_rooms(self, *, offset: int, limit: int, order_by: str, direction: str, search_term: str | None,
                         public_rooms: bool | None, empty_rooms: bool | None) -> dict[str, Any]:
        """GET /_synapse/admin/v1/rooms: one page of every room, sorted and filtered."""
        for name, value in (("from", offset), ("limit", limit)):
            if not 0 <= value <= MAX_PAGING:
                raise MatrixError(400, Codes.INVALID_PARAM, f"Query parameter {name!r} must be a non-negative integer")
        if order_by not in ROOM_ORDERS:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"Query parameter 'order_by' must be one of [{', '.join(ROOM_ORDERS)}]")
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter 'dir' must be one of ['f', 'b']")
        if search_term == "":
            raise MatrixError(400, Codes.INVALID_PARAM, "search_term cannot be an empty string")
        rooms, total = await self._queries.page(order_by=order_by, backwards=direction == "b", search=search_term,
                                                public=public_rooms, empty=empty_rooms, offset=offset, limit=limit)
        body: dict[str, Any] = {"rooms": rooms, "offset": offset, "total_rooms": total}
        if offset + limit < total:
            body["next_batch"] = offset + limit
        if offset > 0:
            body["prev_batch"] = max(0, offset - limit)
        return body

    async def details(self, room_id: str) -> dict[str, Any]:
        row = await self._queries.details(room_id)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room not found")
        tombstone = row.pop("tombstone")
        replacement = tombstone.get("replacement_room") if isinstance(tombstone, dict) else None
        return {**row, "tombstoned": tombstone is not None,
                "replacement_room": replacement if isinstance(replacement, str) else None}

    async def members(self, room_id: str) -> dict[str, Any]:
        await self._known_room(room_id)
        members = await self._queries.joined_members(room_id)
        return {"members": members, "total": len(members)}

    async def state(self, requester: Requester, room_id: str, event_type: str | None) -> list[dict[str, Any]]:
        """The room's current state events (of one type when `event_type` is given)."""
        snap = await self._known_room(room_id)
        ids = [event_id for (t, _), event_id in sorted(snap.state.items()) if event_type in (None, t)]
        rows = await self._event_store.get_events(ids)
        return await self._format.format_events([rows[i] for i in ids if i in rows], snap.version, requester,
                                                bundle=False)

    async def messages(self, requester: Requester, room_id: str, *, from_token: str | None, to_token: str | None,
                       direction: str, limit: int, event_filter: dict[str, Any] | None) -> Page:
        """The room's /messages as a member would see them, for an admin who need not be one."""
        return await self._timeline.messages(requester, room_id, from_token=from_token, to_token=to_token,
                                             direction=direction, limit=limit, event_filter=event_filter,
                                             as_admin=True)

    async def context(self, requester: Requester, room_id: str, event_id: str, limit: int,
                      lazy_load_members: bool) -> dict[str, Any]:
        if limit < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "'limit' must be a non-negative integer")
        return await self._timeline.context(requester, room_id, event_id, limit, lazy_load_members, as_admin=True)

    async def block_status(self, room_id: str) -> dict[str, Any]:
        _check_room_id(room_id)
        blocked_by = await self._room_store.blocked_by(room_id)
        return {"block": True, "user_id": blocked_by} if blocked_by is not None else {"block": False}

    async def forward_extremities(self, room_id_or_alias: str) -> dict[str, Any]:
        room_id = await self._resolve(room_id_or_alias)
        await self._known_room(room_id)
        rows = await self._queries.forward_extremities(room_id)
        return {"count": len(rows), "results": [
            {"event_id": r.event_id, "state_group": r.state_group, "depth": r.depth, "received_ts": r.received_ts}
            for r in rows]}

    # --- changing ------------------------------------------------------------------------------

    async def set_blocked(self, admin_id: str, room_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT .../block: a blocked room takes no more local joins, invites or knocks. A room
        may be blocked before this server knows it."""
        _check_room_id(room_id)
        if "block" not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing params: ['block']")
        block = body["block"]
        if not isinstance(block, bool):
            raise MatrixError(400, Codes.BAD_JSON, "Param 'block' must be a boolean.")
        if block:
            await self._room_store.block(room_id, admin_id, self._clock.now_ms())
        else:
            await self._room_store.unblock(room_id)
        await self._audit.record(admin_id, "room.block" if block else "room.unblock", room_id)
        return {"block": block}

    async def delete_forward_extremities(self, admin_id: str, room_id_or_alias: str) -> dict[str, Any]:
        """Keep only the newest forward extremity: the room's next event has one prev event."""
        room_id = await self._resolve(room_id_or_alias)
        await self._known_room(room_id)
        async with self._events.room_lock(room_id):
            deleted = await self._event_store.delete_extremities_but_newest(room_id)
        self._drop_cached(room_id)
        await self._audit.record(admin_id, "room.delete_forward_extremities", room_id, deleted=deleted)
        return {"deleted": deleted}

    async def make_room_admin(self, admin_id: str, room_id_or_alias: str, body: dict[str, Any]) -> None:
        """Give `user_id` (the admin by default) the power of the room's most powerful local
        member, through a power-levels event sent as that member; invite the user when they
        are not in the room and it is not public (as Synapse)."""
        user_id = body.get("user_id", admin_id)
        if not isinstance(user_id, str) or not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "'user_id' must be a valid user ID")
        room_id = await self._resolve(room_id_or_alias)
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(400, Codes.UNKNOWN, "Server not in room")
        state = await self._rooms.state_events(snap, [("m.room.create", ""), ("m.room.power_levels", ""),
                                                      ("m.room.join_rules", ""), ("m.room.member", user_id)])
        granter = await self._most_powerful_local_member(snap, state)
        levels = state.get(("m.room.power_levels", ""))
        content = dict(levels.content) if levels is not None else {}
        users = dict(content.get("users") or {})
        # The granter's own level; 100 for a creator, who has no entry from v12 on.
        users[user_id] = users.get(granter, 100)
        content["users"] = users
        try:
            await self._events.send(room_id, granter, "m.room.power_levels", content, state_key="")
        except MatrixError as err:
            if err.status != 403:
                raise
            raise MatrixError(400, Codes.UNKNOWN,
                              "No local admin user in room with power to update power levels.") from None
        await self._audit.record(admin_id, "room.make_room_admin", room_id, user_id=user_id, granted_by=granter)
        member = state.get(("m.room.member", user_id))
        join_rules = state.get(("m.room.join_rules", ""))
        if member is not None and member.content.get("membership") in ("join", "invite"):
            return
        if join_rules is not None and join_rules.content.get("join_rule") == "public":
            return
        await self._membership.invite(granter, room_id, user_id, ratelimited=False)

    async def join_user(self, admin_id: str, room_id_or_alias: str, body: dict[str, Any],
                        servers: list[str]) -> str:
        """POST /_synapse/admin/v1/join/{roomIdOrAlias}: join a local user to a room, invited by
        the admin first when the room is not public. Returns the room ID."""
        if "user_id" not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing params: ['user_id']")
        user_id = body["user_id"]
        if not isinstance(user_id, str) or not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "'user_id' must be a valid user ID")
        if server_name_of(user_id) != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "This endpoint can only be used with local users")
        if not await self._accounts.user_exists(user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")
        if room_id_or_alias.startswith("#"):
            room_id, alias_servers = await self._directory.room_and_servers(room_id_or_alias)
            servers = servers + alias_servers
        else:
            room_id = await self._resolve(room_id_or_alias)
        snap = await self._rooms.snapshot(room_id)
        if snap is not None:
            state = await self._rooms.state_events(snap, [("m.room.join_rules", ""), ("m.room.member", user_id)])
            join_rules = state.get(("m.room.join_rules", ""))
            member = state.get(("m.room.member", user_id))
            already = member is not None and member.content.get("membership") in ("join", "invite")
            if join_rules is not None and join_rules.content.get("join_rule") != "public" and not already:
                await self._membership.invite(admin_id, room_id, user_id, ratelimited=False)
        await self._membership.join(user_id, room_id, servers=servers, ratelimited=False)
        await self._audit.record(admin_id, "room.join_user", room_id, user_id=user_id)
        return room_id

    # --- internals -----------------------------------------------------------------------------

    async def _known_room(self, room_id: str) -> RoomSnapshot:
        snap = await self._rooms.snapshot(room_id) if is_valid_room_id(room_id) else None
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room not found")
        return snap

    async def _resolve(self, room_id_or_alias: str) -> str:
        room_id = await self._directory.room_id_for(room_id_or_alias)
        _check_room_id(room_id)
        return room_id

    async def _most_powerful_local_member(self, snap: RoomSnapshot, state: dict) -> str:
        """The joined local user of highest power: who may grant power in the room."""
        levels = state.get(("m.room.power_levels", ""))
        create = state.get(("m.room.create", ""))
        candidates: set[str] = set()
        if levels is not None and isinstance(levels.content.get("users"), dict):
            candidates.update(u for u in levels.content["users"] if isinstance(u, str))
        if levels is None or (create is not None and create.room_version.auth.privileged_room_creators):
            candidates.update(power_levels.creators(state))  # no levels event, or v12: creators hold power
        local = [u for u in candidates if server_name_of(u) == self._server_name]
        members = await self._rooms.state_events(snap, [("m.room.member", u) for u in local])
        joined = [u for u in local if (m := members.get(("m.room.member", u))) is not None
                  and m.content.get("membership") == "join"]
        if not joined:
            raise MatrixError(400, Codes.UNKNOWN, "No local admin user in room")
        return max(sorted(joined), key=lambda u: power_levels.user_power_level(u, state))


def _check_room_id(room_id: str) -> None:
    if not is_valid_room_id(room_id):
        raise MatrixError(400, Codes.INVALID_PARAM, f"{room_id} is not a legal room ID")
