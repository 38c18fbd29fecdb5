"""ThreepidBindingStore: the 3PIDs our users bound on identity servers. Tables: threepid_id_server_bindings."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ThreepidBinding:
    medium: str
    address: str
    id_server: str


class ThreepidBindingStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user_id: str, medium: str, address: str, id_server: str) -> None:
        await self._db.execute(
            """INSERT INTO threepid_id_server_bindings (user_id, medium, address, id_server)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
            user_id, medium, address, id_server,
        )

    async def of_user(self, user_id: str) -> list[ThreepidBinding]:
        rows = await self._db.fetch(
            """SELECT medium, address, id_server FROM threepid_id_server_bindings WHERE user_id = $1
               ORDER BY medium, address, id_server""",
            user_id,
        )
        return [ThreepidBinding(**r) for r in rows]

    async def remove(self, user_id: str, medium: str, address: str, id_server: str) -> None:
        await self._db.execute(
            """DELETE FROM threepid_id_server_bindings
               WHERE user_id = $1 AND medium = $2 AND address = $3 AND id_server = $4""",
            user_id, medium, address, id_server,
        )
