"""KeyBackupStore: server-side backups of room keys. Tables: e2e_room_key_versions, e2e_room_keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class BackupVersion:
    version: int
    algorithm: str
    auth_data: Any  # what the client sent (an object, per the spec)
    etag: int


@dataclass(frozen=True, slots=True)
class BackedUpKey:
    room_id: str
    session_id: str
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: Any  # what the client sent (an object, per the spec)


_KEY_COLUMNS = "room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"


class KeyBackupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_version(self, user_id: str, algorithm: str, auth_data: Any) -> int:
        return await self._db.fetchval(
            """INSERT INTO e2e_room_key_versions (user_id, version, algorithm, auth_data)
               SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM e2e_room_key_versions WHERE user_id = $1
               RETURNING version""",
            user_id, algorithm, auth_data,
        )

    async def get_version(self, user_id: str, version: int | None) -> BackupVersion | None:
        """A live version, or the latest one when `version` is None."""
        row = await self._db.fetchrow(
            """SELECT version, algorithm, auth_data, etag FROM e2e_room_key_versions
               WHERE user_id = $1 AND NOT deleted AND ($2::bigint IS NULL OR version = $2)
               ORDER BY version DESC LIMIT 1""",
            user_id, version,
        )
        return BackupVersion(**row) if row else None

    async def update_version(self, user_id: str, version: int, auth_data: Any) -> bool:
        status = await self._db.execute(
            """UPDATE e2e_room_key_versions SET auth_data = $3 WHERE user_id = $1 AND version = $2 AND NOT deleted""",
            user_id, version, auth_data,
        )
        return status != "UPDATE 0"

    async def delete_version(self, user_id: str, version: int) -> bool:
        status = await self._db.execute(
            """WITH keys AS (DELETE FROM e2e_room_keys WHERE user_id = $1 AND version = $2)
               UPDATE e2e_room_key_versions SET deleted = TRUE WHERE user_id = $1 AND version = $2 AND NOT deleted""",
            user_id, version,
        )
        return status != "UPDATE 0"

    async def bump_etag(self, user_id: str, version: int) -> None:
        await self._db.execute(
            "UPDATE e2e_room_key_versions SET etag = etag + 1 WHERE user_id = $1 AND version = $2", user_id, version
        )

    async def count(self, user_id: str, version: int) -> int:
        return await self._db.fetchval(
            "SELECT count(*) FROM e2e_room_keys WHERE user_id = $1 AND version = $2", user_id, version
        )

    async def get_keys(self, user_id: str, version: int, room_id: str | None = None,
                       session_id: str | None = None) -> list[BackedUpKey]:
        rows = await self._db.fetch(
            f"""SELECT {_KEY_COLUMNS} FROM e2e_room_keys WHERE user_id = $1 AND version = $2
                AND ($3::text IS NULL OR room_id = $3) AND ($4::text IS NULL OR session_id = $4)""",
            user_id, version, room_id, session_id,
        )
        return [BackedUpKey(**r) for r in rows]

    async def put_keys(self, user_id: str, version: int, keys: list[BackedUpKey]) -> None:
        if not keys:
            return
        await self._db.execute(
            """INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index,
                                          forwarded_count, is_verified, session_data)
               SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::int[], $6::int[], $7::bool[], $8::jsonb[])
               ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
                   first_message_index = EXCLUDED.first_message_index, forwarded_count = EXCLUDED.forwarded_count,
                   is_verified = EXCLUDED.is_verified, session_data = EXCLUDED.session_data""",
            user_id, version, [k.room_id for k in keys], [k.session_id for k in keys],
            [k.first_message_index for k in keys], [k.forwarded_count for k in keys],
            [k.is_verified for k in keys], [k.session_data for k in keys],
        )

    async def delete_keys(self, user_id: str, version: int, room_id: str | None = None,
                          session_id: str | None = None) -> None:
        await self._db.execute(
            """DELETE FROM e2e_room_keys WHERE user_id = $1 AND version = $2
               AND ($3::text IS NULL OR room_id = $3) AND ($4::text IS NULL OR session_id = $4)""",
            user_id, version, room_id, session_id,
        )
