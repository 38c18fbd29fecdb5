"""Device lists of users on other servers, kept while we share a room with them (spec,
"Device Management": "servers ... cache the device lists of users ... they share a room with").

`CachedRemoteKeys` is the RemoteKeys a client's /keys/query goes through: a tracked user is
answered from the cache; a user we share a room with but do not track yet, asked for all their
devices, is first fetched with GET /user/devices (a resync) and tracked from then on; anyone
else is asked live, as before.

The cache follows the user's server: an `m.device_list_update` whose `prev_id` names the last
update we applied (its `stream_id`) is applied to the list; one that does not (we missed one, or
never tracked the user) makes us fetch the whole list again, in the background, and our users
hear of the change once the list has come (or the fetch failed). A user no local
user shares a room with any more is forgotten (their server stops telling us about changes),
so meeting them again resyncs.

Invariants: a server only speaks for its own users (the EDU service checks the origin; a
/user/devices answer about another user is refused); one resync per user at a time; nothing a
peer sends raises out of here (bad answers are logged and leave the cache as it was).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from federation.client import FederationClient, FederationError, path
from homeserver.core.events import Event
from homeserver.core.ids import server_name_of
from homeserver.services.clock import Clock
from homeserver.services.e2ee.remote_keys import Failures, RemoteKeys
from homeserver.services.ephemeral.to_device import DeviceListService
from storage.remote_devices import RemoteDevice, RemoteDeviceList, RemoteDeviceStore

logger = logging.getLogger(__name__)

DEVICES_PATH = "/_matrix/federation/v1/user/devices/{}"
RESYNC_TIMEOUT_MS = 30_000
MAX_DEVICES = 1_000  # per user: a peer's answer beyond this is cut


class CachedRemoteKeys(RemoteKeys):
    def __init__(self, client: FederationClient, store: RemoteDeviceStore, device_lists: DeviceListService,
                 clock: Clock, server_name: str) -> None:
        super().__init__(client)
        self._store = store
        self._device_lists = device_lists
        self._clock = clock
        self._server_name = server_name
        self._resyncs: dict[str, asyncio.Task[bool]] = {}
        # Users whose server announced a change we are fetching: our users hear of it even
        # when the fetch fails (their next query tries again). A resync a query started and
        # nobody announced stays quiet on failure: telling would make clients query again, in
        # a loop while the server is down.
        self._announced: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    # --- /keys/query ----------------------------------------------------------------------------

    async def query(self, wanted: Mapping[str, Mapping[str, list[str]]],
                    timeout_ms: int) -> tuple[dict[str, Any], Failures]:
        users = {user_id: list(devices) for users in wanted.values() for user_id, devices in users.items()}
        # A resync under way (an EDU told us of a gap) is waited for: its answer is the one to give.
        pending = [self._resyncs[u] for u in users if u in self._resyncs]
        for user_id, devices in users.items():
            if not devices and user_id not in self._resyncs \
                    and await self._store.stream_id(user_id) is None \
                    and await self._store.shares_room_with(user_id, self._server_name):
                pending.append(self._resync_soon(user_id))
        if pending:
            await asyncio.wait(pending, timeout=timeout_ms / 1000)
        cached = await self._store.get(list(users))
        merged: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
        for user_id, device_list in cached.items():
            _answer_from(device_list, users[user_id], merged)
        live = {server: {u: d for u, d in users_of.items() if u not in cached} for server, users_of in wanted.items()}
        live = {server: users_of for server, users_of in live.items() if users_of}
        if not live:
            return merged, {}
        answered, failures = await super().query(live, timeout_ms)
        for field, by_user in answered.items():
            merged[field].update(by_user)
        return merged, failures

    # --- updates from the user's server ---------------------------------------------------------

    async def on_device_list_update(self, user_id: str, content: Mapping[str, Any]) -> bool:
        """An m.device_list_update of `user_id` (the origin is the user's server: checked).
        True when it changed the cached list here; a resync it starts tells our users itself,
        once the list has come (as Synapse: a client told earlier would query twice)."""
        stream_id, prev_ids = content.get("stream_id"), content.get("prev_id") or []
        if not _is_int(stream_id) or not isinstance(prev_ids, list):
            return False
        if not await self._store.shares_room_with(user_id, self._server_name):
            return False  # not a user we keep a list of (as Synapse)
        async with self._lock(user_id):
            current = await self._store.stream_id(user_id)
            if current is not None and stream_id <= current:
                return False  # already applied (a retried transaction)
            if current is None or not prev_ids or any(p != current for p in prev_ids) \
                    or user_id in self._resyncs:
                self._announced.add(user_id)
                self._resync_soon(user_id)
                return False
            device_id = content.get("device_id")
            if not isinstance(device_id, str):
                return False
            keys = content.get("keys")
            name = content.get("device_display_name")
            device = RemoteDevice(device_id, name if isinstance(name, str) else None,
                                  keys if isinstance(keys, dict) else None)
            await self._store.apply_update(user_id, stream_id, device, content.get("deleted") is True,
                                           self._clock.now_ms())
            return True

    async def on_signing_key_update(self, user_id: str, content: Mapping[str, Any]) -> None:
        """An m.signing_key_update: new cross-signing keys of a tracked user."""
        master, self_signing = content.get("master_key"), content.get("self_signing_key")
        await self._store.set_cross_signing(user_id, master if _key_of(master, user_id) else None,
                                            self_signing if _key_of(self_signing, user_id) else None,
                                            self._clock.now_ms())

    async def on_persisted(self, published: list[tuple[Event, int]]) -> None:
        """An events.on_persisted listener: when someone leaves a room, the remote users no local
        user shares a room with any more are forgotten."""
        try:
            for event, _ in published:
                if event.type != "m.room.member" or event.membership == "join" or not event.state_key:
                    continue
                if server_name_of(event.state_key) == self._server_name:
                    candidates = await self._store.tracked_members(event.room_id)
                else:
                    candidates = await self._store.tracked_among([event.state_key])
                gone = [u for u in candidates if not await self._store.shares_room_with(u, self._server_name)]
                if gone:
                    await self._store.forget(gone)
        except Exception:  # the events are committed: a failure here must not reach the sender
            logger.exception("could not forget device lists after a leave")

    # --- resync ---------------------------------------------------------------------------------

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    def _resync_soon(self, user_id: str) -> asyncio.Task[bool]:
        task = self._resyncs.get(user_id)
        if task is None:
            task = self._resyncs[user_id] = asyncio.ensure_future(self._resync(user_id))
            task.add_done_callback(lambda _: self._resyncs.pop(user_id, None))
        return task

    async def _resync(self, user_id: str) -> bool:
        """Fetch and keep the whole list; True when it worked. Local users see the change."""
        try:
            kept = await self._fetch_and_keep(user_id)
        except Exception:
            logger.exception("device list of %s: resync failed", user_id)
            kept = False
        announced = user_id in self._announced
        self._announced.discard(user_id)
        if kept or announced:
            await self._device_lists.mark_changed(user_id)
        return kept

    async def _fetch_and_keep(self, user_id: str) -> bool:
        server = server_name_of(user_id) or ""
        try:
            body = await self._client.get_json(server, path(DEVICES_PATH, user_id), timeout_ms=RESYNC_TIMEOUT_MS)
        except FederationError as err:
            logger.info("device list of %s: resync failed: %s", user_id, err)
            return False
        parsed = _parse_devices_answer(user_id, body)
        if parsed is None:
            logger.info("device list of %s: %s sent a malformed /user/devices answer", user_id, server)
            return False
        stream_id, devices, master, self_signing = parsed
        async with self._lock(user_id):
            await self._store.replace(user_id, stream_id, devices, master, self_signing, self._clock.now_ms())
        return True


def _answer_from(device_list: RemoteDeviceList, device_ids: list[str], merged: dict[str, Any]) -> None:
    user_id = device_list.user_id
    answer: dict[str, Any] = {}
    for device_id, device in device_list.devices.items():
        if (device_ids and device_id not in device_ids) or device.keys is None:
            continue
        keys = dict(device.keys)
        unsigned = keys.get("unsigned") if isinstance(keys.get("unsigned"), dict) else {}
        if device.display_name is not None:
            unsigned = {**unsigned, "device_display_name": device.display_name}
        answer[device_id] = {**keys, "unsigned": unsigned}
    merged["device_keys"][user_id] = answer
    if device_list.master_key is not None:
        merged["master_keys"][user_id] = device_list.master_key
    if device_list.self_signing_key is not None:
        merged["self_signing_keys"][user_id] = device_list.self_signing_key


def _parse_devices_answer(user_id: str, body: Any) -> tuple[int, list[RemoteDevice], Any, Any] | None:
    """(stream_id, devices, master key, self-signing key) of a /user/devices answer about
    `user_id`; None when it is not one. Devices whose keys name another user or device go."""
    if not isinstance(body, dict) or body.get("user_id") != user_id or not _is_int(body.get("stream_id")) \
            or not isinstance(body.get("devices"), list):
        return None
    devices: dict[str, RemoteDevice] = {}
    for entry in body["devices"][:MAX_DEVICES]:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_id"), str):
            continue
        device_id, keys, name = entry["device_id"], entry.get("keys"), entry.get("device_display_name")
        if isinstance(keys, dict) and (keys.get("user_id", user_id) != user_id
                                       or keys.get("device_id", device_id) != device_id):
            continue
        devices[device_id] = RemoteDevice(device_id, name if isinstance(name, str) else None,
                                          keys if isinstance(keys, dict) else None)
    master, self_signing = body.get("master_key"), body.get("self_signing_key")
    return (body["stream_id"], list(devices.values()), master if _key_of(master, user_id) else None,
            self_signing if _key_of(self_signing, user_id) else None)


def _key_of(key: Any, user_id: str) -> bool:
    return isinstance(key, dict) and key.get("user_id") == user_id


def _is_int(value: Any) -> bool:
    """A stream ID we can store: a non-negative integer within PostgreSQL's BIGINT."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
