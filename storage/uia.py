"""UIAuthStore: user-interactive auth sessions. Tables: ui_auth_sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class UIAuthSessionRow:
    session_id: str
    operation: str
    user_id: str | None
    completed: list[str]
    result: dict[str, Any]
    created_ts: int


class UIAuthStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_session(self, session_id: str, operation: str, user_id: str | None, *, now_ts: int) -> None:
        await self._db.execute(
            "INSERT INTO ui_auth_sessions (session_id, operation, user_id, created_ts) VALUES ($1, $2, $3, $4)",
            session_id, operation, user_id, now_ts,
        )

    async def get_session(self, session_id: str) -> UIAuthSessionRow | None:
        row = await self._db.fetchrow(
            """SELECT session_id, operation, user_id, completed, result, created_ts
               FROM ui_auth_sessions WHERE session_id = $1""",
            session_id,
        )
        return UIAuthSessionRow(**row) if row else None

    async def mark_stage_completed(self, session_id: str, stage: str, result: dict[str, Any]) -> list[str]:
        """Add `stage` to the session's completed stages (once) and merge `result`."""
        return await self._db.fetchval(
            """UPDATE ui_auth_sessions
               SET completed = CASE WHEN completed ? $2 THEN completed ELSE completed || to_jsonb($2::text) END,
                   result = result || $3::jsonb
               WHERE session_id = $1 RETURNING completed""",
            session_id, stage, result,
        )

    async def merge_result(self, session_id: str, values: dict[str, Any]) -> None:
        """Set top-level keys of the session's `result`."""
        await self._db.execute(
            "UPDATE ui_auth_sessions SET result = result || $2::jsonb WHERE session_id = $1", session_id, values,
        )

    async def merge_data(self, session_id: str, key: str, values: dict[str, Any]) -> None:
        """Merge `values` into the object at `result[key]`."""
        await self._db.execute(
            """UPDATE ui_auth_sessions
               SET result = jsonb_set(result, ARRAY[$2::text], COALESCE(result -> $2, '{}'::jsonb) || $3::jsonb)
               WHERE session_id = $1""",
            session_id, key, values,
        )

    async def delete_session(self, session_id: str) -> None:
        await self._db.execute("DELETE FROM ui_auth_sessions WHERE session_id = $1", session_id)

    async def delete_expired(self, older_than_ts: int) -> None:
        await self._db.execute("DELETE FROM ui_auth_sessions WHERE created_ts < $1", older_than_ts)
