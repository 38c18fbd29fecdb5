"""AuxStreamStore: positions of the aux stream (account data, receipts, to-device, device lists,
presence). Sequence: aux_stream_seq."""

from __future__ import annotations

from storage.database import Database


class AuxStreamStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def next_position(self) -> int:
        return await self._db.fetchval("SELECT nextval('aux_stream_seq')")

    async def current_position(self) -> int:
        row = await self._db.fetchrow("SELECT last_value, is_called FROM aux_stream_seq")
        return row["last_value"] if row["is_called"] else 0
