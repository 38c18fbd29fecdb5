"""What a user's member event carries by default: their displayname and avatar_url."""

from __future__ import annotations

from typing import Any

from storage.profiles import ProfileStore


class ProfileLookup:
    def __init__(self, profiles: ProfileStore, server_name: str) -> None:
        self._profiles = profiles
        self._server_name = server_name

    async def member_profile(self, user_id: str) -> dict[str, Any]:
        """{"displayname", "avatar_url"} for a local user's member event (only what is set)."""
        if not user_id.endswith(":" + self._server_name):
            return {}  # remote profiles are fetched over federation
        row = await self._profiles.get_profile(user_id)
        if row is None:
            return {}
        content: dict[str, Any] = {}
        if row.displayname is not None:
            content["displayname"] = row.displayname
        if row.avatar_url is not None:
            content["avatar_url"] = row.avatar_url
        return content
