"""RegistrationTokenStore: tokens that allow registration when it requires one. Tables: registration_tokens."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class RegistrationTokenRow:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_ts: int | None


class RegistrationTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, token: str, uses_allowed: int | None, expiry_ts: int | None) -> bool:
        status = await self._db.execute(
            """INSERT INTO registration_tokens (token, uses_allowed, expiry_ts) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            token, uses_allowed, expiry_ts,
        )
        return status == "INSERT 0 1"

    async def get(self, token: str) -> RegistrationTokenRow | None:
        row = await self._db.fetchrow(
            "SELECT token, uses_allowed, pending, completed, expiry_ts FROM registration_tokens WHERE token = $1",
            token,
        )
        return RegistrationTokenRow(**row) if row else None

    async def list(self) -> list[RegistrationTokenRow]:
        rows = await self._db.fetch(
            "SELECT token, uses_allowed, pending, completed, expiry_ts FROM registration_tokens ORDER BY token"
        )
        return [RegistrationTokenRow(**r) for r in rows]

    async def reserve_use(self, token: str, now_ts: int) -> bool:
        """Count one pending use if the token is still valid; atomic against concurrent registrations."""
        status = await self._db.execute(
            """UPDATE registration_tokens SET pending = pending + 1
               WHERE token = $1 AND (expiry_ts IS NULL OR expiry_ts > $2)
                 AND (uses_allowed IS NULL OR pending + completed < uses_allowed)""",
            token, now_ts,
        )
        return status == "UPDATE 1"

    async def complete_use(self, token: str) -> None:
        await self._db.execute(
            "UPDATE registration_tokens SET pending = pending - 1, completed = completed + 1 WHERE token = $1",
            token,
        )

    async def delete(self, token: str) -> bool:
        status = await self._db.execute("DELETE FROM registration_tokens WHERE token = $1", token)
        return status == "DELETE 1"
