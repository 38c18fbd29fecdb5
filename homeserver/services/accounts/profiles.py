"""Profiles: display name, avatar and custom fields (spec: "Profiles", v1.16+ custom fields).

Changing the display name or avatar also updates the user's m.room.member event in every
room they are joined to, as clients read names from member events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from federation.client import FederationClient, FederationError, client_error
from homeserver.core.ids import server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import USER_SUSPENDED, AccountRestrictions, Requester
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.rooms.events import EventService
from homeserver.services.rooms.state import RoomStateCache
from storage.events import EventStore
from storage.profiles import ProfileStore

logger = logging.getLogger(__name__)

MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000  # as Synapse
LEGACY_FIELDS = ("displayname", "avatar_url")
# Spec (profile): the whole profile must stay within 64 KiB.
MAX_PROFILE_BYTES = 65536
MAX_KEY_BYTES = 255


class ProfileService:
    def __init__(self, profiles: ProfileStore, events: EventService, event_store: EventStore,
                 rooms: RoomStateCache, server_name: str, federation: FederationClient | None = None, *,
                 limiter: RateLimiter, restrictions: AccountRestrictions | None = None) -> None:
        self._limiter = limiter
        self._restrictions = restrictions
        self._federation = federation
        self._profiles = profiles
        self._events = events
        self._event_store = event_store
        self._rooms = rooms
        self._server_name = server_name

    async def get_profile(self, user_id: str, *, ask_remote: bool = True) -> dict[str, Any]:
        """A user's profile; another server's user is asked for over federation, unless
        `ask_remote` is false (answering a peer: we only speak for our own users)."""
        if not user_id.endswith(":" + self._server_name):
            if not ask_remote:
                raise MatrixError(404, Codes.NOT_FOUND, "Not a user of this server")
            return await self._remote_profile(user_id)
        row = await self._profiles.get_profile(user_id)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        profile: dict[str, Any] = dict(row.fields)
        if row.displayname is not None:
            profile["displayname"] = row.displayname
        if row.avatar_url is not None:
            profile["avatar_url"] = row.avatar_url
        return profile

    async def _remote_profile(self, user_id: str) -> dict[str, Any]:
        """Ask the user's server (GET /_matrix/federation/v1/query/profile)."""
        server = server_name_of(user_id)
        if self._federation is None or server is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        try:
            body = await self._federation.get_json(server, "/_matrix/federation/v1/query/profile",
                                                   query={"user_id": user_id})
        except FederationError as err:
            raise client_error(err) from None
        if not isinstance(body, dict):
            raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a malformed profile")
        profile = {k: v for k, v in body.items() if isinstance(k, str)}
        for key in ("displayname", "avatar_url"):
            if key in profile and not isinstance(profile[key], str):
                del profile[key]
        return profile

    async def get_field(self, user_id: str, key: str, *, ask_remote: bool = True) -> dict[str, Any]:
        profile = await self.get_profile(user_id, ask_remote=ask_remote)
        if key not in profile:
            if key in LEGACY_FIELDS:
                # As Synapse (and sytest, which reads a new user's avatar_url before setting
                # it): the two historical fields of an existing profile answer null when
                # unset. The spec's 404 stays for other keys and unknown users.
                return {key: None}
            raise MatrixError(404, Codes.NOT_FOUND, f"The profile has no {key!r}")
        return {key: profile[key]}

    async def set_field(self, requester: Requester, user_id: str, key: str, body: dict[str, Any]) -> None:
        """Profile changes count as messages (rc_message), as Synapse counts them: each one
        rewrites the user's member event in every joined room."""
        await self._check_owner(requester, user_id, key)
        _check_key(key)
        await self._limiter.check_message(requester.user_id, is_admin=requester.is_admin)
        if key not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, f"The body must contain {key!r}")
        value = body[key]
        if key == "displayname":
            if value is not None and (not isinstance(value, str) or len(value) > MAX_DISPLAYNAME_LENGTH):
                raise MatrixError(400, Codes.BAD_JSON, f"displayname must be a string of at most {MAX_DISPLAYNAME_LENGTH} characters")
            await self._profiles.set_displayname(user_id, value or None)
        elif key == "avatar_url":
            # Any string, as Synapse takes it: the spec says an MXC URI, but clients only
            # ever read it back, and sytest sets a plain string.
            if value is not None and (not isinstance(value, str) or len(value) > MAX_AVATAR_URL_LENGTH):
                raise MatrixError(400, Codes.BAD_JSON, f"avatar_url must be a string of at most {MAX_AVATAR_URL_LENGTH} characters")
            await self._profiles.set_avatar_url(user_id, value or None)
        else:
            current = await self.get_profile(user_id)
            current[key] = value
            if len(orjson.dumps(current)) > MAX_PROFILE_BYTES:
                raise MatrixError(400, "M_PROFILE_TOO_LARGE", "The profile would exceed 64 KiB")
            await self._profiles.set_field(user_id, key, value)
            return
        await self._update_member_events(requester, user_id)

    async def delete_field(self, requester: Requester, user_id: str, key: str) -> None:
        await self._check_owner(requester, user_id, key)
        _check_key(key)
        await self._limiter.check_message(requester.user_id, is_admin=requester.is_admin)
        if key == "displayname":
            await self._profiles.set_displayname(user_id, None)
        elif key == "avatar_url":
            await self._profiles.set_avatar_url(user_id, None)
        else:
            await self._profiles.delete_field(user_id, key)
            return
        await self._update_member_events(requester, user_id)

    async def _check_owner(self, requester: Requester, user_id: str, key: str) -> None:
        if requester.user_id != user_id and not requester.is_admin:
            raise MatrixError(403, Codes.FORBIDDEN, "You cannot change another user's profile")
        if requester.is_guest and key != "displayname":
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guests may only change their display name")
        if self._restrictions is not None and await self._restrictions.is_suspended(requester.user_id):
            raise MatrixError(403, USER_SUSPENDED, "You cannot change your profile while suspended")

    async def _update_member_events(self, requester: Requester, user_id: str) -> None:
        if self._restrictions is not None and await self._restrictions.is_shadow_banned(requester.user_id):
            # As Synapse: a shadow-banned user's new name reaches no room (they see it in
            # their profile only).
            await self._restrictions.shadow_ban_delay()
            return
        row = await self._profiles.get_profile(user_id)
        rooms = await self._event_store.rooms_for_user(user_id, "join")
        await asyncio.gather(*(self._update_room(user_id, room_id, row) for room_id in rooms))

    async def _update_room(self, user_id: str, room_id: str, row) -> None:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return
        current = (await self._rooms.state_events(snap, [("m.room.member", user_id)])).get(("m.room.member", user_id))
        if current is None or current.content.get("membership") != "join":
            return
        content = {k: v for k, v in current.content.items() if k not in ("displayname", "avatar_url")}
        if row.displayname is not None:
            content["displayname"] = row.displayname
        if row.avatar_url is not None:
            content["avatar_url"] = row.avatar_url
        if content == current.content:
            return
        try:
            await self._events.send(room_id, user_id, "m.room.member", content, state_key=user_id)
        except MatrixError as err:  # e.g. a room where member events need more power
            logger.info("profile change not applied in %s: %s", room_id, err.message)


def _check_key(key: str) -> None:
    if not key:
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid profile key")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise MatrixError(400, "M_KEY_TOO_LARGE", f"Profile keys are at most {MAX_KEY_BYTES} bytes")
