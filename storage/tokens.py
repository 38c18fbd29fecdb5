"""TokenStore: access and refresh tokens, stored as sha256 hashes. Tables: access_tokens, refresh_tokens."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class AccessTokenRow:
    id: int
    user_id: str            # whom the token acts as
    device_id: str | None   # None for an admin's "login as" token
    valid_until_ts: int | None
    refresh_token_id: int | None
    is_admin: bool
    is_guest: bool
    deactivated: bool
    token_owner: str        # user_id, or the admin who logged in as user_id
    account_expiration_ts: int | None  # account validity (None: no date set)


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    id: int
    user_id: str
    device_id: str
    next_token_id: int | None


class TokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_access_token(
        self, token_hash: bytes, user_id: str, device_id: str, *, now_ts: int,
        valid_until_ts: int | None = None, refresh_token_id: int | None = None,
    ) -> int:
        return await self._db.fetchval(
            """INSERT INTO access_tokens (token_hash, user_id, device_id, valid_until_ts, refresh_token_id, created_ts)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            token_hash, user_id, device_id, valid_until_ts, refresh_token_id, now_ts,
        )

    async def get_access_token(self, token_hash: bytes) -> AccessTokenRow | None:
        # One round trip: the token with the flags of the user it acts as that the request needs.
        row = await self._db.fetchrow(
            """SELECT t.id, u.user_id, t.device_id, t.valid_until_ts, t.refresh_token_id,
                      u.is_admin, u.is_guest, u.deactivated OR o.deactivated AS deactivated,
                      t.user_id AS token_owner, v.expiration_ts AS account_expiration_ts
               FROM access_tokens t JOIN users o ON o.user_id = t.user_id
               JOIN users u ON u.user_id = coalesce(t.puppets_user_id, t.user_id)
               LEFT JOIN account_validity v ON v.user_id = u.user_id
               WHERE t.token_hash = $1""",
            token_hash,
        )
        return AccessTokenRow(**row) if row else None

    async def add_puppet_token(self, token_hash: bytes, admin_id: str, user_id: str, *, now_ts: int,
                               valid_until_ts: int | None) -> int:
        """A token of `admin_id` acting as `user_id`, on no device."""
        return await self._db.fetchval(
            """INSERT INTO access_tokens (token_hash, user_id, device_id, valid_until_ts, created_ts, puppets_user_id)
               VALUES ($1, $2, NULL, $3, $4, $5) RETURNING id""",
            token_hash, admin_id, valid_until_ts, now_ts, user_id,
        )

    async def delete_access_token(self, token_id: int) -> None:
        await self._db.execute("DELETE FROM access_tokens WHERE id = $1", token_id)

    async def delete_tokens_of_device(self, user_id: str, device_id: str) -> None:
        """Access and refresh tokens of one device (refresh tokens take their access tokens along)."""
        await self._db.execute("DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2", user_id, device_id)
        await self._db.execute("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2", user_id, device_id)

    async def delete_access_tokens_of_user(self, user_id: str, *, except_token_id: int | None = None) -> None:
        await self._db.execute(
            "DELETE FROM access_tokens WHERE user_id = $1 AND ($2::bigint IS NULL OR id <> $2)",
            user_id, except_token_id,
        )

    async def add_refresh_token(self, token_hash: bytes, user_id: str, device_id: str, *, now_ts: int) -> int:
        return await self._db.fetchval(
            """INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            token_hash, user_id, device_id, now_ts,
        )

    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRow | None:
        row = await self._db.fetchrow(
            "SELECT id, user_id, device_id, next_token_id FROM refresh_tokens WHERE token_hash = $1",
            token_hash,
        )
        return RefreshTokenRow(**row) if row else None

    async def delete_refresh_token(self, token_id: int) -> None:
        """Delete a refresh token; its access tokens go with it (ON DELETE CASCADE)."""
        await self._db.execute("DELETE FROM refresh_tokens WHERE id = $1", token_id)

    async def set_next_refresh_token(self, old_id: int, new_id: int) -> None:
        await self._db.execute("UPDATE refresh_tokens SET next_token_id = $2 WHERE id = $1", old_id, new_id)

    async def delete_predecessors(self, refresh_token_id: int) -> None:
        """The token `refresh_token_id` (or an access token issued with it) was used:
        the token it replaced is spent, with its access tokens."""
        await self._db.execute("DELETE FROM refresh_tokens WHERE next_token_id = $1", refresh_token_id)
