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


_COLUMNS = "token, uses_allowed, pending, completed, expiry_ts"


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
            f"SELECT {_COLUMNS} FROM registration_tokens WHERE token = $1",
            token,
        )
        return RegistrationTokenRow(**row) if row else None

    async def list(self, valid: bool | None = None, now_ts: int = 0) -> list[RegistrationTokenRow]:
        """All tokens; with `valid`, only those that are (or are not) still usable at `now_ts`."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM registration_tokens
                WHERE $1::boolean IS NULL OR $1 = ((expiry_ts IS NULL OR expiry_ts > $2)
                                                  AND (uses_allowed IS NULL OR pending + completed < uses_allowed))
                ORDER BY token""",
            valid, now_ts,
        )
        return [RegistrationTokenRow(**r) for r in rows]

    async def update(self, token: str, *, set_uses: bool, uses_allowed: int | None, set_expiry: bool,
                     expiry_ts: int | None) -> RegistrationTokenRow | None:
        """Change the uses allowed and/or the expiry (each only when its `set_` flag is true);
        the token as it now is, or None when there is no such token."""
        row = await self._db.fetchrow(
            f"""UPDATE registration_tokens
                SET uses_allowed = CASE WHEN $2 THEN $3 ELSE uses_allowed END,
                    expiry_ts = CASE WHEN $4 THEN $5 ELSE expiry_ts END
                WHERE token = $1 RETURNING {_COLUMNS}""",
            token, set_uses, uses_allowed, set_expiry, expiry_ts,
        )
        return RegistrationTokenRow(**row) if row else None

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
