"""Membership: join, leave, invite, kick, ban, unban, knock — each one m.room.member event.

Whether a change is allowed is decided by the room version's auth rules on the event itself
(403 M_FORBIDDEN otherwise); this service only checks what the rules cannot see (the room
exists here, the target is a valid user ID) and fills in the member event's content.
Joining rooms on other servers arrives with federation.
"""

from __future__ import annotations

from typing import Any

from homeserver.core import power_levels
from homeserver.core.ids import is_valid_user_id
from homeserver.errors import Codes, MatrixError
from homeserver.services.events import EventService
from homeserver.services.profile_lookup import ProfileLookup
from homeserver.services.room_state import RoomStateCache
from storage.events import EventStore
from storage.rooms import RoomStore

MAX_REASON_LENGTH = 1024


class MembershipService:
    def __init__(self, events: EventService, rooms: RoomStateCache, profiles: ProfileLookup, room_store: RoomStore,
                 event_store: EventStore, server_name: str) -> None:
        self._events = events
        self._room_store = room_store
        self._event_store = event_store
        self._server_name = server_name
        self._rooms = rooms
        self._profiles = profiles

    async def join(self, user_id: str, room_id: str, reason: str | None = None, *, is_guest: bool = False) -> str:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            # A room we do not know could only be joined through another server.
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers to join this room through")
        if is_guest:
            # Spec (Guest access, server behaviour): only rooms whose guest_access is can_join.
            access = (await self._rooms.state_events(snap, [("m.room.guest_access", "")])).get(("m.room.guest_access", ""))
            if access is None or access.content.get("guest_access") != "can_join":
                raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is not allowed in this room")
        content: dict[str, Any] = {"membership": "join"}
        content.update(await self._profiles.member_profile(user_id))
        authoriser = await self._restricted_join_authoriser(snap, user_id)
        if authoriser is not None:
            content["join_authorised_via_users_server"] = authoriser
        event_id = await self._change(user_id, room_id, user_id, content, reason)
        await self._room_store.unforget(user_id, room_id)
        return event_id

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> str:
        await self._require_room(room_id)
        return await self._change(user_id, room_id, user_id, {"membership": "leave"}, reason)

    async def invite(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        await self._require_room(room_id)
        _check_target(target)
        content: dict[str, Any] = {"membership": "invite"}
        content.update(await self._profiles.member_profile(target))
        return await self._change(sender, room_id, target, content, reason)

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        snap = await self._require_room(room_id)
        _check_target(target)
        current = snap.state.get(("m.room.member", target))
        membership = await self._membership_of(snap, target) if current else None
        if membership not in ("join", "invite", "knock"):
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not in the room")
        return await self._change(sender, room_id, target, {"membership": "leave"}, reason)

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        await self._require_room(room_id)
        _check_target(target)
        return await self._change(sender, room_id, target, {"membership": "ban"}, reason)

    async def unban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> str:
        snap = await self._require_room(room_id)
        _check_target(target)
        if await self._membership_of(snap, target) != "ban":
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not banned")
        return await self._change(sender, room_id, target, {"membership": "leave"}, reason)

    async def knock(self, user_id: str, room_id: str, reason: str | None = None) -> str:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers to knock through")
        if not snap.version.auth.knock_join_rule:
            raise MatrixError(403, Codes.FORBIDDEN, f"Room version {snap.version.identifier} does not support knocking")
        content: dict[str, Any] = {"membership": "knock"}
        content.update(await self._profiles.member_profile(user_id))
        return await self._change(user_id, room_id, user_id, content, reason)

    async def leave_all_rooms(self, user_id: str) -> None:
        for membership in ("join", "invite", "knock"):
            for room_id in await self._event_store.rooms_for_user(user_id, membership):
                try:
                    await self._events.send(room_id, user_id, "m.room.member", {"membership": "leave"}, state_key=user_id)
                except MatrixError:
                    pass  # e.g. the room refuses the leave; the account is deactivated regardless

    async def remove_guests(self, room_id: str, guests: list[str]) -> None:
        """guest_access stopped being can_join: guests must leave (spec: Guest access)."""
        for guest in guests:
            try:
                await self._events.send(room_id, guest, "m.room.member", {"membership": "leave"}, state_key=guest)
            except MatrixError:
                pass  # already gone

    async def forget(self, user_id: str, room_id: str) -> None:
        """Spec: a user may forget a room they are not in (left, kicked or banned)."""
        snap = await self._require_room(room_id)
        membership = await self._membership_of(snap, user_id)
        if membership is None:
            raise MatrixError(404, Codes.NOT_FOUND, "You have never been in this room")
        if membership in ("join", "invite", "knock"):
            raise MatrixError(400, Codes.UNKNOWN, "You must leave the room before forgetting it")
        await self._room_store.forget(user_id, room_id)

    async def membership_of(self, room_id: str, user_id: str) -> str | None:
        snap = await self._rooms.snapshot(room_id)
        return await self._membership_of(snap, user_id) if snap else None

    # --- internals ---------------------------------------------------------------------------

    async def _restricted_join_authoriser(self, snap, user_id: str) -> str | None:
        """For a restricted room (v8+; knock_restricted v10+), the local user who authorises
        the join, after checking the `allow` conditions; None when no authorisation is needed.

        Spec: client-server API, "Restricted rooms"; auth rule 5.3.5.
        """
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
            levels = dict(state)
            if power_levels.user_power_level(candidate, levels) >= invite_level:
                return candidate
        raise MatrixError(400, Codes.UNABLE_TO_GRANT_JOIN, "No user of this server can authorise the join")

    async def _require_room(self, room_id: str):
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return snap

    async def _membership_of(self, snap, user_id: str) -> str | None:
        events = await self._rooms.state_events(snap, [("m.room.member", user_id)])
        event = events.get(("m.room.member", user_id))
        return event.content.get("membership") if event else None

    async def _change(self, sender: str, room_id: str, target: str, content: dict[str, Any], reason: str | None) -> str:
        if reason is not None:
            if not isinstance(reason, str):
                raise MatrixError(400, Codes.BAD_JSON, "'reason' must be a string")
            if len(reason) > MAX_REASON_LENGTH:
                raise MatrixError(400, Codes.TOO_LARGE, "'reason' is too long")
            content["reason"] = reason
        event = await self._events.send(room_id, sender, "m.room.member", content, state_key=target)
        return event.event_id


def _check_target(user_id: Any) -> None:
    if not isinstance(user_id, str) or not is_valid_user_id(user_id):
        raise MatrixError(400, Codes.INVALID_PARAM, "'user_id' must be a valid user ID")
