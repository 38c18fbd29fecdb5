"""Registration tokens: create, list, update, delete, and check validity (spec:
`m.login.registration_token`). The admin API (Synapse's registration_tokens) and the
`chatgo registration-token` command manage them; registration uses them up."""

from __future__ import annotations

import secrets
import string
from typing import Any, Protocol

from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from storage.database import Database
from storage.registration_tokens import RegistrationTokenRow, RegistrationTokenStore

_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._~-"
_TOKEN_CHARS = set(_TOKEN_ALPHABET)
_MAX_USES = 2**31 - 1  # an INTEGER column
_MAX_TS = 2**63 - 1
_UNCHANGED: Any = object()
_GENERATE_ATTEMPTS = 10


class AuditLog(Protocol):
    """Where admin changes are recorded (services.admin.audit.AdminAuditLog, above this package)."""
    async def record(self, admin_id: str, action: str, target: str | None = None, **details: Any) -> None: ...


class RegistrationTokenService:
    def __init__(self, db: Database, tokens: RegistrationTokenStore, clock: Clock, *, limiter: RateLimiter,
                 audit: AuditLog) -> None:
        self._db = db
        self._tokens = tokens
        self._limiter = limiter
        self._clock = clock
        self._audit = audit

    async def is_valid(self, token: str, *, client_ip: str | None = None) -> bool:
        """Spec: `GET /register/m.login.registration_token/validity`; does not use the token up.
        Limited per client IP (rc_registration_token_validity): tokens are not to be guessed."""
        if client_ip is not None:
            await self._limiter.check(Action.REGISTRATION_TOKEN_VALIDITY, client_ip)
        if not token or len(token) > 64 or not set(token) <= _TOKEN_CHARS:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid registration token format")
        row = await self._tokens.get(token)
        if row is None:
            return False
        if row.expiry_ts is not None and row.expiry_ts <= self._clock.now_ms():
            return False
        return row.uses_allowed is None or row.pending + row.completed < row.uses_allowed

    async def create(self, token: str | None = None, *, uses_allowed: Any = None, expiry_ts: Any = None,
                     length: Any = 16, admin_id: str | None = None) -> RegistrationTokenRow:
        """A new token: `token` as given, or `length` random characters of the allowed set.
        `admin_id`: the admin who made it (recorded in the audit log with it)."""
        uses_allowed, expiry_ts = self._uses_allowed(uses_allowed), self._expiry(expiry_ts)
        async with self._db.transaction():
            row = await self._create(token, uses_allowed, expiry_ts, length)
            await self._record(admin_id, "registration_token.create", row.token, uses_allowed=uses_allowed,
                               expiry_time=expiry_ts)
        return row

    async def _create(self, token: Any, uses_allowed: int | None, expiry_ts: int | None,
                      length: Any) -> RegistrationTokenRow:
        if token is not None:
            if not isinstance(token, str) or not 0 < len(token) <= 64 or not set(token) <= _TOKEN_CHARS:
                raise MatrixError(400, Codes.INVALID_PARAM, "Tokens are 1-64 characters from [A-Za-z0-9._~-]")
            if not await self._tokens.create(token, uses_allowed, expiry_ts):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Token already exists: {token}")
            return RegistrationTokenRow(token, uses_allowed, 0, 0, expiry_ts)
        if type(length) is not int or not 0 < length <= 64:
            raise MatrixError(400, Codes.INVALID_PARAM, "length must be an integer from 1 to 64")
        for _ in range(_GENERATE_ATTEMPTS):  # a short length may draw a token that exists
            token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))
            if await self._tokens.create(token, uses_allowed, expiry_ts):
                return RegistrationTokenRow(token, uses_allowed, 0, 0, expiry_ts)
        raise MatrixError(400, Codes.INVALID_PARAM, f"Could not find an unused token of length {length}")

    async def list(self, valid: bool | None = None) -> list[RegistrationTokenRow]:
        """All tokens, or only the valid (still usable) or invalid (expired or used up) ones."""
        return await self._tokens.list(valid, self._clock.now_ms())

    async def get(self, token: str) -> RegistrationTokenRow:
        row = await self._tokens.get(token)
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"No such registration token: {token}")
        return row

    async def update(self, token: str, *, uses_allowed: Any = _UNCHANGED, expiry_ts: Any = _UNCHANGED,
                     admin_id: str | None = None) -> RegistrationTokenRow:
        """Change what is given (null: unlimited uses, no expiry); the token as it now is."""
        set_uses, set_expiry = uses_allowed is not _UNCHANGED, expiry_ts is not _UNCHANGED
        uses_allowed = self._uses_allowed(uses_allowed) if set_uses else None
        expiry_ts = self._expiry(expiry_ts) if set_expiry else None
        async with self._db.transaction():
            row = await self._tokens.update(token, set_uses=set_uses, uses_allowed=uses_allowed,
                                            set_expiry=set_expiry, expiry_ts=expiry_ts)
            if row is None:
                raise MatrixError(404, Codes.NOT_FOUND, f"No such registration token: {token}")
            if set_uses or set_expiry:
                changes = {**({"uses_allowed": uses_allowed} if set_uses else {}),
                           **({"expiry_time": expiry_ts} if set_expiry else {})}
                await self._record(admin_id, "registration_token.update", token, **changes)
        return row

    async def delete(self, token: str, *, admin_id: str | None = None) -> None:
        async with self._db.transaction():
            if not await self._tokens.delete(token):
                raise MatrixError(404, Codes.NOT_FOUND, f"No such registration token: {token}")
            await self._record(admin_id, "registration_token.delete", token)

    async def _record(self, admin_id: str | None, action: str, token: str, **details: Any) -> None:
        if admin_id is not None:
            await self._audit.record(admin_id, action, token, **details)

    @staticmethod
    def _uses_allowed(value: Any) -> int | None:
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_USES):
            raise MatrixError(400, Codes.INVALID_PARAM, "uses_allowed must be a non-negative integer or null")
        return value

    def _expiry(self, value: Any) -> int | None:
        if value is not None and (type(value) is not int or value > _MAX_TS):
            raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time must be an integer or null")
        if value is not None and value < self._clock.now_ms():
            raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time must not be in the past")
        return value
