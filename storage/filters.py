"""FilterStore: clients' uploaded filters. Tables: user_filters."""

from __future__ import annotations

from typing import Any

from storage.database import Database


class FilterStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user_id: str, filter_json: dict[str, Any]) -> int:
        """Store a filter under the user's next filter ID (IDs count per user from 0)."""
        return await self._db.fetchval(
            """INSERT INTO user_filters (user_id, filter_id, filter)
               SELECT $1, coalesce(max(filter_id) + 1, 0), $2 FROM user_filters WHERE user_id = $1
               RETURNING filter_id""",
            user_id, filter_json,
        )

    async def get(self, user_id: str, filter_id: int) -> dict[str, Any] | None:
        return await self._db.fetchval(
            "SELECT filter FROM user_filters WHERE user_id = $1 AND filter_id = $2", user_id, filter_id
        )
