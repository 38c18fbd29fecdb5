"""PresenceStore: each user's last presence. Tables: presence."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    currently_active: bool
    stream_id: int


_COLUMNS = "user_id, state, status_msg, last_active_ts, currently_active, stream_id"


class PresenceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, row: PresenceRow) -> None:
        await self._db.execute(
            f"""INSERT INTO presence ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state, status_msg = EXCLUDED.status_msg,
                    last_active_ts = EXCLUDED.last_active_ts, currently_active = EXCLUDED.currently_active,
                    stream_id = EXCLUDED.stream_id""",
            row.user_id, row.state, row.status_msg, row.last_active_ts, row.currently_active, row.stream_id,
        )

    async def get(self, user_id: str) -> PresenceRow | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM presence WHERE user_id = $1", user_id)
        return PresenceRow(**row) if row else None

    async def written_between(self, after: int, upto: int, limit: int) -> list[PresenceRow]:
        """Every user's presence written in (after, upto], at most `limit` rows (by stream_id)."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM presence WHERE stream_id > $1 AND stream_id <= $2
                ORDER BY stream_id LIMIT $3""",
            after, upto, limit,
        )
        return [PresenceRow(**r) for r in rows]

    async def of_users(self, user_ids: list[str], after: int | None, upto: int) -> list[PresenceRow]:
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM presence WHERE user_id = ANY($1::text[])
                AND stream_id > $2 AND stream_id <= $3""",
            user_ids, after if after is not None else 0, upto,
        )
        return [PresenceRow(**r) for r in rows]
