"""ToDeviceStore: to-device messages waiting for their device. Tables: device_inbox, to_device_txns."""

from __future__ import annotations

from typing import Any

from storage.database import Database


class ToDeviceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_txn(self, user_id: str, device_id: str, txn_id: str, ts: int) -> bool:
        """Record a sendToDevice transaction; False when it was already seen."""
        row = await self._db.fetchval(
            """INSERT INTO to_device_txns (user_id, device_id, txn_id, ts) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING RETURNING 1""",
            user_id, device_id, txn_id, ts,
        )
        return row is not None

    async def add(self, deliveries: list[tuple[str, str, dict[str, Any]]], stream_id: int) -> None:
        """(user_id, device_id, message) triples, all at one stream position (one request sends
        each device at most one message, so the key stays unique)."""
        if not deliveries:
            return
        users, devices, messages = zip(*deliveries)
        await self._db.execute(
            """INSERT INTO device_inbox (user_id, device_id, stream_id, message)
               SELECT u, d, $4::bigint, m FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS t(u, d, m)""",
            list(users), list(devices), list(messages), stream_id,
        )

    async def acknowledge_and_fetch(self, user_id: str, device_id: str, acknowledged: int, upto: int,
                                    limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Delete the messages up to `acknowledged` and return those in (acknowledged, upto],
        in one round trip."""
        rows = await self._db.fetch(
            """WITH acked AS (DELETE FROM device_inbox WHERE user_id = $1 AND device_id = $2 AND stream_id <= $3)
               SELECT stream_id, message FROM device_inbox WHERE user_id = $1 AND device_id = $2
               AND stream_id > $3 AND stream_id <= $4 ORDER BY stream_id LIMIT $5""",
            user_id, device_id, acknowledged, upto, limit,
        )
        return [(r["stream_id"], r["message"]) for r in rows]

    async def delete_device(self, user_id: str, device_id: str) -> None:
        await self._db.execute("DELETE FROM device_inbox WHERE user_id = $1 AND device_id = $2", user_id, device_id)
