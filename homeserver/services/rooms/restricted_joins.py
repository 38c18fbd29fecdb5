"""Restricted rooms (v8+, knock_restricted v10+): who may authorise a join, for a local join and
for a make_join from another server alike.

Spec: client-server API "Restricted rooms"; auth rule 5.3.5 (the authorising user's server
must be resident, the user must be in an allowed room, and the authoriser must be able to
invite). We can only vouch for memberships we can see: the allowed rooms this server is in.
"""

from __future__ import annotations

from homeserver.core import power_levels
from homeserver.errors import Codes, MatrixError
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.events import EventStore


class RestrictedJoins:
    def __init__(self, rooms: RoomStateCache, event_store: EventStore, server_name: str) -> None:
        self._rooms = rooms
        self._event_store = event_store
        self._server_name = server_name

    async def authoriser(self, snap: RoomSnapshot, user_id: str) -> str | None:
        """The local user who authorises `user_id`'s join, after checking the room's `allow`
        conditions; None when the join needs no authorisation (not restricted, or the user is
        invited or joined already). Raises 403 when the user is in none of the allowed rooms
        and 400 M_UNABLE_TO_GRANT_JOIN when no local user may invite."""
        rules = snap.version.auth
        keys = [("m.room.join_rules", ""), ("m.room.create", ""), ("m.room.power_levels", ""),
                ("m.room.member", user_id)]
        state = await self._rooms.state_events(snap, keys)
        join_rules = state.get(("m.room.join_rules", ""))
        join_rule = join_rules.content.get("join_rule") if join_rules else None
        restricted = (join_rule == "restricted" and rules.restricted_join_rule) or (
            join_rule == "knock_restricted" and rules.knock_restricted_join_rule)
        if not restricted:
            return None
        member = state.get(("m.room.member", user_id))
        if member is not None and member.content.get("membership") in ("invite", "join"):
            return None  # invited or already joined: the ordinary rules apply
        allow = join_rules.content.get("allow") if join_rules else None
        allowed_rooms = {entry.get("room_id") for entry in allow or []
                         if isinstance(entry, dict) and entry.get("type") == "m.room_membership"}
        user_rooms = set(await self._event_store.rooms_for_user(user_id, "join"))
        if not allowed_rooms & user_rooms:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of any of the rooms this room admits")
        invite_level = power_levels.invite_level(state)
        members = await self._event_store.members(snap.room_id)
        for candidate in sorted(u for u, m in members.items() if m == "join" and u.endswith(":" + self._server_name)):
            if power_levels.user_power_level(candidate, dict(state)) >= invite_level:
                return candidate
        raise MatrixError(400, Codes.UNABLE_TO_GRANT_JOIN, "No user of this server can authorise the join")
