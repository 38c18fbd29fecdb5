"""AccountDataStore: a user's global and per-room account data. Tables: account_data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class AccountDataRow:
    room_id: str  # '' for global account data
    type: str
    content: dict[str, Any]
    stream_id: int


class AccountDataStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, user_id: str, room_id: str, data_type: str, content: dict[str, Any], stream_id: int) -> None:
        await self._db.execute(
            """INSERT INTO account_data (user_id, room_id, type, content, stream_id) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = EXCLUDED.content,
                   stream_id = EXCLUDED.stream_id""",
            user_id, room_id, data_type, content, stream_id,
        )

    async def get(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
        return await self._db.fetchval(
            "SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3",
            user_id, room_id, data_type,
        )

    async def global_of_users(self, user_ids: list[str], data_type: str) -> dict[str, dict[str, Any]]:
        """user -> their global account data of one type, for those of `user_ids` who have it."""
        rows = await self._db.fetch(
            "SELECT user_id, content FROM account_data WHERE user_id = ANY($1::text[]) AND room_id = '' AND type = $2",
            user_ids, data_type,
        )
        return {r["user_id"]: r["content"] for r in rows}

    async def all_of(self, user_id: str) -> list[AccountDataRow]:
        rows = await self._db.fetch(
            "SELECT room_id, type, content, stream_id FROM account_data WHERE user_id = $1 ORDER BY room_id, type",
            user_id)
        return [AccountDataRow(**r) for r in rows]
    async def of_type(self, user_id: str, data_type: str) -> dict[str, dict[str, Any]]:
        """room -> the user's per-room account data of one type, for all their rooms at once."""
        rows = await self._db.fetch(
            "SELECT room_id, content FROM account_data WHERE user_id = $1 AND type = $2 AND room_id <> ''",
            user_id, data_type,
        )
        return {r["room_id"]: r["content"] for r in rows}

    async def changed(self, user_id: str, after: int | None, upto: int) -> list[AccountDataRow]:
        """Every entry written in (after, upto]; all of them up to `upto` when `after` is None."""
        rows = await self._db.fetch(
            """SELECT room_id, type, content, stream_id FROM account_data
               WHERE user_id = $1 AND stream_id > $2 AND stream_id <= $3 ORDER BY stream_id""",
            user_id, after if after is not None else 0, upto,
        )
        return [AccountDataRow(**r) for r in rows]

    async def delete_room(self, room_id: str) -> None:
        """Every user's account data about a room (tags, read markers...): the room is gone."""
        await self._db.execute("DELETE FROM account_data WHERE room_id = $1", room_id)
