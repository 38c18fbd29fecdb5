"""AccountStore: local user accounts. Tables: users, erased_users."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class UserRow:
    user_id: str
    password_hash: str | None
    is_admin: bool
    is_guest: bool
    user_type: str | None
    deactivated: bool
    created_ts: int


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_user(
        self, user_id: str, password_hash: str | None, *, created_ts: int,
        is_admin: bool = False, is_guest: bool = False, user_type: str | None = None,
        appservice_id: str | None = None,
    ) -> bool:
        """Insert the user; False when the ID is taken (checked atomically by the primary key).
        `appservice_id`: the appservice that registered it in its exclusive namespace."""
        status = await self._db.execute(
            """INSERT INTO users (user_id, password_hash, is_admin, is_guest, user_type, created_ts, appservice_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id) DO NOTHING""",
            user_id, password_hash, is_admin, is_guest, user_type, created_ts, appservice_id,
        )
        return status == "INSERT 0 1"

    async def get_user(self, user_id: str) -> UserRow | None:
        row = await self._db.fetchrow(
            """SELECT user_id, password_hash, is_admin, is_guest, user_type, deactivated, created_ts
               FROM users WHERE user_id = $1""",
            user_id,
        )
        return UserRow(**row) if row else None

    async def user_exists(self, user_id: str) -> bool:
        return bool(await self._db.fetchval("SELECT 1 FROM users WHERE user_id = $1", user_id))

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self._db.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)

    async def upgrade_guest(self, user_id: str, password_hash: str | None) -> None:
        await self._db.execute(
            "UPDATE users SET is_guest = FALSE, password_hash = $2 WHERE user_id = $1 AND is_guest", user_id, password_hash
        )

    async def deactivate(self, user_id: str) -> None:
        await self._db.execute(
            "UPDATE users SET deactivated = TRUE, password_hash = NULL WHERE user_id = $1", user_id
        )

    async def mark_erased(self, user_id: str, now: int) -> None:
        """The user asked for erasure when deactivating (table erased_users)."""
        await self._db.execute(
            "INSERT INTO erased_users (user_id, erased_ts) VALUES ($1, $2) ON CONFLICT DO NOTHING", user_id, now
        )

    async def erased_among(self, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        rows = await self._db.fetch("SELECT user_id FROM erased_users WHERE user_id = ANY($1::text[])",
                                    list(user_ids))
        return {r["user_id"] for r in rows}
