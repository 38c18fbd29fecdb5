"""DehydratedDeviceStore: each user's dehydrated device (MSC3814). Tables: dehydrated_devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class DehydratedDeviceRow:
    device_id: str
    device_data: dict[str, Any]


class DehydratedDeviceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> DehydratedDeviceRow | None:
        row = await self._db.fetchrow(
            "SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = $1", user_id)
        return DehydratedDeviceRow(**row) if row else None

    async def put(self, user_id: str, device_id: str, device_data: dict[str, Any], now_ts: int) -> str | None:
        """Make `device_id` the user's dehydrated device; returns the one it replaces, if any."""
        return await self._db.fetchval(
            """WITH old AS (SELECT device_id FROM dehydrated_devices WHERE user_id = $1 FOR UPDATE),
                    new AS (INSERT INTO dehydrated_devices (user_id, device_id, device_data, created_ts)
                            VALUES ($1, $2, $3, $4)
                            ON CONFLICT (user_id) DO UPDATE SET device_id = EXCLUDED.device_id,
                                device_data = EXCLUDED.device_data, created_ts = EXCLUDED.created_ts)
               SELECT device_id FROM old""",
            user_id, device_id, device_data, now_ts,
        )
