"""OpenID tokens (spec: client-server "OpenID", server-server "OpenID").

A user asks for a token (POST /user/{userId}/openid/request_token) and hands it to a third
party (an integration manager, a widget), which checks it with our federation API
(GET /_matrix/federation/v1/openid/userinfo) to learn who the user is.

The token is self-contained: the user ID and expiry time, authenticated with an HMAC whose key
is derived from the server's signing key. Nothing is stored, so every process sharing the
database (and the signing key) can check a token minted by another; a token cannot outlive
its hour, nor survive a change of signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from storage.accounts import AccountStore

TOKEN_LIFETIME_MS = 3600 * 1000  # an hour, as Synapse


class OpenIdService:
    def __init__(self, accounts: AccountStore, clock: Clock, server_name: str, signing_key: Any) -> None:
        self._accounts = accounts
        self._clock = clock
        self._server_name = server_name
        seed = signing_key.encode() if signing_key is not None else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"chatgo openid token\0" + bytes(seed)).digest()

    def request_token(self, requester: Requester, user_id: str) -> dict[str, Any]:
        if requester.user_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot request tokens for other users.")
        expires = self._clock.now_ms() + TOKEN_LIFETIME_MS
        payload = _b64(f"{expires}:{user_id}".encode())
        token = f"{payload}.{_b64(self._mac(payload))}"
        return {"access_token": token, "token_type": "Bearer", "matrix_server_name": self._server_name,
                "expires_in": TOKEN_LIFETIME_MS // 1000}

    async def userinfo(self, token: str | None) -> dict[str, Any]:
        """The user a token stands for: {"sub": user_id}, or 401 M_UNKNOWN_TOKEN."""
        user_id = self._check(token) if token else None
        if user_id is not None:
            user = await self._accounts.get_user(user_id)
            if user is not None and not user.deactivated:
                return {"sub": user_id}
        raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Invalid access token.")

    def _check(self, token: str) -> str | None:
        payload, _, mac = token.partition(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac(payload)):
                return None
            expires, _, user_id = _unb64(payload).decode().partition(":")
            if int(expires) < self._clock.now_ms():
                return None
        except (ValueError, UnicodeDecodeError):
            return None
        return user_id

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
