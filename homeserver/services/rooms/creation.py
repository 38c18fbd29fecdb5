"""Creating rooms: the same initial events Synapse creates, in the same order.

Order (as Synapse's room creation): m.room.create, the creator's join, m.room.power_levels,
m.room.canonical_alias (with room_alias_name), m.room.join_rules, m.room.history_visibility,
m.room.guest_access (presets that allow guests), `initial_state`, then m.room.name,
m.room.topic and the invites. The whole room is stored in one transaction: a failure leaves
no trace of it.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from homeserver.core.ids import is_valid_user_id
from homeserver.core.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import AccountRestrictions
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.membership import BLOCKED_ROOM
from homeserver.services.rooms.profile_lookup import ProfileLookup
from storage.database import Database
from storage.directory import DirectoryStore
from storage.rooms import RoomStore


@dataclass(frozen=True)
class Preset:
    join_rule: str
    history_visibility: str
    original_invitees_have_ops: bool
    guest_can_join: bool
    power_level_content_override: dict[str, Any]


# https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3createroom (preset)
PRESETS = {
    "private_chat": Preset("invite", "shared", False, True, {"invite": 0}),
    "trusted_private_chat": Preset("invite", "shared", True, True, {"invite": 0}),
    "public_chat": Preset("public", "shared", False, False, {}),
}


def default_power_levels(creator: str, version: RoomVersion) -> dict[str, Any]:
    users: dict[str, int] = {}
    if not version.auth.privileged_room_creators:
        # From v12 creators have infinite power and must not be listed.
        users[creator] = 100
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50,
        "historical": 100,
    }


class RoomService:
    def __init__(
        self, db: Database, rooms: RoomStore, directory_store: DirectoryStore, directory: DirectoryService,
        events: EventService, profiles: ProfileLookup, clock: Clock, server_name: str, *, limiter: RateLimiter,
    ) -> None:
        self._db = db
        self._limiter = limiter
        self._rooms = rooms
        self._directory_store = directory_store
        self._directory = directory
        self._events = events
        self._profiles = profiles
        self._clock = clock
        self._server_name = server_name

    async def create_room(self, creator: str, body: dict[str, Any], *, room_id: str | None = None,
                          ratelimited: bool = True, app_service_id: str | None = None) -> str:
        """`POST /createRoom`; returns the new room's ID. `room_id`: one chosen beforehand (a
        room upgrade names its replacement in the old room's tombstone first). Limited per
        creator (rc_room_creation; `ratelimited=False` for rooms the server makes itself)."""
        version = _room_version(body.get("room_version"))
        visibility = body.get("visibility", "private")
        if visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'visibility' must be 'public' or 'private'")
        preset_name = body.get("preset") or ("public_chat" if visibility == "public" else "private_chat")
        preset = PRESETS.get(preset_name)
        if preset is None:
            raise MatrixError(400, Codes.BAD_JSON, f"'{preset_name}' is not a valid preset")
        invites = _string_list(body, "invite")
        for user_id in invites:
            if not is_valid_user_id(user_id):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user ID to invite: {user_id}")
        if body.get("invite_3pid"):
            raise MatrixError(400, Codes.UNRECOGNIZED, "Third-party invites are not supported")
        if ratelimited and not self._limiter.allows_at_once(Action.INVITE_PER_ROOM, len(invites)):
            # As Synapse: more invites than rc_invites.per_room lets through at once.
            raise MatrixError(400, Codes.UNKNOWN, "Cannot invite so many users at once")
        if invites and await self._events.is_shadow_banned(creator):
            # As Synapse: the room is made, the invites silently are not (after a pause).
            await AccountRestrictions.shadow_ban_delay()
            invites = []
        is_direct = body.get("is_direct", False)
        if not isinstance(is_direct, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'is_direct' must be a boolean")
        creation_content = _object(body, "creation_content")
        pl_override = _object(body, "power_level_content_override")
        initial_state = _initial_state(body.get("initial_state", []))
        name, topic = body.get("name"), body.get("topic")
        if name is not None and not isinstance(name, str):
            raise MatrixError(400, Codes.BAD_JSON, "'name' must be a string")
        if topic is not None and not isinstance(topic, str):
            raise MatrixError(400, Codes.BAD_JSON, "'topic' must be a string")
        alias_name = body.get("room_alias_name")
        alias = None
        if alias_name is not None:
            if not isinstance(alias_name, str) or not alias_name or ":" in alias_name:
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid room_alias_name")
            alias = self._directory.check_local_alias(f"#{alias_name}:{self._server_name}")
            self._directory.check_alias_claim(alias, creator, app_service_id)
            if await self._directory_store.get_alias(alias) is not None:
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")

        if ratelimited:
            await self._limiter.check(Action.ROOM_CREATION, creator, user_id=creator)

        # m.room.create
        create_content = {k: v for k, v in creation_content.items() if k not in ("creator", "room_version")}
        create_content["room_version"] = version.identifier
        if not version.auth.implicit_room_creator:
            create_content["creator"] = creator
        if version.auth.privileged_room_creators and preset.original_invitees_have_ops and invites:
            # v12: "ops" for the original invitees of a trusted chat means making them creators.
            create_content["additional_creators"] = sorted(set(invites) - {creator})

        if version.auth.room_id_from_create_event:
            room_id = None
        elif room_id is None:
            room_id = self.new_room_id()
        pending = self._events.new_room(room_id, version)
        append = self._events.append
        await append(pending, creator, "m.room.create", create_content, state_key="")
        room_id = pending.work.room_id

        join_content: dict[str, Any] = {"membership": "join"}
        join_content.update(await self._profiles.member_profile(creator))
        await append(pending, creator, "m.room.member", join_content, state_key=creator)

        if ("m.room.power_levels", "") in initial_state:
            await append(pending, creator, "m.room.power_levels", initial_state.pop(("m.room.power_levels", "")), state_key="")
        else:
            levels = default_power_levels(creator, version)
            if preset.original_invitees_have_ops and not version.auth.privileged_room_creators:
                for invitee in invites:
                    levels["users"][invitee] = 100
            levels.update(preset.power_level_content_override)
            levels.update(pl_override)
            await append(pending, creator, "m.room.power_levels", levels, state_key="")

        if alias is not None and ("m.room.canonical_alias", "") not in initial_state:
            await append(pending, creator, "m.room.canonical_alias", {"alias": alias}, state_key="")
        if ("m.room.join_rules", "") not in initial_state:
            await append(pending, creator, "m.room.join_rules", {"join_rule": preset.join_rule}, state_key="")
        if ("m.room.history_visibility", "") not in initial_state:
            await append(pending, creator, "m.room.history_visibility",
                         {"history_visibility": preset.history_visibility}, state_key="")
        if preset.guest_can_join and ("m.room.guest_access", "") not in initial_state:
            await append(pending, creator, "m.room.guest_access", {"guest_access": "can_join"}, state_key="")
        for (event_type, state_key), content in initial_state.items():
            await append(pending, creator, event_type, content, state_key=state_key)
        if name is not None:
            await append(pending, creator, "m.room.name", {"name": name}, state_key="")
        if topic is not None:
            await append(pending, creator, "m.room.topic", {"topic": topic}, state_key="")
        for invitee in invites:
            content = {"membership": "invite"}
            if is_direct:
                content["is_direct"] = True
            content.update(await self._profiles.member_profile(invitee))
            await append(pending, creator, "m.room.member", content, state_key=invitee)

        now = self._clock.now_ms()

        async def room_rows() -> None:
            if await self._rooms.blocked_by(room_id) is not None:
                raise MatrixError(403, Codes.FORBIDDEN, BLOCKED_ROOM)
            if not await self._rooms.create_room(room_id, version.identifier, creator, now):
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room ID already in use")
            if alias is not None and not await self._directory_store.create_alias(alias, room_id, creator, now):
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
            if visibility == "public":
                await self._directory_store.set_published(room_id, True, now)

        await self._events.commit(pending, before_persist=room_rows)
        return room_id

    def new_room_id(self) -> str:
        opaque = "".join(secrets.choice(string.ascii_letters) for _ in range(18))
        return f"!{opaque}:{self._server_name}"


def _room_version(value: Any) -> RoomVersion:
    if value is None:
        return KNOWN_ROOM_VERSIONS[DEFAULT_ROOM_VERSION]
    if not isinstance(value, str):  # a number is bad JSON, not an unknown version (as Synapse says)
        raise MatrixError(400, Codes.BAD_JSON, "'room_version' must be a string")
    if value not in KNOWN_ROOM_VERSIONS:
        raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, f"Unsupported room version {value!r}")
    return KNOWN_ROOM_VERSIONS[value]


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a list of strings")
    return list(dict.fromkeys(value))


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be an object")
    return dict(value)


def _initial_state(value: Any) -> dict[tuple[str, str], dict[str, Any]]:
    if not isinstance(value, list):
        raise MatrixError(400, Codes.BAD_JSON, "'initial_state' must be a list")
    state: dict[tuple[str, str], dict[str, Any]] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not isinstance(item.get("content"), dict):
            raise MatrixError(400, Codes.BAD_JSON, "initial_state entries need a string 'type' and an object 'content'")
        state_key = item.get("state_key", "")
        if not isinstance(state_key, str):
            raise MatrixError(400, Codes.BAD_JSON, "'state_key' must be a string")
        if item["type"] in ("m.room.create", "m.room.member"):
            raise MatrixError(400, Codes.BAD_JSON, f"{item['type']} cannot be part of initial_state")
        state[(item["type"], state_key)] = item["content"]
    return state
