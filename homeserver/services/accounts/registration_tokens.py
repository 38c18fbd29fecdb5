"""Registration tokens: create, list, delete, and check validity (spec: `m.login.registration_token`)."""

from __future__ import annotations

import secrets

from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from storage.registration_tokens import RegistrationTokenRow, RegistrationTokenStore

_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-")


class RegistrationTokenService:
    def __init__(self, tokens: RegistrationTokenStore, clock: Clock, *, limiter: RateLimiter) -> None:
        self._tokens = tokens
        self._limiter = limiter
        self._clock = clock

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

    async def create(self, token: str | None = None, *, uses_allowed: int | None = None, expiry_ts: int | None = None) -> str:
        token = token or secrets.token_urlsafe(12)
        if len(token) > 64 or not set(token) <= _TOKEN_CHARS:
            raise MatrixError(400, Codes.INVALID_PARAM, "Tokens are 1-64 characters from [A-Za-z0-9._~-]")
        if uses_allowed is not None and uses_allowed < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "uses_allowed must not be negative")
        if not await self._tokens.create(token, uses_allowed, expiry_ts):
            raise MatrixError(400, Codes.INVALID_PARAM, "Token already exists")
        return token

    async def list(self) -> list[RegistrationTokenRow]:
        return await self._tokens.list()

    async def delete(self, token: str) -> None:
        if not await self._tokens.delete(token):
            raise MatrixError(404, Codes.NOT_FOUND, "No such registration token")
