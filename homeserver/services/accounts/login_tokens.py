"""Single-use login tokens (`m.login.token`): issued by single sign-on after the identity
provider vouched for the user, or by `POST /login/get_token` to a signed-in device that
wants to sign in another one (MSC3882, spec v1.7), and exchanged once at `POST /login`."""

from __future__ import annotations

import secrets
from typing import Any

from homeserver.config import LoginViaExistingSessionConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.accounts import AccountService, LoginResult
from homeserver.services.accounts.uia import UIAService
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from storage.login_tokens import LoginTokenStore

SSO_TOKEN_LIFETIME_MS = 2 * 60 * 1000


class LoginTokenService:
    def __init__(self, store: LoginTokenStore, accounts: AccountService, uia: UIAService, clock: Clock,
                 config: LoginViaExistingSessionConfig) -> None:
        self._store = store
        self._accounts = accounts
        self._uia = uia
        self._clock = clock
        self._config = config

    @property
    def get_token_enabled(self) -> bool:
        """The m.get_login_token capability."""
        return self._config.enabled

    def login_flows(self, *, sso: bool) -> list[dict[str, Any]]:
        """The m.login.token flow of GET /login, when single sign-on or get_token issues tokens."""
        if not sso and not self._config.enabled:
            return []
        return [{"type": "m.login.token", "get_login_token": self._config.enabled}]

    async def issue(self, user_id: str, lifetime_ms: int = SSO_TOKEN_LIFETIME_MS) -> str:
        token = secrets.token_urlsafe(32)
        await self._store.create(token, user_id, self._clock.now_ms() + lifetime_ms)
        return token

    async def get_token(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """POST /login/get_token: a token for another device to log in as this user, after
        user-interactive auth when `require_ui_auth` (the default, as Synapse)."""
        if not self._config.enabled:
            raise MatrixError(400, Codes.FORBIDDEN, "Login via an existing session is disabled on this server")
        if requester.is_guest:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guests cannot sign in other devices")
        session_id = None
        if self._config.require_ui_auth:
            result = await self._uia.authenticate(body.get("auth"), operation="get_login_token",
                                                  flows=self._uia.user_flows(), user_id=requester.user_id)
            session_id = result.session_id
        token = await self.issue(requester.user_id, self._config.token_timeout_ms)
        if session_id is not None:
            await self._uia.finish(session_id)
        return {"login_token": token, "expires_in_ms": self._config.token_timeout_ms}

    async def login_with_token(self, body: dict[str, Any], *, client_ip: str | None = None) -> LoginResult:
        """POST /login with m.login.token (attempts limited per client IP, as every login's)."""
        await self._accounts.limit_login_attempt(client_ip)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise MatrixError(400, Codes.MISSING_PARAM, "'token' must be a string")
        user_id = await self._store.consume(token, self._clock.now_ms())
        if user_id is None:
            raise MatrixError(403, Codes.FORBIDDEN, "Invalid login token")
        return await self._accounts.log_in_user(user_id, body)
