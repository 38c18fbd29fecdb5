"""Devices: list, rename, delete (revoking their tokens), and the device a login uses."""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.core.ids import server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.uia import UIAService
from homeserver.services.auth import AuthService, Requester
from homeserver.services.clock import Clock
from storage.database import Database
from storage.devices import DeviceRow, DeviceStore

# What the device endpoints render: the stored row (device ID, display name, last seen).
Device = DeviceRow

logger = logging.getLogger(__name__)

MAX_DISPLAY_NAME_LENGTH = 100
# A device's last-seen IP and time are written at most this often, off the request path.
LAST_SEEN_WRITE_INTERVAL_MS = 5 * 60 * 1000
MAX_DEVICE_ID_LENGTH = 255


class DeviceService:
    def __init__(self, db: Database, devices: DeviceStore, auth: AuthService, uia_service: UIAService, clock: Clock) -> None:
        self._db = db
        self._devices = devices
        self._auth = auth
        self._uia = uia_service
        self._clock = clock
        self._last_seen_written: dict[tuple[str, str], tuple[int, str | None]] = {}
        self._pending_writes: set[asyncio.Task[None]] = set()
        self._change_listeners: list[Callable[[str, list[str], bool], Awaitable[None]]] = []

    def on_devices_changed(self, listener: Callable[[str, list[str], bool], Awaitable[None]]) -> None:
        """Call `listener(user_id, device_ids, deleted)` after devices are created, renamed or
        deleted (device lists in /sync and over federation, to-device inboxes)."""
        self._change_listeners.append(listener)

    async def _changed(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        async def announce() -> None:
            for listener in self._change_listeners:
                await listener(user_id, device_ids, deleted)
        await self._db.after_commit(announce)

    async def prepare_login_device(self, user_id: str, device_id: str | None, display_name: str | None) -> str:
        """Create the device a login will use, or reuse the named one.

        Spec (`POST /login`, device_id): the access tokens previously associated with a
        reused device are invalidated.
        """
        if device_id is None:
            device_id = "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))
        elif not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device_id")
        _check_display_name(display_name)
        created = await self._devices.upsert_device(user_id, device_id, display_name, now_ts=self._clock.now_ms())
        # The device keeps its keys and name; only its old sessions end.
        await self._auth.revoke_device_tokens(user_id, device_id)
        if created:  # a new device is a device-list change (other servers hear of it too)
            await self._changed(user_id, [device_id], False)
        return device_id

    def note_seen(self, user_id: str, device_id: str, ip: str | None, user_agent: str | None) -> None:
        """Record that a device made a request; cheap enough to call on every request."""
        now = self._clock.now_ms()
        key = (user_id, device_id)
        last = self._last_seen_written.get(key)
        if last is not None and last[1] == ip and now - last[0] < LAST_SEEN_WRITE_INTERVAL_MS:
            return
        if len(self._last_seen_written) > 100_000:
            self._last_seen_written.clear()
        self._last_seen_written[key] = (now, ip)
        task = asyncio.create_task(self._write_last_seen(user_id, device_id, now, ip, user_agent))
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    async def flush(self) -> None:
        """Wait for pending last-seen writes (before the database closes)."""
        if self._pending_writes:
            await asyncio.gather(*self._pending_writes, return_exceptions=True)

    async def _write_last_seen(self, user_id: str, device_id: str, ts: int, ip: str | None, ua: str | None) -> None:
        try:
            await self._devices.record_last_seen(user_id, device_id, ts, ip, ua)
        except Exception:  # a lost last-seen update is harmless; never fail a request over it
            logger.warning("could not record last-seen for %s/%s", user_id, device_id, exc_info=True)

    async def create_device(self, user_id: str, device_id: str) -> None:
        """A device with no session yet (an admin makes it); an existing one is left as it is."""
        if len(device_id) > MAX_DEVICE_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device_id")
        if await self._devices.upsert_device(user_id, device_id, None, now_ts=self._clock.now_ms()):
            await self._changed(user_id, [device_id], False)

    async def list_devices(self, user_id: str) -> list[DeviceRow]:
        return await self._devices.list_devices(user_id)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRow:
        device = await self._devices.get_device(user_id, device_id)
        if device is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Device not found")
        return device

    async def whois(self, requester: Requester, user_id: str, server_name: str) -> dict[str, Any]:
        """`GET /admin/whois/{userId}`: a user's devices and where they were last seen. For server
        admins and the user themself (as Synapse); we keep one connection per device, the last."""
        if user_id != requester.user_id and not requester.is_admin:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a server admin")
        if server_name_of(user_id) != server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Can only whois a local user")
        devices = {}
        for device in await self._devices.list_devices(user_id):
            connections = []
            if device.last_seen_ts is not None:
                connections.append({"ip": device.last_seen_ip, "last_seen": device.last_seen_ts,
                                    "user_agent": device.last_seen_user_agent})
            devices[device.device_id] = {"sessions": [{"connections": connections}]}
        return {"user_id": user_id, "devices": devices}

    async def update_device(self, user_id: str, device_id: str, body: dict[str, Any], *, create: bool = False) -> None:
        """Rename a device; `create`: make it when it does not exist (spec v1.17: appservices
        create their users' devices this way, without /login)."""
        display_name = body.get("display_name")
        if display_name is not None and not isinstance(display_name, str):
            raise MatrixError(400, Codes.BAD_JSON, "'display_name' must be a string")
        _check_display_name(display_name)
        if not await self._devices.set_display_name(user_id, device_id, display_name):
            if not create:
                raise MatrixError(404, Codes.NOT_FOUND, "Device not found")
            if not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device ID")
            if not await self._auth.user_exists(user_id):
                raise MatrixError(403, Codes.FORBIDDEN, f"{user_id} has not been registered")
            await self._devices.upsert_device(user_id, device_id, display_name, now_ts=self._clock.now_ms())
        await self._changed(user_id, [device_id], False)

    async def delete_devices(self, requester: Requester, device_ids: list[str], auth: Any, *, operation: str) -> None:
        """Delete devices after UIA (none for an appservice, spec v1.17); their tokens go with
        them. Unknown IDs are ignored, as Synapse does."""
        if requester.app_service_id is not None:
            await self.delete_devices_now(requester.user_id, device_ids)
            return
        result = await self._uia.authenticate(auth, operation=operation, flows=self._uia.user_flows(),
                                             user_id=requester.user_id)
        await self.delete_devices_now(requester.user_id, device_ids)
        await self._uia.finish(result.session_id)

    async def delete_devices_now(self, user_id: str, device_ids: list[str]) -> None:
        deleted = await self._devices.delete_devices(user_id, device_ids)
        self._auth.forget_user(user_id)
        if deleted:
            await self._changed(user_id, deleted, True)

    async def delete_all_devices(self, user_id: str, *, except_device_id: str | None = None) -> None:
        """Every device and its tokens; without `except_device_id`, also the user's tokens
        that have no device (an admin's "login as" tokens end with the admin's sessions)."""
        deleted = await self._devices.delete_all_devices(user_id, except_device_id=except_device_id)
        if except_device_id is None:
            await self._auth.revoke_all_tokens(user_id)
        self._auth.forget_user(user_id)
        if deleted:
            await self._changed(user_id, deleted, True)

    async def log_out(self, requester: Requester) -> None:
        """`POST /logout`: the requester's device goes, with its tokens; a token without a
        device (an admin acting as a user) just ends."""
        if requester.device_id is None:
            await self._auth.revoke_access_token(requester)
        else:
            await self.delete_devices_now(requester.user_id, [requester.device_id])


def _check_display_name(display_name: str | None) -> None:
    if display_name is not None and len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise MatrixError(400, Codes.TOO_LARGE, f"Device display name is longer than {MAX_DISPLAY_NAME_LENGTH} characters")
