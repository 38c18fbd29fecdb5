"""Room upgrades: POST /rooms/{roomId}/upgrade (spec: "Room Upgrades"), as Synapse does them.

The old room gets an m.room.tombstone naming its replacement; the new room (the new version,
preset private_chat) starts with the old room's important state (join rules, name, topic,
history visibility, guest access, avatar, encryption, server ACLs, power levels), its bans and
its canonical alias, and its create event names the predecessor (with the tombstone's ID,
except in versions whose room ID is the create event's hash: the tombstone names a room that
must exist first). The upgrading user gets the power to send all that in the new room for the
time of the copy; afterwards the new room gets the old power levels back. Local aliases and
the room directory entry move to the new room; in the old room, inviting and talking need at
least moderator power from then on.

A user's own state about the room (tags, room push rules, m.direct) lives above rooms/: the
services that own it register `on_user_moved` listeners, called for the upgrading user now
and for any other local member when they join the replacement room.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.core import power_levels
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import AccountRestrictions, Requester
from homeserver.services.clock import Clock
from homeserver.services.rooms.creation import RoomService
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.state import RoomStateCache
from storage.directory import DirectoryStore

# The state that moves to the replacement room (Synapse's list).
COPIED_STATE = ("m.room.join_rules", "m.room.name", "m.room.topic", "m.room.history_visibility",
                "m.room.guest_access", "m.room.avatar", "m.room.encryption", "m.room.server_acl",
                "m.room.power_levels")
# (user_id, old_room_id, new_room_id)
UserMovedListener = Callable[[str, str, str], Awaitable[None]]


class RoomUpgradeService:
    def __init__(self, rooms: RoomService, events: EventService, room_state: RoomStateCache,
                 directory: DirectoryStore, clock: Clock) -> None:
        self._rooms = rooms
        self._events = events
        self._state = room_state
        self._directory = directory
        self._clock = clock
        self._listeners: list[UserMovedListener] = []

    def on_user_moved(self, listener: UserMovedListener) -> None:
        """Call `listener(user_id, old_room_id, new_room_id)` when a local user lands in a
        replacement room (the upgrader, or a member joining it later)."""
        self._listeners.append(listener)

    async def upgrade(self, requester: Requester, room_id: str, new_version: Any) -> str:
        """Replace the room with a new one of `new_version`; returns the new room's ID."""
        if not isinstance(new_version, str) or new_version not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, f"Unsupported room version {new_version!r}")
        version = KNOWN_ROOM_VERSIONS[new_version]
        user_id = requester.user_id
        snap = await self._state.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        keys = [(t, "") for t in (*COPIED_STATE, "m.room.create", "m.room.canonical_alias")]
        state = await self._state.state_events(snap, [*keys, ("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is None or member.content.get("membership") != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        # The tombstone decides: a user who may not send it may not upgrade (nothing is created).
        if power_levels.user_power_level(user_id, state) < power_levels.event_power_level("m.room.tombstone", "", state):
            raise MatrixError(403, Codes.FORBIDDEN, "You may not upgrade this room")
        if await self._events.is_shadow_banned(user_id):
            # As Synapse: nothing happens, the answer names a room that does not exist.
            await AccountRestrictions.shadow_ban_delay()
            return "!" + secrets.token_urlsafe(32) if version.auth.room_id_from_create_event \
                else self._rooms.new_room_id()

        old_create = state[("m.room.create", "")].content
        creation: dict[str, Any] = {"predecessor": {"room_id": room_id}}
        if old_create.get("m.federate") is False:
            creation["m.federate"] = False
        if "type" in old_create:
            creation["type"] = old_create["type"]
        initial = {t: dict(state[(t, "")].content) for t in COPIED_STATE if (t, "") in state}
        old_levels = initial.get("m.room.power_levels")
        if old_levels is not None:
            initial["m.room.power_levels"] = self._levels_for_the_copy(user_id, old_levels, version)
        body = {
            "room_version": new_version, "preset": "private_chat", "creation_content": creation,
            "visibility": "public" if await self._directory.is_published(room_id) else "private",
            "initial_state": [{"type": t, "state_key": "", "content": c} for t, c in initial.items()],
        }
        tombstone_content = {"body": "This room has been replaced"}
        if version.auth.room_id_from_create_event:
            new_room_id = await self._rooms.create_room(user_id, body)
            await self._events.send(room_id, user_id, "m.room.tombstone",
                                    {**tombstone_content, "replacement_room": new_room_id}, state_key="")
        else:
            new_room_id = self._rooms.new_room_id()
            tombstone = await self._events.send(room_id, user_id, "m.room.tombstone",
                                                {**tombstone_content, "replacement_room": new_room_id}, state_key="")
            creation["predecessor"]["event_id"] = tombstone.event_id
            await self._rooms.create_room(user_id, body, room_id=new_room_id)

        await self._copy_bans(user_id, room_id, new_room_id)
        await self._move_aliases(user_id, room_id, new_room_id, state.get(("m.room.canonical_alias", "")))
        if old_levels is not None:
            await self._restrict_old_room(user_id, room_id, old_levels)
            restored = self._without_creators(user_id, old_levels, version)
            if restored != initial["m.room.power_levels"]:
                await self._events.send(new_room_id, user_id, "m.room.power_levels", restored, state_key="")
        await self.user_moved(user_id, room_id, new_room_id)
        return new_room_id

    async def user_moved(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        for listener in self._listeners:
            await listener(user_id, old_room_id, new_room_id)

    async def member_joined(self, user_id: str, room_id: str) -> None:
        """A local user joined a room: if it replaced another, their state about it moves."""
        old_room_id = await self.predecessor(room_id)
        if old_room_id is not None:
            await self.user_moved(user_id, old_room_id, room_id)

    async def predecessor(self, room_id: str) -> str | None:
        """The room this one replaced (its create event's `predecessor`), if any."""
        snap = await self._state.snapshot(room_id)
        if snap is None:
            return None
        create = (await self._state.state_events(snap, [("m.room.create", "")])).get(("m.room.create", ""))
        predecessor = create.content.get("predecessor") if create is not None else None
        found = predecessor.get("room_id") if isinstance(predecessor, dict) else None
        return found if isinstance(found, str) else None

    # --- internals ---------------------------------------------------------------------------

    @staticmethod
    def _levels_for_the_copy(user_id: str, levels: dict[str, Any], version) -> dict[str, Any]:
        """The old power levels, with the upgrader raised to what sending the copied state
        needs (the highest of state_default, ban and the per-event levels)."""
        content = copy.deepcopy(levels)
        events = content.get("events") if isinstance(content.get("events"), dict) else {}
        needed = max([_int(content.get("state_default"), 50), _int(content.get("ban"), 50),
                      *(_int(v, 0) for v in events.values())])
        users = content.setdefault("users", {})
        if isinstance(users, dict) and _int(users.get(user_id, content.get("users_default", 0)), 0) < needed:
            users[user_id] = needed
        return RoomUpgradeService._without_creators(user_id, content, version)

    @staticmethod
    def _without_creators(user_id: str, levels: dict[str, Any], version) -> dict[str, Any]:
        """From v12 the creator's power is implicit and must not be listed."""
        if not version.auth.privileged_room_creators:
            return levels
        content = copy.deepcopy(levels)
        if isinstance(content.get("users"), dict):
            content["users"].pop(user_id, None)
        return content

    async def _restrict_old_room(self, user_id: str, room_id: str, levels: dict[str, Any]) -> None:
        content = copy.deepcopy(levels)
        restricted = max(_int(content.get("users_default"), 0) + 1, 50)
        changed = False
        for key in ("invite", "events_default"):
            if _int(content.get(key), 0) < restricted:
                content[key] = restricted
                changed = True
        if changed:
            try:
                await self._events.send(room_id, user_id, "m.room.power_levels", content, state_key="")
            except MatrixError:
                pass  # the upgrader may not change power levels there: the room stays as it was

    async def _copy_bans(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        snap = await self._state.snapshot(old_room_id)
        if snap is None:
            return
        members = await self._state.state_events(snap, [k for k in snap.state if k[0] == "m.room.member"])
        for (_, target), event in members.items():
            if event.content.get("membership") == "ban":
                await self._events.send(new_room_id, user_id, "m.room.member", dict(event.content), state_key=target)

    async def _move_aliases(self, user_id: str, old_room_id: str, new_room_id: str, canonical) -> None:
        now = self._clock.now_ms()
        for alias in await self._directory.aliases_of_room(old_room_id):
            row = await self._directory.get_alias(alias)
            if await self._directory.delete_alias(alias):
                await self._directory.create_alias(alias, new_room_id, row.creator if row else user_id, now)
        if await self._directory.is_published(old_room_id):
            await self._directory.set_published(old_room_id, False, now)
        if canonical is not None and (canonical.content.get("alias") or canonical.content.get("alt_aliases")):
            try:
                await self._events.send(old_room_id, user_id, "m.room.canonical_alias", {}, state_key="")
            except MatrixError:
                pass  # no power for it in the old room: the alias stays named there
            await self._events.send(new_room_id, user_id, "m.room.canonical_alias", dict(canonical.content),
                                    state_key="")


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default
