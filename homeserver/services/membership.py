"""Membership: join, leave, invite, kick, ban, unban, knock — each one m.room.member event.

Whether a change is allowed is decided by the room version's auth rules on the event itself
(403 M_FORBIDDEN otherwise); this service only checks what the rules cannot see (the room
exists here, the target is a valid user ID) and fills in the member event's content.
Joining rooms on other servers arrives with federation.
"""

from __future__ import annotations

from typing import Any

from homeserver.core.ids import is_valid_user_id
from homeserver.errors import Codes, MatrixError
from homeserver.services.events import EventService
from homeserver.services.profile_lookup import ProfileLookup
from homeserver.services.room_state import RoomStateCache
from storage.rooms import RoomStore

MAX_REASON_LENGTH = 1024


class MembershipService:
    def __init__(self, events: EventService, rooms: RoomStateCache, profiles: ProfileLookup, room_store: RoomStore) -> None:
        self._events = events
        self._room_store = room_store
        self._rooms = rooms
        self._profiles = profiles

    async def join(self, user_id: str, room_id: str, reason: str | None = None) -> str:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            # A room we do not know could only be joined through another server.
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers to join this room through")
        content: dict[str, Any] = {"membership": "join"}
        content.update(await self._profiles.member_profile(user_id))
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
