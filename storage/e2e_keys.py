"""E2EKeyStore: device keys, one-time and fallback keys, cross-signing keys and signatures.
Tables: e2e_device_keys, e2e_one_time_keys, e2e_fallback_keys, e2e_cross_signing_keys, e2e_signatures."""

from __future__ import annotations

from typing import Any

from storage.database import Database


class E2EKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- device keys -------------------------------------------------------------------------

    async def get_device_keys(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        return await self._db.fetchval(
            "SELECT keys FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2", user_id, device_id
        )

    async def set_device_keys(self, user_id: str, device_id: str, keys: dict[str, Any]) -> None:
        await self._db.execute(
            """INSERT INTO e2e_device_keys (user_id, device_id, keys) VALUES ($1, $2, $3)
               ON CONFLICT (user_id, device_id) DO UPDATE SET keys = EXCLUDED.keys""",
            user_id, device_id, keys,
        )

    async def devices_with_keys(self, user_ids: list[str]) -> list[tuple[str, str, dict[str, Any] | None, str | None]]:
        """(user_id, device_id, device keys or None, display name) of every device of these users."""
        rows = await self._db.fetch(
            """SELECT d.user_id, d.device_id, k.keys, d.display_name FROM devices d
               LEFT JOIN e2e_device_keys k ON k.user_id = d.user_id AND k.device_id = d.device_id
               WHERE d.user_id = ANY($1::text[])""",
            user_ids,
        )
        return [(r["user_id"], r["device_id"], r["keys"], r["display_name"]) for r in rows]

    async def delete_device(self, user_id: str, device_id: str) -> None:
        await self._db.execute(
            """WITH a AS (DELETE FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2),
                    b AS (DELETE FROM e2e_fallback_keys WHERE user_id = $1 AND device_id = $2),
                    c AS (DELETE FROM e2e_signatures WHERE target_user_id = $1 AND target_key_id = $2)
               DELETE FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2""",
            user_id, device_id,
        )

    # --- one-time and fallback keys ----------------------------------------------------------

    async def existing_one_time_keys(self, user_id: str, device_id: str,
                                     ids: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """(algorithm, key_id) -> stored key, for those of `ids` already uploaded."""
        if not ids:
            return {}
        rows = await self._db.fetch(
            """SELECT algorithm, key_id, key_json FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2
               AND (algorithm, key_id) IN (SELECT * FROM unnest($3::text[], $4::text[]))""",
            user_id, device_id, [a for a, _ in ids], [k for _, k in ids],
        )
        return {(r["algorithm"], r["key_id"]): r["key_json"] for r in rows}

    async def add_one_time_keys(self, user_id: str, device_id: str, keys: list[tuple[str, str, Any]]) -> None:
        if not keys:
            return
        await self._db.execute(
            """INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json)
               SELECT $1, $2, a, k, j FROM unnest($3::text[], $4::text[], $5::jsonb[]) AS t(a, k, j)
               ON CONFLICT DO NOTHING""",
            user_id, device_id, [a for a, _, _ in keys], [k for _, k, _ in keys], [j for _, _, j in keys],
        )

    async def one_time_key_counts(self, user_id: str, device_id: str) -> dict[str, int]:
        rows = await self._db.fetch(
            """SELECT algorithm, count(*) AS n FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2
               GROUP BY algorithm""",
            user_id, device_id,
        )
        return {r["algorithm"]: r["n"] for r in rows}

    async def set_fallback_key(self, user_id: str, device_id: str, algorithm: str, key_id: str, key: Any) -> None:
        """A new fallback key replaces the old one; re-uploading the same one keeps its used flag."""
        await self._db.execute(
            """INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (user_id, device_id, algorithm) DO UPDATE
                   SET key_id = EXCLUDED.key_id, key_json = EXCLUDED.key_json,
                       used = e2e_fallback_keys.used AND e2e_fallback_keys.key_id = EXCLUDED.key_id
                                AND e2e_fallback_keys.key_json = EXCLUDED.key_json""",
            user_id, device_id, algorithm, key_id, key,
        )

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]:
        rows = await self._db.fetch(
            "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = $1 AND device_id = $2 AND NOT used",
            user_id, device_id,
        )
        return [r["algorithm"] for r in rows]

    async def claim(self, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str], tuple[str, str, Any]]:
        """Claim one key per (user, device, algorithm): a one-time key (deleted as it is taken,
        so two claims never get the same one), else the fallback key (marked used).
        Returns (user, device) -> (algorithm, key_id, key)."""
        if not wanted:
            return {}
        users, devices, algorithms = (list(x) for x in zip(*wanted))
        rows = await self._db.fetch(
            """WITH wanted AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS t(u, d, a)),
               picked AS (
                   SELECT o.* FROM wanted w CROSS JOIN LATERAL (
                       SELECT user_id, device_id, algorithm, key_id FROM e2e_one_time_keys
                       WHERE user_id = w.u AND device_id = w.d AND algorithm = w.a
                       ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) o),
               taken AS (
                   DELETE FROM e2e_one_time_keys o USING picked p
                   WHERE o.user_id = p.user_id AND o.device_id = p.device_id AND o.algorithm = p.algorithm
                     AND o.key_id = p.key_id
                   RETURNING o.user_id, o.device_id, o.algorithm, o.key_id, o.key_json),
               fallback AS (
                   UPDATE e2e_fallback_keys f SET used = TRUE FROM wanted w
                   WHERE f.user_id = w.u AND f.device_id = w.d AND f.algorithm = w.a
                     AND NOT EXISTS (SELECT 1 FROM picked p WHERE p.user_id = w.u AND p.device_id = w.d
                                     AND p.algorithm = w.a)
                   RETURNING f.user_id, f.device_id, f.algorithm, f.key_id, f.key_json)
               SELECT * FROM taken UNION ALL SELECT * FROM fallback""",
            users, devices, algorithms,
        )
        return {(r["user_id"], r["device_id"]): (r["algorithm"], r["key_id"], r["key_json"]) for r in rows}

    # --- cross-signing -----------------------------------------------------------------------

    async def cross_signing_keys(self, user_ids: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT user_id, key_type, key_json FROM e2e_cross_signing_keys WHERE user_id = ANY($1::text[])",
            user_ids,
        )
        return {(r["user_id"], r["key_type"]): r["key_json"] for r in rows}

    async def set_cross_signing_key(self, user_id: str, key_type: str, key: dict[str, Any]) -> None:
        await self._db.execute(
            """INSERT INTO e2e_cross_signing_keys (user_id, key_type, key_json) VALUES ($1, $2, $3)
               ON CONFLICT (user_id, key_type) DO UPDATE SET key_json = EXCLUDED.key_json""",
            user_id, key_type, key,
        )

    async def add_signatures(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        """(signer_user_id, signer_key_id, target_user_id, target_key_id, signature) rows."""
        if not rows:
            return
        columns = list(zip(*rows))
        await self._db.execute(
            """INSERT INTO e2e_signatures (signer_user_id, signer_key_id, target_user_id, target_key_id, signature)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
               ON CONFLICT (signer_user_id, signer_key_id, target_user_id, target_key_id)
               DO UPDATE SET signature = EXCLUDED.signature""",
            *(list(c) for c in columns),
        )

    async def signatures_on(self, target_user_ids: list[str]) -> list[tuple[str, str, str, str, str]]:
        rows = await self._db.fetch(
            """SELECT signer_user_id, signer_key_id, target_user_id, target_key_id, signature FROM e2e_signatures
               WHERE target_user_id = ANY($1::text[])""",
            target_user_ids,
        )
        return [tuple(r) for r in rows]
