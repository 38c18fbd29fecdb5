"""RateLimitOverrideStore: per-user rate limit overrides set by admins. Tables: ratelimit_override."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class RateLimitOverride:
    messages_per_second: int  # 0: never rate limited
    burst_count: int


class RateLimitOverrideStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> RateLimitOverride | None:
        row = await self._db.fetchrow(
            "SELECT messages_per_second, burst_count FROM ratelimit_override WHERE user_id = $1", user_id)
        return RateLimitOverride(row["messages_per_second"], row["burst_count"]) if row else None

    async def set(self, user_id: str, messages_per_second: int, burst_count: int) -> None:
        await self._db.execute(
            """INSERT INTO ratelimit_override (user_id, messages_per_second, burst_count) VALUES ($1, $2, $3)
               ON CONFLICT (user_id) DO UPDATE SET messages_per_second = EXCLUDED.messages_per_second,
                                                   burst_count = EXCLUDED.burst_count""",
            user_id, messages_per_second, burst_count)

    async def delete(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM ratelimit_override WHERE user_id = $1", user_id)
