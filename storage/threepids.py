"""Third-party identifiers. ThreepidBindingStore: the 3PIDs our users bound on identity servers
(threepid_id_server_bindings); ThreepidValidationStore: e-mail validation sessions
(threepid_validation_sessions); UserThreepidStore: the 3PIDs of accounts (user_threepids)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ThreepidBinding:
    medium: str
    address: str
    id_server: str


class ThreepidBindingStore:
    """Tables: threepid_id_server_bindings."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user_id: str, medium: str, address: str, id_server: str) -> None:
        await self._db.execute(
            """INSERT INTO threepid_id_server_bindings (user_id, medium, address, id_server)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
            user_id, medium, address, id_server,
        )

    async def of_user(self, user_id: str) -> list[ThreepidBinding]:
        rows = await self._db.fetch(
            """SELECT medium, address, id_server FROM threepid_id_server_bindings WHERE user_id = $1
               ORDER BY medium, address, id_server""",
            user_id,
        )
        return [ThreepidBinding(**r) for r in rows]

    async def remove(self, user_id: str, medium: str, address: str, id_server: str) -> None:
        await self._db.execute(
            """DELETE FROM threepid_id_server_bindings
               WHERE user_id = $1 AND medium = $2 AND address = $3 AND id_server = $4""",
            user_id, medium, address, id_server,
        )


@dataclass(frozen=True, slots=True)
class ValidationSession:
    session_id: str
    client_secret: str
    medium: str
    address: str
    token: str
    send_attempt: int
    created_ts: int
    validated_ts: int | None


@dataclass(frozen=True, slots=True)
class UserThreepid:
    user_id: str
    medium: str
    address: str
    validated_ts: int
    added_ts: int


class ThreepidValidationStore:
    """Tables: threepid_validation_sessions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, client_secret: str, medium: str, address: str) -> ValidationSession | None:
        row = await self._db.fetchrow(
            """SELECT * FROM threepid_validation_sessions
               WHERE client_secret = $1 AND medium = $2 AND address = $3 ORDER BY created_ts DESC LIMIT 1""",
            client_secret, medium, address,
        )
        return ValidationSession(**row) if row else None

    async def get(self, session_id: str) -> ValidationSession | None:
        row = await self._db.fetchrow("SELECT * FROM threepid_validation_sessions WHERE session_id = $1", session_id)
        return ValidationSession(**row) if row else None

    async def create(self, session: ValidationSession) -> None:
        await self._db.execute(
            """INSERT INTO threepid_validation_sessions
               (session_id, client_secret, medium, address, token, send_attempt, created_ts, validated_ts)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            session.session_id, session.client_secret, session.medium, session.address, session.token,
            session.send_attempt, session.created_ts, session.validated_ts,
        )

    async def set_attempt(self, session_id: str, send_attempt: int, token: str) -> None:
        await self._db.execute(
            "UPDATE threepid_validation_sessions SET send_attempt = $2, token = $3 WHERE session_id = $1",
            session_id, send_attempt, token,
        )

    async def validate(self, session_id: str, now_ts: int) -> None:
        await self._db.execute(
            """UPDATE threepid_validation_sessions SET validated_ts = $2
               WHERE session_id = $1 AND validated_ts IS NULL""",
            session_id, now_ts,
        )

    async def delete_older_than(self, ts: int) -> None:
        await self._db.execute("DELETE FROM threepid_validation_sessions WHERE created_ts < $1", ts)


class UserThreepidStore:
    """Tables: user_threepids."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, row: UserThreepid) -> bool:
        """False when the 3PID belongs to another account."""
        owner = await self._db.fetchval(
            """INSERT INTO user_threepids (medium, address, user_id, validated_ts, added_ts)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (medium, address) DO UPDATE SET validated_ts = user_threepids.validated_ts
               RETURNING user_id""",
            row.medium, row.address, row.user_id, row.validated_ts, row.added_ts,
        )
        return owner == row.user_id

    async def owner(self, medium: str, address: str) -> str | None:
        return await self._db.fetchval(
            "SELECT user_id FROM user_threepids WHERE medium = $1 AND address = $2", medium, address)

    async def of_user(self, user_id: str) -> list[UserThreepid]:
        rows = await self._db.fetch(
            "SELECT * FROM user_threepids WHERE user_id = $1 ORDER BY added_ts, medium, address", user_id)
        return [UserThreepid(**r) for r in rows]

    async def remove(self, user_id: str, medium: str, address: str) -> None:
        await self._db.execute(
            "DELETE FROM user_threepids WHERE user_id = $1 AND medium = $2 AND address = $3", user_id, medium, address)

    async def remove_all(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM user_threepids WHERE user_id = $1", user_id)
