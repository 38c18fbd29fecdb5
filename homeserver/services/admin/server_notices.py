"""Server notices (Synapse's): server admins message a user, from a system user, in a room of
the user's own that they cannot write in.

Use case: `send_notice` (POST/PUT /_synapse/admin/v1/send_server_notice). The system user
(`server_notices.system_mxid_localpart`) is created when first needed, without a password.
The user's notices room is a room they are invited to or joined where the system user is
joined; when they have none (they left it), a new one is made, as Synapse: a private room
named, described and pictured from the config, where users_default is -10 (the user may send
nothing), tagged `m.server_notice` in the user's account data; the user is invited (or, with
`auto_join`, joined). An existing room follows config changes (system user's display name
and avatar, room name, topic, avatar) before the notice goes in. The user cannot reject the
invitation (403 M_CANNOT_LEAVE_SERVER_NOTICE_ROOM); once joined they may leave.

Invariants: a user gets one new notices room at a time (rooms are found or made under a
lock of this process); a transaction ID (PUT) sends at most one notice per admin device and
notices room.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeserver.config import ServerNoticesConfig
from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.rooms.creation import RoomService
from homeserver.services.rooms.events import EventService, TxnRef
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.rooms.state import RoomStateCache
from storage.accounts import AccountStore
from storage.database import Database
from storage.events import EventStore
from storage.profiles import ProfileStore
from storage.server_notices import ServerNoticeQueries

logger = logging.getLogger(__name__)

SERVER_NOTICE_TAG = "m.server_notice"


class ServerNoticeService:
    def __init__(self, db: Database, config: ServerNoticesConfig | None, accounts: AccountStore,
                 profiles: ProfileStore, queries: ServerNoticeQueries, rooms: RoomService,
                 membership: MembershipService, events: EventService, event_store: EventStore,
                 room_state: RoomStateCache, account_data: AccountDataService, audit: AdminAuditLog, clock: Clock,
                 server_name: str) -> None:
        self._db = db
        self._config = config
        self._accounts = accounts
        self._profiles = profiles
        self._queries = queries
        self._rooms = rooms
        self._membership = membership
        self._events = events
        self._event_store = event_store
        self._room_state = room_state
        self._account_data = account_data
        self._audit = audit
        self._clock = clock
        self._server_name = server_name
        self.system_user_id = f"@{config.system_mxid_localpart}:{server_name}" if config else None
        self._room_lock = asyncio.Lock()

    async def send_notice(self, admin: Requester, body: dict[str, Any], txn_id: str | None = None) -> str:
        """Send `body["content"]` (as `body["type"]`, default m.room.message, a state event with
        `body["state_key"]`) to `body["user_id"]`'s notices room; the event ID."""
        config = self._config
        if config is None or self.system_user_id is None:
            raise MatrixError(400, Codes.UNKNOWN, "Server notices are not enabled on this server")
        missing = [name for name in ("user_id", "content") if name not in body]
        if missing:
            raise MatrixError(400, Codes.MISSING_PARAM, f"Missing params: {missing}")
        user_id, content = body["user_id"], body["content"]
        event_type, state_key = body.get("type", "m.room.message"), body.get("state_key")
        if not isinstance(content, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'content' must be an object")
        if not isinstance(event_type, str) or not event_type:
            raise MatrixError(400, Codes.BAD_JSON, "'type' must be a string")
        if state_key is not None and not isinstance(state_key, str):
            raise MatrixError(400, Codes.BAD_JSON, "'state_key' must be a string")
        if not isinstance(user_id, str) or not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "'user_id' is not a user ID")
        if server_name_of(user_id) != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Server notices can only be sent to local users")
        if user_id == self.system_user_id or not await self._accounts.user_exists(user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")

        async with self._room_lock:  # finding or making rooms (cheap) one at a time; sending is not
            room_id = await self._notice_room(config, self.system_user_id, user_id)
        txn = TxnRef(admin.user_id, admin.device_id, txn_id) if txn_id is not None else None
        if txn is not None and (sent := await self._event_store.event_for_txn(
                txn.user_id, txn.device_id, room_id, txn.txn_id)) is not None:
            return sent  # a retried PUT: the notice it sent
        event = await self._events.send(room_id, self.system_user_id, event_type, content, state_key=state_key,
                                        txn=txn, txn_check=self._event_store.event_for_txn if txn else None)
        logger.info("server notice %s sent to %s by %s", event.event_id, user_id, admin.user_id)
        await self._audit.record(admin.user_id, "server_notice.send", user_id, event_id=event.event_id,
                                 room_id=room_id)
        return event.event_id

    async def refuse_invite_rejection(self, user_id: str, room_id: str) -> None:
        """A MembershipService guard: the invitation to a notices room cannot be rejected."""
        if self.system_user_id is not None and await self._queries.is_joined(room_id, self.system_user_id):
            raise MatrixError(403, Codes.CANNOT_LEAVE_SERVER_NOTICE_ROOM, "You cannot reject this invite")

    # --- internals ---------------------------------------------------------------------------

    async def _notice_room(self, config: ServerNoticesConfig, system_id: str, user_id: str) -> str:
        await self._ensure_system_user(config, system_id)
        room_id = await self._queries.notice_room(user_id, system_id)
        if room_id is not None:
            await self._follow_config(config, system_id, room_id)
            return room_id
        body: dict[str, Any] = {"preset": "private_chat", "power_level_content_override": {"users_default": -10}}
        if config.room_name:
            body["name"] = config.room_name
        if config.room_topic:
            body["topic"] = config.room_topic
        if config.room_avatar_url:
            body["initial_state"] = [{"type": "m.room.avatar", "state_key": "", "content": {"url": config.room_avatar_url}}]
        room_id = await self._rooms.create_room(system_id, body)
        await self._account_data.put(user_id, room_id, "m.tag", {"tags": {SERVER_NOTICE_TAG: {}}})
        await self._membership.invite(system_id, room_id, user_id)
        if config.auto_join:
            await self._membership.join(user_id, room_id)
        logger.info("created the server notices room %s for %s", room_id, user_id)
        return room_id

    async def _ensure_system_user(self, config: ServerNoticesConfig, system_id: str) -> None:
        """Create the system user when it does not exist yet (no password: it never logs in);
        its profile (which its room joins carry) follows the configured name and avatar."""
        name, avatar = _system_profile(config)
        if not await self._accounts.user_exists(system_id):
            async with self._db.transaction():
                if await self._accounts.create_user(system_id, None, created_ts=self._clock.now_ms()):
                    await self._profiles.create_profile(system_id, name)
                    await self._profiles.set_avatar_url(system_id, avatar)
                    return
        profile = await self._profiles.get_profile(system_id)
        if profile is None:
            await self._profiles.create_profile(system_id, name)
        if profile is None or (profile.displayname, profile.avatar_url) != (name, avatar):
            await self._profiles.set_displayname(system_id, name)
            await self._profiles.set_avatar_url(system_id, avatar)

    async def _follow_config(self, config: ServerNoticesConfig, system_id: str, room_id: str) -> None:
        """Bring an existing notices room in line with the config, as Synapse does."""
        snap = await self._room_state.snapshot(room_id)
        if snap is None:
            return
        keys = [("m.room.member", system_id), ("m.room.name", ""), ("m.room.avatar", ""), ("m.room.topic", "")]
        state = await self._room_state.state_events(snap, keys)
        name, avatar = _system_profile(config)
        member = state.get(("m.room.member", system_id))
        if member is not None and (member.content.get("displayname"), member.content.get("avatar_url")) != (
                name, avatar):
            content = {"membership": "join", "displayname": name}
            if avatar:
                content["avatar_url"] = avatar
            await self._events.send(room_id, system_id, "m.room.member", content, state_key=system_id)
        for event_type, key, wanted in (("m.room.name", "name", config.room_name),
                                        ("m.room.avatar", "url", config.room_avatar_url),
                                        ("m.room.topic", "topic", config.room_topic)):
            current = state.get((event_type, ""))
            have = current.content.get(key) if current is not None else None
            if have != wanted and (have or wanted):
                await self._events.send(room_id, system_id, event_type, {key: wanted or ""}, state_key="")


def _system_profile(config: ServerNoticesConfig) -> tuple[str, str | None]:
    """The system user's display name (its localpart unless configured) and avatar."""
    return config.system_mxid_display_name or config.system_mxid_localpart, config.system_mxid_avatar_url
