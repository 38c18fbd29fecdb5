"""RemoteDeviceStore: the cached device lists of users of other servers.
Tables: remote_device_lists, remote_devices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class RemoteDevice:
    device_id: str
    display_name: str | None
    keys: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RemoteDeviceList:
    user_id: str
    stream_id: int
    devices: dict[str, RemoteDevice]
    master_key: dict[str, Any] | None
    self_signing_key: dict[str, Any] | None


class RemoteDeviceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_ids: Sequence[str]) -> dict[str, RemoteDeviceList]:
        """The cached lists of those users that have one."""
        lists = await self._db.fetch(
            """SELECT user_id, stream_id, master_key, self_signing_key FROM remote_device_lists
               WHERE user_id = ANY($1::text[])""",
            list(user_ids),
        )
        devices = await self._db.fetch(
            """SELECT user_id, device_id, display_name, keys FROM remote_devices
               WHERE user_id = ANY($1::text[])""",
            [r["user_id"] for r in lists],
        )
        by_user: dict[str, dict[str, RemoteDevice]] = {r["user_id"]: {} for r in lists}
        for d in devices:
            by_user[d["user_id"]][d["device_id"]] = RemoteDevice(d["device_id"], d["display_name"], d["keys"])
        return {r["user_id"]: RemoteDeviceList(r["user_id"], r["stream_id"], by_user[r["user_id"]],
                                               r["master_key"], r["self_signing_key"]) for r in lists}

    async def stream_id(self, user_id: str) -> int | None:
        """The last update applied to a tracked user's list; None when not tracked."""
        return await self._db.fetchval("SELECT stream_id FROM remote_device_lists WHERE user_id = $1", user_id)

    async def replace(self, user_id: str, stream_id: int, devices: Sequence[RemoteDevice],
                      master_key: dict[str, Any] | None, self_signing_key: dict[str, Any] | None, now: int) -> None:
        """A whole list, as the user's server gave it (a resync)."""
        async with self._db.transaction():
            await self._db.execute(
                """INSERT INTO remote_device_lists (user_id, stream_id, master_key, self_signing_key, updated_ts)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (user_id) DO UPDATE SET stream_id = EXCLUDED.stream_id,
                       master_key = EXCLUDED.master_key, self_signing_key = EXCLUDED.self_signing_key,
                       updated_ts = EXCLUDED.updated_ts""",
                user_id, stream_id, master_key, self_signing_key, now,
            )
            await self._db.execute("DELETE FROM remote_devices WHERE user_id = $1", user_id)
            await self._db.executemany(
                "INSERT INTO remote_devices (user_id, device_id, display_name, keys) VALUES ($1, $2, $3, $4)",
                [(user_id, d.device_id, d.display_name, d.keys) for d in devices],
            )

    async def apply_update(self, user_id: str, stream_id: int, device: RemoteDevice, deleted: bool, now: int) -> None:
        """One device's update of a tracked list (an m.device_list_update that follows the last)."""
        async with self._db.transaction():
            await self._db.execute(
                "UPDATE remote_device_lists SET stream_id = $2, updated_ts = $3 WHERE user_id = $1",
                user_id, stream_id, now,
            )
            if deleted:
                await self._db.execute("DELETE FROM remote_devices WHERE user_id = $1 AND device_id = $2",
                                       user_id, device.device_id)
            else:
                await self._db.execute(
                    """INSERT INTO remote_devices (user_id, device_id, display_name, keys) VALUES ($1, $2, $3, $4)
                       ON CONFLICT (user_id, device_id) DO UPDATE
                       SET display_name = EXCLUDED.display_name, keys = EXCLUDED.keys""",
                    user_id, device.device_id, device.display_name, device.keys,
                )

    async def set_cross_signing(self, user_id: str, master_key: dict[str, Any] | None,
                                self_signing_key: dict[str, Any] | None, now: int) -> None:
        """New cross-signing keys of a tracked user (an m.signing_key_update); absent ones stay."""
        await self._db.execute(
            """UPDATE remote_device_lists SET master_key = coalesce($2, master_key),
                   self_signing_key = coalesce($3, self_signing_key), updated_ts = $4
               WHERE user_id = $1""",
            user_id, master_key, self_signing_key, now,
        )

    async def forget(self, user_ids: Sequence[str]) -> None:
        """Stop tracking: the next query of these users resyncs."""
        await self._db.execute("DELETE FROM remote_device_lists WHERE user_id = ANY($1::text[])", list(user_ids))

    async def shares_room_with(self, user_id: str, server_name: str) -> bool:
        """Whether `user_id` is joined to a room a user of `server_name` is joined to."""
        return bool(await self._db.fetchval(
            """SELECT EXISTS (
                   SELECT 1 FROM current_state theirs JOIN current_state ours ON ours.room_id = theirs.room_id
                   WHERE theirs.type = 'm.room.member' AND theirs.state_key = $1 AND theirs.membership = 'join'
                     AND ours.type = 'm.room.member' AND ours.membership = 'join'
                     AND substring(ours.state_key FROM position(':' IN ours.state_key) + 1) = $2)""",
            user_id, server_name,
        ))

    async def tracked_among(self, user_ids: Sequence[str]) -> list[str]:
        rows = await self._db.fetch("SELECT user_id FROM remote_device_lists WHERE user_id = ANY($1::text[])",
                                    list(user_ids))
        return [r["user_id"] for r in rows]

    async def tracked_members(self, room_id: str) -> list[str]:
        """The room's joined members whose device lists we keep."""
        rows = await self._db.fetch(
            """SELECT c.state_key AS user_id FROM current_state c JOIN remote_device_lists l ON l.user_id = c.state_key
               WHERE c.room_id = $1 AND c.type = 'm.room.member' AND c.membership = 'join'""",
            room_id,
        )
        return [r["user_id"] for r in rows]
