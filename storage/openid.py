"""OpenIdTokenStore: tokens a user hands to a third party to prove who they are. Tables: openid_tokens."""

from __future__ import annotations

from storage.database import Database


class OpenIdTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, token: str, user_id: str, expires_ts: int, now_ts: int) -> None:
        """Store a new token; expired ones are swept on the way, so the table stays small."""
        await self._db.execute("DELETE FROM openid_tokens WHERE expires_ts <= $1", now_ts)
        await self._db.execute("INSERT INTO openid_tokens (token, user_id, expires_ts) VALUES ($1, $2, $3)",
                               token, user_id, expires_ts)

    async def user_of(self, token: str, now_ts: int) -> str | None:
        """The user a token was issued to, while it is valid."""
        return await self._db.fetchval(
            "SELECT user_id FROM openid_tokens WHERE token = $1 AND expires_ts > $2", token, now_ts)
