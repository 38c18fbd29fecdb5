"""ShortSessionStore: short-lived sessions by kind and token, each taken at most once.
Tables: short_sessions."""

from __future__ import annotations

from typing import Any

from storage.database import Database


class ShortSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, kind: str, token: str, value: Any, expires_ts: int, *, now_ts: int,
                  max_live: int | None = None) -> bool:
        """Keep `value` under (kind, token) until `expires_ts`, dropping the kind's expired
        sessions. With `max_live`, refused (False) when that many of the kind are live already."""
        stored = await self._db.fetchval(
            """
            WITH expired AS (DELETE FROM short_sessions WHERE kind = $1 AND expires_ts < $5)
            INSERT INTO short_sessions (kind, id, value, expires_ts)
            SELECT $1, $2, $3, $4
            WHERE $6::int IS NULL
               OR (SELECT count(*) FROM short_sessions WHERE kind = $1 AND expires_ts >= $5) < $6
            RETURNING true
            """,
            kind, token, value, expires_ts, now_ts, max_live,
        )
        return bool(stored)

    async def take(self, kind: str, token: str, now_ts: int) -> Any | None:
        """The session's value, once (it is deleted); None when unknown or expired."""
        return await self._db.fetchval(
            "DELETE FROM short_sessions WHERE kind = $1 AND id = $2 "
            "RETURNING CASE WHEN expires_ts >= $3 THEN value END",
            kind, token, now_ts,
        )
