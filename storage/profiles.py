"""ProfileStore: local users' display names and avatars. Tables: profiles."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ProfileRow:
    user_id: str
    displayname: str | None
    avatar_url: str | None


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
            "SELECT user_id, displayname, avatar_url FROM profiles WHERE user_id = $1", user_id
        )
        return ProfileRow(**row) if row else None
