"""OpenID tokens (spec: client-server "OpenID", server-server "OpenID").

Use case: a client asks for a token (`POST /user/{userId}/openid/request_token`) and gives it to
a third party (a widget, an integration manager, Element Call), which asks us over federation
(`GET /_matrix/federation/v1/openid/userinfo`) whose token it is. Invariants: a user gets tokens
only for themself; a token answers only that question, for OPENID_TOKEN_LIFETIME_MS.
"""

from __future__ import annotations

import secrets
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from storage.openid import OpenIdTokenStore

OPENID_TOKEN_LIFETIME_MS = 60 * 60 * 1000  # an hour, as Synapse


class OpenIdService:
    def __init__(self, tokens: OpenIdTokenStore, clock: Clock, server_name: str) -> None:
        self._tokens = tokens
        self._clock = clock
        self._server_name = server_name

    async def request_token(self, requester: Requester, user_id: str) -> dict[str, Any]:
        if user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot request tokens for other users.")
        token = secrets.token_urlsafe(32)
        now = self._clock.now_ms()
        await self._tokens.add(token, user_id, now + OPENID_TOKEN_LIFETIME_MS, now)
        return {"access_token": token, "token_type": "Bearer", "matrix_server_name": self._server_name,
                "expires_in": OPENID_TOKEN_LIFETIME_MS // 1000}

    async def user_info(self, token: str | None) -> dict[str, Any]:
        user_id = await self._tokens.user_of(token, self._clock.now_ms()) if token else None
        if user_id is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Access Token unknown or expired")
        return {"sub": user_id}
