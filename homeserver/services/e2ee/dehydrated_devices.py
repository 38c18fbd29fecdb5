"""Dehydrated devices (MSC3814, as Element uses it and Synapse serves it).

A user keeps at most one dehydrated device: an ordinary device (with its device keys,
one-time and fallback keys, visible in key queries; the client marks its device keys
`dehydrated: true`) whose Olm account the client stores encrypted in `device_data`. While
the user is offline, others encrypt room keys to it; a new login of the user fetches the
to-device messages waiting for it (paged; each page acknowledges the previous one, whose
messages are deleted), then replaces it with a fresh one. Uploading a new one deletes the
old device, with its keys and its inbox.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.devices import MAX_DEVICE_ID_LENGTH, DeviceService
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.e2ee.keys import E2EKeyService
from homeserver.services.ephemeral.to_device import ToDeviceService
from storage.dehydrated_devices import DehydratedDeviceStore

# Pages of the events endpoint, as Synapse's default; a client may ask for fewer or more.
DEFAULT_EVENTS_LIMIT = 100
MAX_EVENTS_LIMIT = 1000


class DehydratedDeviceService:
    def __init__(self, store: DehydratedDeviceStore, devices: DeviceService, keys: E2EKeyService,
                 to_device: ToDeviceService, clock: Clock) -> None:
        self._store = store
        self._devices = devices
        self._keys = keys
        self._to_device = to_device
        self._clock = clock

    async def get(self, requester: Requester) -> dict[str, Any]:
        """GET .../dehydrated_device: the device's ID and its stored (opaque) data."""
        row = await self._store.get(requester.user_id)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No dehydrated device available")
        return {"device_id": row.device_id, "device_data": row.device_data}

    async def put(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """PUT .../dehydrated_device: create the device with its keys; it replaces any earlier one."""
        user_id = requester.user_id
        device_id, device_data = body.get("device_id"), body.get("device_data")
        display_name = body.get("initial_device_display_name")
        if not isinstance(device_id, str) or not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
            raise MatrixError(400, Codes.BAD_JSON, "'device_id' must be a device ID")
        if not isinstance(device_data, dict) or not isinstance(device_data.get("algorithm"), str):
            raise MatrixError(400, Codes.BAD_JSON, "'device_data' must be an object with an 'algorithm'")
        if display_name is not None and not isinstance(display_name, str):
            raise MatrixError(400, Codes.BAD_JSON, "'initial_device_display_name' must be a string")
        if body.get("device_keys") is None:
            raise MatrixError(400, Codes.BAD_JSON, "Device key(s) not found, these must be provided.")
        self._keys.check_upload(user_id, device_id, body)  # malformed keys: nothing is written
        previous = await self._store.get(user_id)
        # A device of the user that is not their dehydrated one stays theirs: taking its ID
        # would hand its sessions and keys to the dehydrated account.
        if (previous is None or previous.device_id != device_id) and \
                any(d.device_id == device_id for d in await self._devices.list_devices(user_id)):
            raise MatrixError(400, Codes.INVALID_PARAM, f"Device {device_id} already exists")
        await self._devices.prepare_login_device(user_id, device_id, display_name)
        await self._keys.upload_for_device(user_id, device_id, body)
        replaced = await self._store.put(user_id, device_id, device_data, self._clock.now_ms())
        if replaced is not None and replaced != device_id:
            await self._devices.delete_devices_now(user_id, [replaced])
        return {"device_id": device_id}

    async def delete(self, requester: Requester) -> dict[str, Any]:
        """DELETE .../dehydrated_device: the device goes, with its keys and messages."""
        row = await self._store.get(requester.user_id)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No dehydrated device available")
        await self._devices.delete_devices_now(requester.user_id, [row.device_id])
        return {"device_id": row.device_id}

    async def events(self, requester: Requester, device_id: str, next_batch: str | None,
                     limit: int) -> tuple[list[dict[str, Any]], str, bool]:
        """The to-device messages waiting for the user's dehydrated device after `next_batch`
        (those up to it are acknowledged and deleted): the messages, the token of the next
        page, and whether more were waiting than this page holds."""
        row = await self._store.get(requester.user_id)
        if row is None:
            raise MatrixError(403, Codes.FORBIDDEN, "No dehydrated device exists")
        if device_id != row.device_id:
            raise MatrixError(403, Codes.FORBIDDEN, "You may only fetch messages for your dehydrated device")
        since = 0
        if next_batch:
            digits = next_batch[1:]
            if not next_batch.startswith("d") or not (digits.isascii() and digits.isdigit()):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid batch token {next_batch!r}")
            since = int(next_batch[1:])
        limit = min(limit, MAX_EVENTS_LIMIT)
        messages, position = await self._to_device.page(requester.user_id, device_id, since, limit)
        return messages, f"d{position}", len(messages) == limit
