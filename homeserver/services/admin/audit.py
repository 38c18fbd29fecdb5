"""The audit log of admin actions: every change made through the admin API or the admin page
is recorded here (who, what, on what, when) and can be read back, newest first."""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from storage.admin_audit import AdminAuditStore, AuditEntry

MAX_PAGE = 1000


class AdminAuditLog:
    def __init__(self, store: AdminAuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def record(self, admin_id: str, action: str, target: str | None = None, **details: Any) -> None:
        """Note one admin change; `action` is "<object>.<verb>", e.g. "user.deactivate"."""
        await self._store.add(self._clock.now_ms(), admin_id, action, target, details)

    async def page(self, *, from_token: str | None, limit: int, admin_id: str | None = None,
                   target: str | None = None, action: str | None = None) -> tuple[list[AuditEntry], str | None]:
        """One page, newest first, and the `next_token` of the page after it (None at the end)."""
        if not 0 < limit <= MAX_PAGE:
            raise MatrixError(400, Codes.INVALID_PARAM, f"limit must be between 1 and {MAX_PAGE}")
        before_id = None
        if from_token is not None:
            if not from_token.isdigit() or len(from_token) > 18:
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid from token")
            before_id = int(from_token)
        entries = await self._store.page(before_id, limit + 1, admin_id, target, action)
        if len(entries) > limit:
            return entries[:limit], str(entries[limit - 1].id)
        return entries, None
