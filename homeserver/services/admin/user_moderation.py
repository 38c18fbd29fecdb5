"""Restraining accounts, for server admins: shadow-banning, suspending and locking (Synapse's
admin API and the spec's /_matrix/client/v1/admin/suspend|lock), logging in as a user, and
account validity.

The flags take effect at once: the account restrictions are read from memory on every request
and every event sent (homeserver/services/auth.py), and the token cache is dropped when a
cached property (an account's expiry) changes. Every change is recorded in the audit log.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.admin.audit import AdminAuditLog
from homeserver.services.admin.users import AdminUserService
from homeserver.services.auth import AccountRestrictions, AuthService, Requester
from homeserver.services.clock import Clock
from storage.accounts import AccountStore

# The flags of the spec's admin endpoints, by the name of their body's field.
SPEC_FLAGS = {"suspended": "suspended", "locked": "locked"}


class AdminUserModeration:
    def __init__(self, users: AdminUserService, restrictions: AccountRestrictions, auth: AuthService,
                 accounts: AccountStore, audit: AdminAuditLog, clock: Clock, account_validity_ms: int | None) -> None:
        self._users = users
        self._restrictions = restrictions
        self._auth = auth
        self._accounts = accounts
        self._audit = audit
        self._clock = clock
        self._validity_ms = account_validity_ms

    async def set_shadow_banned(self, requester: Requester, user_id: str, banned: bool) -> None:
        """POST/DELETE /_synapse/admin/v1/users/{userId}/shadow_ban: the user's messages,
        invites and profile changes reach nobody, though they seem to succeed."""
        await self._users.local_user(user_id, "Only local users can be shadow-banned")
        await self._restrictions.set(user_id, "shadow_banned", banned)
        await self._audit.record(requester.user_id, "user.shadow_ban" if banned else "user.unshadow_ban", user_id)

    async def suspend(self, requester: Requester, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /_synapse/admin/v1/suspend/{userId} ({"suspend": bool}), answered as Synapse does."""
        suspend = body.get("suspend")
        if not isinstance(suspend, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'suspend' must be a boolean")
        await self._users.local_user(user_id, "Can only suspend local users")
        await self._set(requester, user_id, "suspended", suspend)
        return {f"user_{user_id}_suspended": suspend}

    async def spec_flag(self, requester: Requester, user_id: str, field: str) -> dict[str, Any]:
        """GET /_matrix/client/v1/admin/suspend|lock/{userId}."""
        await self._spec_target(requester, user_id)
        restrictions = self._restrictions
        value = await (restrictions.is_suspended(user_id) if field == "suspended" else restrictions.is_locked(user_id))
        return {field: value}

    async def set_spec_flag(self, requester: Requester, user_id: str, field: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /_matrix/client/v1/admin/suspend|lock/{userId}."""
        if field not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, f"'{field}' is required")
        value = body[field]
        if not isinstance(value, bool):
            raise MatrixError(400, Codes.BAD_JSON, f"'{field}' must be a boolean")
        if user_id == requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "You cannot change this on your own account")
        await self._spec_target(requester, user_id)
        await self._set(requester, user_id, SPEC_FLAGS[field], value)
        return {field: value}

    async def _spec_target(self, requester: Requester, user_id: str) -> None:
        """Spec (admin.yaml): 400 for another server's user, 404 for an unknown or deactivated
        one, 403 for another admin."""
        user = await self._users.local_user(user_id, "User does not belong to the local server.")
        if user.deactivated:
            raise MatrixError(404, Codes.NOT_FOUND, "User not found.")
        if user.is_admin and user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "The target user is a server administrator")

    async def _set(self, requester: Requester, user_id: str, flag: str, value: bool) -> None:
        await self._restrictions.set(user_id, flag, value)
        verb = {"suspended": ("suspend", "unsuspend"), "locked": ("lock", "unlock")}[flag][0 if value else 1]
        await self._audit.record(requester.user_id, f"user.{verb}", user_id)

    async def login_as(self, requester: Requester, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_synapse/admin/v1/users/{userId}/login: a token acting as the user, on no
        device (the user's device list does not show it); not for the admin themself."""
        await self._users.local_user(user_id, "Only local users can be logged in as")
        valid_until_ms = body.get("valid_until_ms")
        if valid_until_ms is not None and (isinstance(valid_until_ms, bool) or not isinstance(valid_until_ms, int)):
            raise MatrixError(400, Codes.INVALID_PARAM, "'valid_until_ms' parameter must be an int")
        if valid_until_ms is not None and not 0 <= valid_until_ms < 2**63:
            raise MatrixError(400, Codes.INVALID_PARAM, "'valid_until_ms' is out of range")
        if user_id == requester.user_id:
            raise MatrixError(400, Codes.UNKNOWN, "Cannot use admin API to login as self")
        token = await self._auth.issue_puppet_token(requester.user_id, user_id, valid_until_ms)
        await self._audit.record(requester.user_id, "user.login_as", user_id, valid_until_ms=valid_until_ms)
        return {"access_token": token}

    async def renew_account(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_synapse/admin/v1/account_validity/validity: the account's new expiry
        (`expiration_ts`, else now + the validity period)."""
        if self._validity_ms is None:
            raise MatrixError(400, Codes.UNKNOWN, "Account validity is not enabled on this server")
        user_id = body.get("user_id")
        if user_id is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing property 'user_id' in the request body")
        if not isinstance(user_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "'user_id' must be a string")
        expiration_ts = body.get("expiration_ts")
        if expiration_ts is not None and (isinstance(expiration_ts, bool) or not isinstance(expiration_ts, int)
                                          or not 0 <= expiration_ts < 2**63):
            raise MatrixError(400, Codes.BAD_JSON, "'expiration_ts' must be a timestamp in milliseconds")
        emails = body.get("enable_renewal_emails", True)
        if not isinstance(emails, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'enable_renewal_emails' must be a boolean")
        await self._users.local_user(user_id)
        if not expiration_ts:  # 0 too, as Synapse reads it
            expiration_ts = self._clock.now_ms() + self._validity_ms
        await self._accounts.set_expiration(user_id, expiration_ts, email_sent=not emails)
        self._auth.forget_user(user_id)  # the expiry rides on cached requesters
        await self._audit.record(requester.user_id, "user.renew_account", user_id, expiration_ts=expiration_ts)
        return {"expiration_ts": expiration_ts}
