"""AdminAuditStore: what server admins changed, who and when. Tables: admin_audit_log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: int
    admin_id: str
    action: str
    target: str | None
    details: dict[str, Any]


class AdminAuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, ts: int, admin_id: str, action: str, target: str | None, details: dict[str, Any]) -> int:
        return await self._db.fetchval(
            """INSERT INTO admin_audit_log (ts, admin_id, action, target, details)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            ts, admin_id, action, target, details,
        )

    async def page(self, before_id: int | None, limit: int, admin_id: str | None, target: str | None,
                   action_prefix: str | None) -> list[AuditEntry]:
        """Newest first: entries with an id below `before_id` (all when None), filtered."""
        rows = await self._db.fetch(
            """SELECT id, ts, admin_id, action, target, details FROM admin_audit_log
               WHERE ($1::bigint IS NULL OR id < $1)
                 AND ($2::text IS NULL OR admin_id = $2)
                 AND ($3::text IS NULL OR target = $3)
                 AND ($4::text IS NULL OR starts_with(action, $4))
               ORDER BY id DESC LIMIT $5""",
            before_id, admin_id, target, action_prefix, limit,
        )
        return [AuditEntry(**r) for r in rows]
