"""ServerKeyStore: other servers' verify keys and their signed key responses.
Tables: server_signing_keys, server_key_responses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.core.server_keys import ServerKey
from storage.database import Database


@dataclass(frozen=True, slots=True)
class KeyResponseRow:
    server_name: str
    key_id: str
    from_server: str
    valid_until_ts: int
    fetched_ts: int
    response: dict[str, Any]


class ServerKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_keys(self, server_name: str, key_ids: Iterable[str] | None = None) -> dict[str, ServerKey]:
        """The known keys of a server (all of them, or those of `key_ids`), by key ID."""
        if key_ids is None:
            rows = await self._db.fetch(
                "SELECT key_id, verify_key, valid_until_ts, expired FROM server_signing_keys WHERE server_name = $1",
                server_name,
            )
        else:
            rows = await self._db.fetch(
                """SELECT key_id, verify_key, valid_until_ts, expired FROM server_signing_keys
                   WHERE server_name = $1 AND key_id = ANY($2::text[])""",
                server_name, list(key_ids),
            )
        return {r["key_id"]: ServerKey(server_name, r["key_id"], r["verify_key"], r["valid_until_ts"], r["expired"])
                for r in rows}

    async def store_response(self, server_name: str, from_server: str, response: dict[str, Any],
                             keys: Sequence[ServerKey], fetched_ts: int) -> None:
        """Keep a checked key response (under each key it lists) and its keys. A key's validity
        only grows: a later, shorter answer (say a stale notary's) does not shorten what was
        already proven, nor replace the response that proved it."""
        async with self._db.transaction():
            await self._db.executemany(
                """INSERT INTO server_key_responses
                       (server_name, key_id, from_server, valid_until_ts, fetched_ts, response)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (server_name, key_id, from_server) DO UPDATE
                   SET valid_until_ts = EXCLUDED.valid_until_ts, fetched_ts = EXCLUDED.fetched_ts,
                       response = EXCLUDED.response
                   WHERE server_key_responses.valid_until_ts <= EXCLUDED.valid_until_ts""",
                [(server_name, k.key_id, from_server, int(response["valid_until_ts"]), fetched_ts, response)
                 for k in keys],
            )
            await self._db.executemany(
                """INSERT INTO server_signing_keys
                       (server_name, key_id, verify_key, valid_until_ts, expired, from_server, fetched_ts)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (server_name, key_id) DO UPDATE
                   SET verify_key = EXCLUDED.verify_key, valid_until_ts = EXCLUDED.valid_until_ts,
                       expired = EXCLUDED.expired, from_server = EXCLUDED.from_server,
                       fetched_ts = EXCLUDED.fetched_ts
                   WHERE server_signing_keys.valid_until_ts < EXCLUDED.valid_until_ts""",
                [(k.server_name, k.key_id, k.key, k.valid_until_ts, k.expired, from_server, fetched_ts) for k in keys],
            )

    async def get_responses(self, server_name: str, key_ids: Iterable[str] | None = None) -> list[KeyResponseRow]:
        """The stored key responses of a server (for all its keys, or those of `key_ids`), one
        row per key and vouching server, the longest-valid first."""
        rows = await self._db.fetch(
            """SELECT server_name, key_id, from_server, valid_until_ts, fetched_ts, response
               FROM server_key_responses
               WHERE server_name = $1 AND ($2::text[] IS NULL OR key_id = ANY($2::text[]))
               ORDER BY valid_until_ts DESC, fetched_ts DESC""",
            server_name, list(key_ids) if key_ids is not None else None,
        )
        return [KeyResponseRow(**r) for r in rows]
