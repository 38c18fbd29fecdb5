"""Admins' rate limit overrides for one user (Synapse's admin API "Override ratelimiting for
users"): read, set and remove. `messages_per_second` 0 exempts the user from every limit;
other values replace rc_message for them. Changes are recorded in the audit log, in the same
transaction as the change, and take effect at once (the limiter's cache is told).
"""

from __future__ import annotations

from typing import Any

from homeserver.core.ids import is_valid_user_id, server_name_of
from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.ratelimit import RateLimiter
from storage.accounts import AccountStore
from storage.database import Database

# The column is a BIGINT.
MAX_VALUE = 2**63 - 1


class UserRateLimitAdmin:
    def __init__(self, db: Database, accounts: AccountStore, limiter: RateLimiter, audit: AdminAuditLog,
                 server_name: str) -> None:
        self._db = db
        self._accounts = accounts
        self._limiter = limiter
        self._audit = audit
        self._server_name = server_name

    async def get(self, user_id: str) -> dict[str, int]:
        """The override, or {} when the user has none."""
        await self._require_local_user(user_id, "Can only look up local users")
        override = await self._limiter.override_of(user_id)
        if override is None:
            return {}
        return {"messages_per_second": override.messages_per_second, "burst_count": override.burst_count}

    async def set(self, admin_id: str, user_id: str, body: dict[str, Any]) -> dict[str, int]:
        await self._require_local_user(user_id, "Only local users can be ratelimited")
        values = {name: _count(body, name) for name in ("messages_per_second", "burst_count")}
        async with self._db.transaction():
            await self._limiter.set_override(user_id, values["messages_per_second"], values["burst_count"])
            await self._audit.record(admin_id, "user.set_ratelimit", user_id, **values)
        return values

    async def delete(self, admin_id: str, user_id: str) -> None:
        await self._require_local_user(user_id, "Only local users can be ratelimited")
        async with self._db.transaction():
            await self._limiter.delete_override(user_id)
            await self._audit.record(admin_id, "user.delete_ratelimit", user_id)

    async def _require_local_user(self, user_id: str, message: str) -> None:
        if not is_valid_user_id(user_id) or server_name_of(user_id) != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, message)
        if not await self._accounts.user_exists(user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "User not found")


def _count(body: dict[str, Any], name: str) -> int:
    """A non-negative integer, 0 when absent (as Synapse)."""
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name!r} must be a non-negative integer")
    return value
