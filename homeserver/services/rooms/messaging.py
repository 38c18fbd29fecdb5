"""Sending into rooms for clients: messages, state events and redactions.

Invariants: a (device, room, transaction ID) produces at most one event, even when the
client retries concurrently (checked under the room's lock); a state event identical to the
current one is not sent again (its ID is returned, as Synapse does); a redaction is sent only
by the original sender or a user with the room's redact power level.
"""

from __future__ import annotations

from typing import Any

from homeserver.core import power_levels
from homeserver.core.ids import is_valid_user_id
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.rooms.directory import DirectoryService
from homeserver.services.rooms.events import EventService, TxnRef
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.rooms.state import RoomStateCache
from storage.events import EventStore

MAX_TYPE_LENGTH = 255
MUTUAL_ROOMS_PAGE = 100
MAX_STATE_KEY_LENGTH = 255


class MessagingService:
    def __init__(self, events: EventService, store: EventStore, rooms: RoomStateCache, directory: DirectoryService,
                 membership: MembershipService, *, limiter: RateLimiter) -> None:
        self._membership = membership
        self._limiter = limiter
        self._events = events
        self._directory = directory
        self._store = store
        self._rooms = rooms

    async def send_message(self, requester: Requester, room_id: str, event_type: str, txn_id: str | None,
                           content: dict[str, Any], *, origin_server_ts: int | None = None) -> str:
        """Without a transaction ID (Synapse's POST form) every call sends a new event.
        `origin_server_ts`: an appservice's bridged timestamp (the `ts` parameter)."""
        _check_type(event_type)
        await self._limiter.check_message(requester.user_id, is_admin=requester.is_admin)
        txn = TxnRef(requester.user_id, requester.device_id or "", txn_id) if txn_id is not None else None
        event = await self._events.send(room_id, requester.user_id, event_type, content, txn=txn,
                                        txn_check=self._store.event_for_txn if txn is not None else None,
                                        origin_server_ts=origin_server_ts)
        return event.event_id

    async def send_state(self, requester: Requester, room_id: str, event_type: str, state_key: str,
                         content: dict[str, Any], *, origin_server_ts: int | None = None) -> str:
        _check_type(event_type)
        if len(state_key.encode()) > MAX_STATE_KEY_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, f"state_key is longer than {MAX_STATE_KEY_LENGTH} bytes")
        if event_type == "m.room.member":
            # Membership has its own endpoints, which check what the auth rules cannot.
            membership = content.get("membership")
            if not isinstance(membership, str):
                raise MatrixError(400, Codes.BAD_JSON, "m.room.member content needs a 'membership'")
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if event_type == "m.room.canonical_alias" and state_key == "":
            await self._directory.check_canonical_alias_content(room_id, content)
        current = await self._rooms.state_events(snap, [(event_type, state_key)])
        same = current.get((event_type, state_key))
        if same is not None and same.sender == requester.user_id and same.content == content:
            return same.event_id
        await self._limiter.check_message(requester.user_id, is_admin=requester.is_admin)
        joining = False
        if event_type == "m.room.member":
            # A join or an invite by state event is limited as through its own endpoint.
            was = same.content.get("membership") if same is not None else None
            if content["membership"] == "join" and state_key == requester.user_id and was != "join":
                await self._limiter.check_join(requester.user_id, room_id, remote=False)
                joining = True
            elif content["membership"] == "invite" and was != "invite":
                await self._limiter.check_invite(room_id, state_key, requester.user_id)
        event = await self._events.send(room_id, requester.user_id, event_type, content, state_key=state_key,
                                        origin_server_ts=origin_server_ts)
        if joining:
            self._limiter.joined(room_id)
        if event_type == "m.room.guest_access" and state_key == "" and content.get("guest_access") != "can_join" \
                and not await self._events.is_shadow_banned(requester.user_id):  # its event went nowhere
            guests = await self._store.joined_local_guests(room_id)
            if guests:
                await self._membership.remove_guests(room_id, guests)
        return event.event_id

    async def redact(self, requester: Requester, room_id: str, event_id: str, txn_id: str, reason: str | None) -> str:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        target = await self._store.get_event(event_id)
        if target is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        if target.room_id != room_id:
            raise MatrixError(400, Codes.INVALID_PARAM, "Cannot redact an event of another room")
        if target.sender != requester.user_id:
            state = await self._rooms.state_events(snap, [("m.room.create", ""), ("m.room.power_levels", "")])
            if power_levels.user_power_level(requester.user_id, state) < power_levels.redact_level(state):
                raise MatrixError(403, Codes.FORBIDDEN, "You don't have permission to redact events")
        await self._limiter.check_message(requester.user_id, is_admin=requester.is_admin,
                                          admin_redaction=target.sender != requester.user_id)
        content: dict[str, Any] = {}
        if reason is not None:
            content["reason"] = reason
        txn = TxnRef(requester.user_id, requester.device_id or "", txn_id)
        event = await self._events.send(room_id, requester.user_id, "m.room.redaction", content,
                                        redacts=event_id, txn=txn, txn_check=self._store.event_for_txn)
        return event.event_id

    async def joined_rooms(self, user_id: str) -> list[str]:
        return await self._store.rooms_for_user(user_id, "join")

    async def mutual_rooms(self, requester: Requester, other_id: str | None, from_token: str | None,
                           ) -> tuple[list[str], int, str | None]:
        """The rooms the requester and `other_id` are both joined to: one page, the total and
        the token of the next page (None at the end)."""
        if other_id is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "'user_id' is required")
        if not is_valid_user_id(other_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "The user ID provided was invalid")
        if other_id == requester.user_id:
            raise MatrixError(400, Codes.INVALID_PARAM, "You cannot ask for the rooms you share with yourself")
        if from_token is not None and not from_token.startswith("!"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid 'from' token")
        rooms, total, more = await self._store.mutual_rooms(requester.user_id, other_id, from_token,
                                                            MUTUAL_ROOMS_PAGE)
        return rooms, total, rooms[-1] if more else None


def _check_type(event_type: str) -> None:
    if not event_type or len(event_type.encode()) > MAX_TYPE_LENGTH:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Event type must be 1-{MAX_TYPE_LENGTH} bytes")
