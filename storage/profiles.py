"""ProfileStore: local users' display names and avatars. Tables: profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ProfileRow:
    user_id: str
    displayname: str | None
    avatar_url: str | None
    fields: dict[str, Any] = field(default_factory=dict)


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_profile(self, user_id: str, displayname: str | None) -> None:
        await self._db.execute(
            "INSERT INTO profiles (user_id, displayname) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            user_id, displayname,
        )

    async def get_profile(self, user_id: str) -> ProfileRow | None:
        row = await self._db.fetchrow(
            "SELECT user_id, displayname, avatar_url, fields FROM profiles WHERE user_id = $1", user_id
        )
        return ProfileRow(**row) if row else None

    async def delete_profile(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM profiles WHERE user_id = $1", user_id)

    async def set_displayname(self, user_id: str, value: str | None) -> None:
        await self._db.execute("UPDATE profiles SET displayname = $2 WHERE user_id = $1", user_id, value)

    async def set_avatar_url(self, user_id: str, value: str | None) -> None:
        await self._db.execute("UPDATE profiles SET avatar_url = $2 WHERE user_id = $1", user_id, value)

    async def set_field(self, user_id: str, key: str, value: Any) -> None:
        await self._db.execute(
            "UPDATE profiles SET fields = fields || jsonb_build_object($2::text, $3::jsonb) WHERE user_id = $1",
            user_id, key, value,
        )

    async def delete_field(self, user_id: str, key: str) -> None:
        await self._db.execute("UPDATE profiles SET fields = fields - $2::text WHERE user_id = $1", user_id, key)
