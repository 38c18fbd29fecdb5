"""To-device messages (PUT /sendToDevice) and device-list changes, both delivered by /sync.

A to-device message waits in its device's inbox until the device syncs with a token past it,
which acknowledges it; a retried transaction delivers nothing twice. Messages for users of
other servers go to the `on_remote` listeners (federation's m.direct_to_device), in the same
database transaction as the transaction-ID claim; messages from other servers come in
through `deliver_remote`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.streams.aux import AuxStream
from storage.database import Database
from storage.device_lists import DeviceListStore
from storage.devices import DeviceStore
from storage.sync import SyncQueries
from storage.to_device import ToDeviceStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceListChange:
    user_id: str
    device_ids: tuple[str, ...]
    deleted: bool
    signing_keys: bool
    stream_id: int  # the aux-stream position of the change: unique and increasing per user


RemoteToDeviceListener = Callable[[str, str, dict[str, Any]], Awaitable[None]]
# Per sync response, as Synapse: a device with a large backlog gets it over several syncs.
TO_DEVICE_PER_SYNC = 100
# Cross-user requests for room keys are limited (rc_key_requests); those over the limit are
# dropped, not refused, as Synapse does.
KEY_REQUEST = "m.room_key_request"


class ToDeviceService:
    def __init__(self, db: Database, store: ToDeviceStore, devices: DeviceStore, aux: AuxStream, clock: Clock,
                 server_name: str, *, limiter: RateLimiter) -> None:
        self._db = db
        self._store = store
        self._devices = devices
        self._limiter = limiter
        self._aux = aux
        self._clock = clock
        self._server_name = server_name
        self._remote_listeners: list[RemoteToDeviceListener] = []

    def on_remote(self, listener: RemoteToDeviceListener) -> None:
        """Call `listener(sender, event_type, {user_id: {device_id: content}})` with the messages
        of a send for users of other servers (inside the send's database transaction)."""
        self._remote_listeners.append(listener)

    async def send(self, requester: Requester, event_type: str, txn_id: str, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'messages' must be an object")
        deliveries: list[tuple[str, str, dict[str, Any]]] = []
        remote: dict[str, dict[str, Any]] = {}
        for user_id, by_device in messages.items():
            if not is_valid_user_id(user_id) or not isinstance(by_device, dict):
                raise MatrixError(400, Codes.BAD_JSON, f"Invalid recipient {user_id!r}")
            if event_type == KEY_REQUEST and user_id != requester.user_id and not await self._limiter.allows(
                    Action.KEY_REQUEST, (requester.user_id, requester.device_id), user_id=requester.user_id):
                logger.info("Dropping room_key_request from %s to %s: rc_key_requests", requester.user_id, user_id)
                continue
            if server_name_of(user_id) != self._server_name:
                if not all(isinstance(c, dict) for c in by_device.values()):
                    raise MatrixError(400, Codes.BAD_JSON, "Each message must be an object")
                if by_device:
                    remote[user_id] = by_device
                continue
            if "*" in by_device:
                known = [d.device_id for d in await self._devices.list_devices(user_id)]
            else:
                known = [d.device_id for d in await self._devices.list_devices(user_id) if d.device_id in by_device]
            for device_id in known:
                content = by_device.get(device_id, by_device.get("*"))
                if not isinstance(content, dict):
                    raise MatrixError(400, Codes.BAD_JSON, "Each message must be an object")
                deliveries.append((user_id, device_id, {"type": event_type, "sender": requester.user_id,
                                                        "content": content}))
        recipients = {u for u, _, _ in deliveries}
        async with self._aux.write(recipients) as position:
            async with self._db.transaction():
                if not await self._store.claim_txn(requester.user_id, requester.device_id or "", txn_id,
                                                   self._clock.now_ms()):
                    return  # a retry: the first request delivered them
                await self._store.add(deliveries, position)
                if remote:
                    for listener in self._remote_listeners:
                        await listener(requester.user_id, event_type, remote)

    async def deliver_remote(self, origin: str, sender: str, event_type: str, message_id: str,
                             messages: dict[str, Any]) -> None:
        """Messages from a user of another server (an m.direct_to_device EDU) for our users'
        devices ("*": all of a user's devices). A message_id seen before from the same origin
        is a retried transaction: nothing is delivered twice. Malformed entries are skipped."""
        deliveries: list[tuple[str, str, dict[str, Any]]] = []
        for user_id, by_device in messages.items():
            if not isinstance(user_id, str) or server_name_of(user_id) != self._server_name \
                    or not isinstance(by_device, dict):
                continue
            if event_type == KEY_REQUEST and not await self._limiter.allows(Action.KEY_REQUEST, (sender, None)):
                logger.info("Dropping room_key_request from %s to %s: rc_key_requests", sender, user_id)
                continue
            devices = [d.device_id for d in await self._devices.list_devices(user_id)]
            for device_id in devices:
                content = by_device.get(device_id, by_device.get("*"))
                if isinstance(content, dict):
                    deliveries.append((user_id, device_id, {"type": event_type, "sender": sender,
                                                            "content": content}))
        if not deliveries:
            return
        async with self._aux.write({u for u, _, _ in deliveries}) as position:
            async with self._db.transaction():
                # Keyed by the origin: message IDs are only unique per sending server.
                if not await self._store.claim_txn(sender, f"federation:{origin}", message_id,
                                                   self._clock.now_ms()):
                    return
                await self._store.add(deliveries, position)

    async def for_sync(self, user_id: str, device_id: str | None, since: int | None,
                       upto: int) -> tuple[list[dict[str, Any]], int]:
        """The device's messages up to `upto` (acknowledging those up to `since`), and the
        position the sync may claim: lower than `upto` when the batch was cut short."""
        if device_id is None:
            return [], upto
        return await self._fetch(user_id, device_id, since or 0, upto, TO_DEVICE_PER_SYNC)

    async def page(self, user_id: str, device_id: str, since: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A device's messages after `since` (acknowledging those up to it), at most `limit`,
        and the position to ask from next: the last one returned when the page is full, else
        the stream's current position (a device that does not sync, MSC3814's dehydrated one)."""
        return await self._fetch(user_id, device_id, since, max(self._aux.current, since), limit)

    async def _fetch(self, user_id: str, device_id: str, since: int, upto: int,
                     limit: int) -> tuple[list[dict[str, Any]], int]:
        pending = await self._store.acknowledge_and_fetch(user_id, device_id, since, upto, limit)
        if len(pending) == limit:
            upto = pending[-1][0]
        return [message for _, message in pending], upto

    async def on_devices_changed(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        if deleted:
            for device_id in device_ids:
                await self._store.delete_device(user_id, device_id)


class DeviceListService:
    def __init__(self, store: DeviceListStore, queries: SyncQueries, aux: AuxStream) -> None:
        self._store = store
        self._queries = queries
        self._aux = aux
        self._listeners: list[Callable[[DeviceListChange], Awaitable[None]]] = []

    def on_change(self, listener: Callable[[DeviceListChange], Awaitable[None]]) -> None:
        """Call `listener(change)` after each change is written (federation tells other servers)."""
        self._listeners.append(listener)

    async def mark_changed(self, user_id: str, device_ids: Iterable[str] = (), *, deleted: bool = False,
                           signing_keys: bool = False) -> None:
        """A user's devices or keys changed: everyone sharing a room with them re-queries.
        `device_ids` names the devices concerned (deleted ones with `deleted`), `signing_keys`
        says the cross-signing keys changed; both only matter to other servers."""
        device_ids = list(device_ids)
        if len(device_ids) > 1:
            # One position per device: each device's update to other servers needs its own
            # stream_id (the next one's prev_id points at it).
            for i, device_id in enumerate(device_ids):
                await self.mark_changed(user_id, [device_id], deleted=deleted,
                                        signing_keys=signing_keys and i == len(device_ids) - 1)
            return
        wake = await self._queries.users_sharing_rooms(user_id) | {user_id}
        async with self._aux.write(wake) as position:
            await self._store.mark_changed([user_id], position)
        change = DeviceListChange(user_id, tuple(device_ids), deleted, signing_keys, position)
        for listener in self._listeners:
            await listener(change)

    async def on_devices_changed(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        await self.mark_changed(user_id, device_ids, deleted=deleted)

    async def mark_changed_for(self, viewer: str, user_ids: Iterable[str]) -> None:
        """Keys changed that only `viewer` sees (their user-signing key, their signatures on
        other users' keys): only their syncs list `user_ids` as changed; nobody else, no
        other server, hears of it."""
        async with self._aux.write({viewer}) as position:
            await self._store.mark_changed_for(viewer, sorted(set(user_ids)), position)

    async def stream_id(self, user_id: str) -> int:
        """Where a user's device list stands: the position of its last change (0: never changed).
        Peers match it with the `stream_id` of `m.device_list_update` EDUs."""
        return await self._store.latest_stream_id(user_id)

    async def for_sync(self, user_id: str, since_aux: int, upto_aux: int, membership_changes: list[tuple[str, str, str]],
                       joined_rooms: list[str], left_rooms: list[str]) -> dict[str, list[str]]:
        """`device_lists` of an incremental sync: users whose devices changed (ourselves
        included, for our other devices), users who now
        share a room with us (`membership_changes` in our rooms, rooms we joined), and users
        we no longer share any room with (`left`)."""
        if since_aux == upto_aux and not membership_changes and not joined_rooms and not left_rooms:
            return {"changed": [], "left": []}
        # Keyed by what changed, never by the members of our rooms (a 2,000-member room
        # would cost every woken /sync 2,000 rows): the window's changes, then for `left` only
        # the members who left or were in the rooms we left.
        changed = await self._store.changed_sharing_a_room(user_id, since_aux, upto_aux)
        changed |= await self._store.changed_for_viewer(user_id, since_aux, upto_aux)
        gone: set[str] = set()
        for room_id, member, membership in membership_changes:
            if member == user_id:
                continue
            if membership == "join":
                changed.add(member)
            else:
                gone.add(member)
        for room_id in joined_rooms:
            changed.update(u for u in await self._queries.joined_members(room_id) if u != user_id)
        for room_id in left_rooms:
            gone.update(await self._queries.joined_members(room_id))
        gone -= changed | {user_id}
        left = gone - await self._queries.sharing_a_room_with(user_id, sorted(gone))
        return {"changed": sorted(changed), "left": sorted(left)}
