"""What goes out to other servers: our events (PDUs) and our users' ephemeral news (EDUs).

Use cases:
- `PduBroadcaster.on_persisted` (an `events.on_persisted` listener): every event sent by one
  of our users goes to the servers of the room's joined members (after the event), plus, for
  a membership event other than an invite, the server of its target (a kicked user's must hear of it);
  `broadcast` does the same for events the lead's join/leave/knock code relays for remote users.
- `EduBroadcaster`: listeners on the typing, receipt, presence, device-list and to-device
  services that turn a local user's change into the spec's EDUs ("Typing Notifications",
  "Receipts", "Presence", "Device Management", "Send-to-device messaging") for the servers
  that share a room with the user (or the recipients' servers, for to-device messages).

Invariants: only local users' news leaves through here (a remote user's change, applied by
federation_edus, is never echoed back out); delivery, ordering and retries are the
FederationSender's (federation/sender.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from federation.sender import FederationSender
from homeserver.core.events import Event
from homeserver.core.ids import server_name_of
from homeserver.services.e2ee.keys import E2EKeyService
from homeserver.services.ephemeral.to_device import DeviceListChange
from storage.devices import DeviceStore
from storage.federation_queue import DestinationQueries, FederationQueueStore
from storage.receipts import ReceiptRow

logger = logging.getLogger(__name__)


# The servers of a room's joined members (the app passes its per-snapshot cache of them).
JoinedServers = Callable[[str], Awaitable[set[str]]]


class PduBroadcaster:
    def __init__(self, sender: FederationSender, joined_servers: JoinedServers, server_name: str) -> None:
        self._sender = sender
        self._joined_servers = joined_servers
        self._server_name = server_name

    async def on_persisted(self, published: list[tuple[Event, int]]) -> None:
        """Send our users' newly persisted events to the servers in their rooms."""
        local = [event for event, _ in published if server_name_of(event.sender) == self._server_name]
        if not local:
            return
        try:
            await self.broadcast(local, stream_orderings={event.event_id: position for event, position in published})
        except Exception:  # the events are committed: the sender of the request must not see a 500
            logger.exception("could not queue %d events for federation", len(local))

    async def broadcast(self, events: list[Event], exclude: Iterable[str] = (), *,
                        stream_orderings: dict[str, int] | None = None) -> None:
        """Queue each event for the servers of its room's joined members (and, for a membership
        event, its target's server), minus ourselves and `exclude` (e.g. the event's origin).
        `stream_orderings`: the events' positions, when known (our own events)."""
        excluded = set(exclude) | {self._server_name}
        servers_by_room: dict[str, set[str]] = {}
        for event in events:
            servers = servers_by_room.get(event.room_id)
            if servers is None:
                servers = servers_by_room[event.room_id] = await self._joined_servers(event.room_id)
            destinations = set(servers)
            # A kicked, banned or uninvited user's server is no longer in the room after the
            # event but must hear of it. Not an invitee's: it signed the invite already (PUT
            # /invite) and is not in the room, so it holds nothing the event could go with.
            if event.type == "m.room.member" and event.state_key and event.membership != "invite":
                target = server_name_of(event.state_key)
                if target:
                    destinations.add(target)
            destinations -= excluded
            if destinations:
                await self._sender.send_pdu(event.pdu, destinations,
                                            stream_ordering=(stream_orderings or {}).get(event.event_id))



class EduBroadcaster:
    def __init__(self, sender: FederationSender, queue: FederationQueueStore, destinations: DestinationQueries,
                 joined_servers: JoinedServers, devices: DeviceStore, e2e_keys: E2EKeyService,
                 server_name: str, *, device_names: bool = False) -> None:
        # allow_device_name_lookup_over_federation: device display names in m.device_list_update.
        self._device_names = device_names
        self._sender = sender
        self._queue = queue
        self._destinations = destinations
        self._joined_servers = joined_servers
        self._devices = devices
        self._e2e_keys = e2e_keys
        self._server_name = server_name

    def _is_local(self, user_id: str) -> bool:
        return server_name_of(user_id) == self._server_name

    async def typing_changed(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        """m.typing to the room's other servers (a TypingService.on_change listener; remote users are skipped)."""
        if not self._is_local(user_id):
            return
        servers = await self._joined_servers(room_id)
        await self._sender.send_edu(servers, "m.typing", {"room_id": room_id, "user_id": user_id, "typing": typing},
                                    key=("m.typing", room_id, user_id))

    async def receipt_sent(self, receipt: ReceiptRow) -> None:
        """m.receipt for a public read receipt (private ones, m.read.private, stay here)."""
        if receipt.receipt_type != "m.read" or not self._is_local(receipt.user_id):
            return
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id:
            data["thread_id"] = receipt.thread_id
        content = {receipt.room_id: {"m.read": {receipt.user_id: {"event_ids": [receipt.event_id], "data": data}}}}
        servers = await self._joined_servers(receipt.room_id)
        await self._sender.send_edu(servers, "m.receipt", content)

    async def presence_changed(self, user_id: str, content: dict[str, Any]) -> None:
        """m.presence to the servers sharing a room with the user."""
        if not self._is_local(user_id):
            return
        update = {"user_id": user_id, "presence": content["presence"],
                  "last_active_ago": content.get("last_active_ago", 0),
                  "currently_active": bool(content.get("currently_active"))}
        if content.get("status_msg") is not None:
            update["status_msg"] = content["status_msg"]
        servers = await self._destinations.servers_sharing_rooms(user_id)
        await self._sender.send_edu(servers, "m.presence", {"push": [update]})

    async def device_list_changed(self, change: DeviceListChange) -> None:
        """m.device_list_update per changed device and m.signing_key_update for new cross-signing
        keys, to the servers sharing a room with the user.

        Spec ("Device Management"): stream_id is unique and increasing per user (our aux-stream
        position of the change, one per device); prev_id names the update sent before it, so
        a server that missed one sees the gap and re-fetches the list with /user/devices."""
        if not self._is_local(change.user_id) or not (change.device_ids or change.signing_keys):
            return
        servers = await self._destinations.servers_sharing_rooms(change.user_id)
        servers.discard(self._server_name)
        if not servers:
            return
        user_id = change.user_id
        if change.device_ids:
            previous = await self._queue.swap_device_list_stream(user_id, change.stream_id)
            for device_id in change.device_ids:
                content: dict[str, Any] = {"user_id": user_id, "device_id": device_id, "stream_id": change.stream_id,
                                           "prev_id": [previous] if previous is not None else []}
                if change.deleted:
                    content["deleted"] = True
                else:
                    device = await self._devices.get_device(user_id, device_id)
                    if device is None:
                        content["deleted"] = True
                    else:
                        if device.display_name is not None and self._device_names:
                            content["device_display_name"] = device.display_name
                        keys = await self._e2e_keys.device_keys_with_signatures(user_id, device_id)
                        if keys is not None:
                            content["keys"] = keys
                await self._sender.send_edu(servers, "m.device_list_update", content)
        if change.signing_keys:
            keys = await self._e2e_keys.public_cross_signing_keys(user_id)
            if keys:
                await self._sender.send_edu(servers, "m.signing_key_update", {"user_id": user_id, **keys})

    async def to_device(self, sender: str, event_type: str, messages: dict[str, dict[str, Any]]) -> None:
        """m.direct_to_device, one EDU per recipient server (a ToDeviceService.on_remote listener)."""
        by_server: dict[str, dict[str, Any]] = {}
        for user_id, by_device in messages.items():
            server = server_name_of(user_id)
            if server and server != self._server_name:
                by_server.setdefault(server, {})[user_id] = by_device
        for server, server_messages in by_server.items():
            await self._sender.send_edu([server], "m.direct_to_device", {
                "sender": sender, "type": event_type, "message_id": secrets.token_hex(16),
                "messages": server_messages})
