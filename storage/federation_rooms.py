"""FederationRoomStore: what peers sent us outside the room DAG. Tables: federation_inbound_txns,
stripped_room_state."""

from __future__ import annotations

from typing import Any

from storage.database import Database


class FederationRoomStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def txn_response(self, origin: str, txn_id: str) -> dict[str, Any] | None:
        return await self._db.fetchval(
            "SELECT response FROM federation_inbound_txns WHERE origin = $1 AND txn_id = $2", origin, txn_id)

    async def save_txn_response(self, origin: str, txn_id: str, response: dict[str, Any], now_ms: int) -> None:
        await self._db.execute(
            """INSERT INTO federation_inbound_txns (origin, txn_id, response, received_ts) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING""",
            origin, txn_id, response, now_ms,
        )

    async def save_stripped_state(self, event_id: str, room_id: str, state: list[dict[str, Any]]) -> None:
        await self._db.execute(
            """INSERT INTO stripped_room_state (event_id, room_id, state) VALUES ($1, $2, $3)
               ON CONFLICT (event_id) DO UPDATE SET state = EXCLUDED.state""",
            event_id, room_id, state,
        )

    async def stripped_state(self, event_id: str) -> list[dict[str, Any]] | None:
        return await self._db.fetchval("SELECT state FROM stripped_room_state WHERE event_id = $1", event_id)

    async def delete_room(self, room_id: str) -> None:
        await self._db.execute("DELETE FROM stripped_room_state WHERE room_id = $1", room_id)
