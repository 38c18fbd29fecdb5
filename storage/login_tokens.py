"""LoginTokenStore: single-use login tokens from single sign-on. Tables: login_tokens."""

from __future__ import annotations

from storage.database import Database


class LoginTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, token: str, user_id: str, expires_ts: int) -> None:
        await self._db.execute(
            "INSERT INTO login_tokens (token, user_id, expires_ts) VALUES ($1, $2, $3)", token, user_id, expires_ts)

    async def consume(self, token: str, now_ts: int) -> str | None:
        """The token's user, once: the token is deleted (and expired ones with it)."""
        user_id = await self._db.fetchval(
            "DELETE FROM login_tokens WHERE token = $1 RETURNING CASE WHEN expires_ts >= $2 THEN user_id END",
            token, now_ts,
        )
        await self._db.execute("DELETE FROM login_tokens WHERE expires_ts < $1", now_ts)
        return user_id
