"""DeviceListStore: when a user's devices or keys changed. Tables: device_list_changes,
device_list_private_changes. Also read: current_state (written by EventStore), for who shares
a room with the viewer."""

from __future__ import annotations

from storage.database import Database
from storage.sync import SHARES_A_ROOM


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

    async def changed_sharing_a_room(self, viewer: str, after: int, upto: int) -> set[str]:
        """Users whose devices changed in (after, upto] and who share a room with `viewer` now,
        and `viewer` themselves (their other devices): the changes of the window first, then
        one keyed probe per changed user, so it costs what changed, not the viewer's rooms."""
        rows = await self._db.fetch(
            f"""SELECT c.user_id FROM (
                    SELECT DISTINCT user_id FROM device_list_changes WHERE stream_id > $2 AND stream_id <= $3
                ) c {SHARES_A_ROOM.format(user="c.user_id")}
                WHERE c.user_id = $1 OR sharing.shares""",
            viewer, after, upto,
        )
        return {r["user_id"] for r in rows}

    async def latest_stream_id(self, user_id: str) -> int:
        return await self._db.fetchval(
            "SELECT coalesce(max(stream_id), 0) FROM device_list_changes WHERE user_id = $1", user_id)
