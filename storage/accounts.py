"""AccountStore: local user accounts. Tables: users, erased_users, user_external_ids, account_validity."""

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
    shadow_banned: bool = False
    locked: bool = False
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class RestrictedUser:
    """An account with a moderation flag set."""
    user_id: str
    shadow_banned: bool
    locked: bool
    suspended: bool


_USER_COLUMNS = "user_id, password_hash, is_admin, is_guest, user_type, deactivated, created_ts, shadow_banned, locked, suspended"


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
        row = await self._db.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1", user_id)
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

    async def mark_not_erased(self, user_id: str) -> None:
        """A reactivated account is no longer erased (as Synapse)."""
        await self._db.execute("DELETE FROM erased_users WHERE user_id = $1", user_id)

    async def reactivate(self, user_id: str) -> None:
        await self._db.execute("UPDATE users SET deactivated = FALSE WHERE user_id = $1", user_id)

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        await self._db.execute("UPDATE users SET is_admin = $2 WHERE user_id = $1", user_id, is_admin)

    async def set_user_type(self, user_id: str, user_type: str | None) -> None:
        await self._db.execute("UPDATE users SET user_type = $2 WHERE user_id = $1", user_id, user_type)

    async def set_flag(self, user_id: str, flag: str, value: bool) -> None:
        """Set one moderation flag: shadow_banned, locked or suspended."""
        if flag not in ("shadow_banned", "locked", "suspended"):
            raise ValueError(flag)
        await self._db.execute(f"UPDATE users SET {flag} = $2 WHERE user_id = $1", user_id, value)

    async def restricted_users(self) -> list[RestrictedUser]:
        rows = await self._db.fetch(
            """SELECT user_id, shadow_banned, locked, suspended FROM users
               WHERE shadow_banned OR locked OR suspended""")
        return [RestrictedUser(**r) for r in rows]

    # --- external identities (SSO) ------------------------------------------------------------

    async def external_ids_of(self, user_id: str) -> list[tuple[str, str]]:
        rows = await self._db.fetch(
            "SELECT auth_provider, external_id FROM user_external_ids WHERE user_id = $1 ORDER BY 1, 2", user_id)
        return [(r["auth_provider"], r["external_id"]) for r in rows]

    async def replace_external_ids(self, user_id: str, external_ids: Sequence[tuple[str, str]]) -> bool:
        """Make `external_ids` the user's whole list; False (nothing changed) when one of them
        belongs to another user. Call inside a transaction."""
        await self._db.execute("DELETE FROM user_external_ids WHERE user_id = $1", user_id)
        if not external_ids:
            return True
        taken = await self._db.fetchval(
            """SELECT count(*) FROM user_external_ids e
               JOIN unnest($1::text[], $2::text[]) AS n (auth_provider, external_id) USING (auth_provider, external_id)""",
            [p for p, _ in external_ids], [e for _, e in external_ids])
        if taken:
            return False
        await self._db.execute(
            """INSERT INTO user_external_ids (auth_provider, external_id, user_id)
               SELECT DISTINCT p, e, $3 FROM unnest($1::text[], $2::text[]) AS n (p, e)""",
            [p for p, _ in external_ids], [e for _, e in external_ids], user_id)
        return True

    async def user_by_external_id(self, auth_provider: str, external_id: str) -> str | None:
        return await self._db.fetchval(
            "SELECT user_id FROM user_external_ids WHERE auth_provider = $1 AND external_id = $2",
            auth_provider, external_id)

    # --- account validity --------------------------------------------------------------------

    async def set_expiration(self, user_id: str, expiration_ts: int, *, email_sent: bool = False) -> None:
        await self._db.execute(
            """INSERT INTO account_validity (user_id, expiration_ts, email_sent) VALUES ($1, $2, $3)
               ON CONFLICT (user_id) DO UPDATE SET expiration_ts = $2, email_sent = $3""",
            user_id, expiration_ts, email_sent)

    async def add_expiration_if_missing(self, user_id: str, expiration_ts: int) -> None:
        await self._db.execute(
            "INSERT INTO account_validity (user_id, expiration_ts) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            user_id, expiration_ts)

    async def delete_expiration(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM account_validity WHERE user_id = $1", user_id)
