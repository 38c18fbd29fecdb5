"""DeviceStore: the devices of local users. Tables: devices.

Deleting a device deletes its access and refresh tokens too (foreign keys with ON DELETE
CASCADE), so a removed device can never act again.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class DeviceRow:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None
    last_seen_user_agent: str | None
    created_ts: int


_COLUMNS = "user_id, device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent, created_ts"


class DeviceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert_device(self, user_id: str, device_id: str, display_name: str | None, *, now_ts: int) -> bool:
        """Create the device, or keep an existing one (a login that reuses a device ID); True
        when it was created.

        An existing device keeps its display name unless a new one is given, as Synapse does.
        """
        return await self._db.fetchval(
            f"""INSERT INTO devices ({_COLUMNS}) VALUES ($1, $2, $3, NULL, NULL, NULL, $4)
                ON CONFLICT (user_id, device_id) DO UPDATE
                SET display_name = COALESCE(EXCLUDED.display_name, devices.display_name)
                RETURNING xmax = 0""",
            user_id, device_id, display_name, now_ts,
        )

    async def get_device(self, user_id: str, device_id: str) -> DeviceRow | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM devices WHERE user_id = $1 AND device_id = $2", user_id, device_id
        )
        return DeviceRow(**row) if row else None

    async def list_devices(self, user_id: str) -> list[DeviceRow]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_ts, device_id", user_id
        )
        return [DeviceRow(**r) for r in rows]

    async def set_display_name(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        status = await self._db.execute(
            "UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2",
            user_id, device_id, display_name,
        )
        return status != "UPDATE 0"

    async def record_last_seen(self, user_id: str, device_id: str, ts: int, ip: str | None, user_agent: str | None) -> None:
        await self._db.execute(
            """UPDATE devices SET last_seen_ts = $3, last_seen_ip = $4, last_seen_user_agent = $5
               WHERE user_id = $1 AND device_id = $2""",
            user_id, device_id, ts, ip, user_agent,
        )

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> list[str]:
        """Delete the listed devices (tokens cascade); returns the IDs that existed."""
        rows = await self._db.fetch(
            "DELETE FROM devices WHERE user_id = $1 AND device_id = ANY($2::text[]) RETURNING device_id",
            user_id, device_ids,
        )
        return [r["device_id"] for r in rows]

    async def delete_all_devices(self, user_id: str, *, except_device_id: str | None = None) -> list[str]:
        rows = await self._db.fetch(
            """DELETE FROM devices WHERE user_id = $1 AND ($2::text IS NULL OR device_id <> $2)
               RETURNING device_id""",
            user_id, except_device_id,
        )
        return [r["device_id"] for r in rows]
