"""EDUs received from other servers (the `edus` of a PUT /send transaction), applied so that
our users' /sync and sliding sync see them.

Use case: `FederationEduService.receive(origin, edus)`. Each EDU is checked on its own: its
shape (spec, server-server API: "Typing Notifications", "Receipts", "Presence", "Device
Management", "Send-to-device messaging", "Cross-signing keys"), that `origin` speaks for the
user (the user's server is the origin: a server cannot forge another server's users), and for
typing and receipts that the user is joined to the room. A bad EDU is logged and skipped; one
bad EDU never spoils the others, and nothing here raises.

A device-list or signing-key update goes to the cache of remote device lists
(e2ee.remote_devices) and marks the user's devices changed, so our users sharing a room with
them see `device_lists.changed` and re-query their keys.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.core.ids import is_valid_event_id, is_valid_room_id, is_valid_user_id, server_name_of
from homeserver.errors import MatrixError
from homeserver.services.e2ee.remote_devices import CachedRemoteKeys
from homeserver.services.ephemeral.presence import STATES as PRESENCE_STATES
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.to_device import DeviceListService, ToDeviceService
from homeserver.services.ephemeral.typing import TypingService
from storage.events import EventStore

logger = logging.getLogger(__name__)

# Spec ("Typing Notifications"): a server times out a remote user's typing itself; 30 s, as
# clients' own typing usually lasts.
REMOTE_TYPING_TIMEOUT_MS = 30_000
MAX_RECEIPT_EVENT_IDS = 10


class BadEdu(Exception):
    """An EDU we skip (malformed, or the origin may not speak for its user)."""


class FederationEduService:
    def __init__(self, events: EventStore, typing: TypingService, receipts: ReceiptService,
                 presence: PresenceService, to_device: ToDeviceService, device_lists: DeviceListService,
                 server_name: str, check_acl: Callable[[str, str], Awaitable[None]] | None = None,
                 remote_devices: CachedRemoteKeys | None = None) -> None:
        """`check_acl(room_id, origin)` raises (MatrixError 403) when the room's server ACL
        bans the origin: its typing and receipts in that room are then skipped (spec, "Server
        Access Control Lists": EDUs in a room are subject to the room's ACL)."""
        self._check_acl = check_acl
        self._events = events
        self._typing = typing
        self._receipts = receipts
        self._presence = presence
        self._to_device = to_device
        self._device_lists = device_lists
        self._remote_devices = remote_devices
        self._server_name = server_name
        self._handlers: dict[str, Callable[[str, dict[str, Any]], Awaitable[None]]] = {
            "m.typing": self._typing_edu,
            "m.receipt": self._receipt_edu,
            "m.presence": self._presence_edu,
            "m.device_list_update": self._device_list_edu,
            "m.signing_key_update": self._signing_key_edu,
            "m.direct_to_device": self._to_device_edu,
        }

    async def receive(self, origin: str, edus: list[Any]) -> None:
        """Apply a transaction's EDUs from `origin` (already authenticated by X-Matrix)."""
        if not isinstance(edus, list):
            logger.info("EDUs from %s: not a list, ignored", origin)
            return
        for edu in edus:
            edu_type = edu.get("edu_type") if isinstance(edu, dict) else None
            content = edu.get("content") if isinstance(edu, dict) else None
            handler = self._handlers.get(edu_type) if isinstance(edu_type, str) else None
            if handler is None:
                logger.debug("EDU of type %r from %s ignored", edu_type, origin)
                continue
            if not isinstance(content, dict):
                logger.info("%s EDU from %s without a content object, skipped", edu_type, origin)
                continue
            try:
                await handler(origin, content)
            except BadEdu as err:
                logger.info("%s EDU from %s skipped: %s", edu_type, origin, err)
            except Exception:  # a bug or a database error must not fail the whole transaction
                logger.exception("%s EDU from %s could not be applied", edu_type, origin)

    # --- per type ----------------------------------------------------------------------------

    async def _typing_edu(self, origin: str, content: dict[str, Any]) -> None:
        room_id, user_id, typing = content.get("room_id"), content.get("user_id"), content.get("typing")
        if not is_valid_room_id(room_id) or not isinstance(typing, bool):
            raise BadEdu("needs room_id and a boolean typing")
        self._check_origin(origin, user_id)
        await self._check_joined(room_id, user_id)
        await self._typing.apply_remote(room_id, user_id, typing, REMOTE_TYPING_TIMEOUT_MS if typing else 0)

    async def _receipt_edu(self, origin: str, content: dict[str, Any]) -> None:
        for room_id, by_type in content.items():
            if not is_valid_room_id(room_id) or not isinstance(by_type, dict):
                logger.info("receipt from %s: bad room entry %r skipped", origin, room_id)
                continue
            # Only public read receipts travel between servers; other types are ignored.
            by_user = by_type.get("m.read")
            if not isinstance(by_user, dict):
                continue
            for user_id, receipt in by_user.items():
                try:
                    await self._one_receipt(origin, room_id, user_id, receipt)
                except BadEdu as err:
                    logger.info("receipt from %s for %s in %s skipped: %s", origin, user_id, room_id, err)

    async def _one_receipt(self, origin: str, room_id: str, user_id: Any, receipt: Any) -> None:
        self._check_origin(origin, user_id)
        if not isinstance(receipt, dict):
            raise BadEdu("receipt is not an object")
        event_ids = receipt.get("event_ids")
        data = receipt.get("data")
        if not isinstance(event_ids, list) or not event_ids or len(event_ids) > MAX_RECEIPT_EVENT_IDS \
                or not all(is_valid_event_id(e) for e in event_ids) or not isinstance(data, dict):
            raise BadEdu("needs event_ids and data")
        ts = data.get("ts")
        thread_id = data.get("thread_id", "")
        if isinstance(ts, bool) or not isinstance(ts, int) or not isinstance(thread_id, str):
            raise BadEdu("data needs an integer ts and a string thread_id")
        await self._check_joined(room_id, user_id)
        for event_id in event_ids:
            await self._receipts.apply_remote(room_id, user_id, event_id, thread_id, ts)

    async def _presence_edu(self, origin: str, content: dict[str, Any]) -> None:
        push = content.get("push")
        if not isinstance(push, list):
            raise BadEdu("needs a push list")
        for update in push:
            if not isinstance(update, dict):
                continue
            user_id, state = update.get("user_id"), update.get("presence")
            last_active_ago = update.get("last_active_ago", 0)
            status_msg = update.get("status_msg")
            try:
                self._check_origin(origin, user_id)
                if state not in PRESENCE_STATES or isinstance(last_active_ago, bool) \
                        or not isinstance(last_active_ago, int) \
                        or (status_msg is not None and not isinstance(status_msg, str)):
                    raise BadEdu("bad presence, last_active_ago or status_msg")
            except BadEdu as err:
                logger.info("presence from %s for %r skipped: %s", origin, user_id, err)
                continue
            await self._presence.apply_remote(user_id, state, status_msg, last_active_ago,
                                              update.get("currently_active") is True)

    async def _device_list_edu(self, origin: str, content: dict[str, Any]) -> None:
        user_id, device_id = content.get("user_id"), content.get("device_id")
        self._check_origin(origin, user_id)
        if not isinstance(device_id, str):
            raise BadEdu("needs a device_id")
        if self._remote_devices is None or await self._remote_devices.on_device_list_update(user_id, content):
            await self._device_lists.mark_changed(user_id)

    async def _signing_key_edu(self, origin: str, content: dict[str, Any]) -> None:
        self._check_origin(origin, content.get("user_id"))
        if self._remote_devices is not None:
            await self._remote_devices.on_signing_key_update(content["user_id"], content)
        await self._device_lists.mark_changed(content["user_id"])

    async def _to_device_edu(self, origin: str, content: dict[str, Any]) -> None:
        sender, event_type = content.get("sender"), content.get("type")
        message_id, messages = content.get("message_id"), content.get("messages")
        self._check_origin(origin, sender)
        if not isinstance(event_type, str) or not isinstance(message_id, str) or not isinstance(messages, dict):
            raise BadEdu("needs type, message_id and messages")
        await self._to_device.deliver_remote(origin, sender, event_type, message_id, messages)

    # --- checks ------------------------------------------------------------------------------

    def _check_origin(self, origin: str, user_id: Any) -> None:
        """The origin may only speak for its own users (and never for ours)."""
        if not is_valid_user_id(user_id):
            raise BadEdu(f"invalid user ID {user_id!r}")
        if server_name_of(user_id) != origin or origin == self._server_name:
            raise BadEdu(f"{origin} may not speak for {user_id}")

    async def _check_joined(self, room_id: str, user_id: str) -> None:
        """The user is joined to the room, and the room's ACL lets their server in."""
        if (await self._events.members(room_id)).get(user_id) != "join":
            raise BadEdu(f"{user_id} is not joined to {room_id}")
        if self._check_acl is not None:
            try:
                await self._check_acl(room_id, server_name_of(user_id) or "")
            except MatrixError as err:
                raise BadEdu(f"denied by the server ACL of {room_id}: {err}") from None
