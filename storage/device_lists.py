"""DeviceListStore: when a user's devices or keys changed. Tables: device_list_changes,
device_list_private_changes."""

from __future__ import annotations

from storage.database import Database


class DeviceListStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def mark_changed(self, user_ids: list[str], stream_id: int) -> None:
        await self._db.execute(
            """INSERT INTO device_list_changes (user_id, stream_id) SELECT u, $2 FROM unnest($1::text[]) AS u
               ON CONFLICT DO NOTHING""",
            user_ids, stream_id,
        )

    async def mark_changed_for(self, viewer: str, user_ids: list[str], stream_id: int) -> None:
        """A change that only `viewer` is told of."""
        await self._db.execute(
            """INSERT INTO device_list_private_changes (viewer, user_id, stream_id)
               SELECT $1, u, $3 FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING""",
            viewer, user_ids, stream_id,
        )

    async def changed_for_viewer(self, viewer: str, after: int, upto: int) -> set[str]:
        rows = await self._db.fetch(
            """SELECT DISTINCT user_id FROM device_list_private_changes
               WHERE viewer = $1 AND stream_id > $2 AND stream_id <= $3""",
            viewer, after, upto,
        )
        return {r["user_id"] for r in rows}

    async def changed_between(self, user_ids: list[str], after: int, upto: int) -> set[str]:
        rows = await self._db.fetch(
            """SELECT DISTINCT user_id FROM device_list_changes WHERE user_id = ANY($1::text[])
               AND stream_id > $2 AND stream_id <= $3""",
            user_ids, after, upto,
        )
        return {r["user_id"] for r in rows}

    async def latest_stream_id(self, user_id: str) -> int:
        return await self._db.fetchval(
            "SELECT coalesce(max(stream_id), 0) FROM device_list_changes WHERE user_id = $1", user_id)
