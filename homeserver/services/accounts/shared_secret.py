"""Registration with the server's shared secret (Synapse's `/_synapse/admin/v1/register`).

Use case: an operator's script (`register_new_matrix_user`-style tools, test suites) creates an
account — optionally an admin — without an access token, proving it knows
`registration.shared_secret`. It first fetches a nonce, then posts the user with
`mac = HMAC-SHA1(secret, nonce NUL username NUL password NUL "admin"|"notadmin" [NUL user_type])`.
Invariants: a nonce is good for one attempt and for NONCE_LIFETIME_MS; a wrong MAC creates
nothing. Nonces are kept in the database (Synapse keeps them in memory), so the two requests
may reach different processes of one deployment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.accounts import AccountService, LoginResult
from homeserver.services.clock import Clock
from storage.short_sessions import ShortSessionStore

NONCE_LIFETIME_MS = 60_000
MAX_NONCES = 10_000
NONCE = "registration_nonce"  # their kind in short_sessions


class SharedSecretRegistration:
    def __init__(self, accounts: AccountService, sessions: ShortSessionStore, clock: Clock,
                 shared_secret: str | None) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._clock = clock
        self._secret = shared_secret

    async def new_nonce(self) -> str:
        self._check_enabled()
        nonce = secrets.token_hex(32)
        now = self._clock.now_ms()
        if not await self._sessions.put(NONCE, nonce, {}, now + NONCE_LIFETIME_MS, now_ts=now, max_live=MAX_NONCES):
            raise MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many registration nonces outstanding")
        return nonce

    async def register(self, body: dict[str, Any]) -> LoginResult:
        self._check_enabled()
        nonce = _string(body, "nonce")
        if await self._sessions.take(NONCE, nonce, self._clock.now_ms()) is None:
            raise MatrixError(400, Codes.UNKNOWN, "unrecognised nonce")
        username = _string(body, "username")
        password = _string(body, "password")
        if len(username) > 512 or "\x00" in username:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid username")
        if len(password) > 512 or "\x00" in password:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid password")
        admin = body.get("admin", False)
        if not isinstance(admin, bool):
            raise MatrixError(400, Codes.INVALID_PARAM, "'admin' must be a boolean")
        user_type = body.get("user_type")
        if user_type is not None and not isinstance(user_type, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid user type")
        displayname = body.get("displayname")
        if displayname is not None and not isinstance(displayname, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid displayname")
        fields = [nonce, username, password, "admin" if admin else "notadmin"]
        if user_type is not None:
            fields.append(user_type)
        assert self._secret is not None
        want = hmac.new(self._secret.encode(), "\x00".join(fields).encode(), hashlib.sha1).hexdigest()
        if not hmac.compare_digest(want, str(body.get("mac", ""))):
            raise MatrixError(403, Codes.FORBIDDEN, "HMAC incorrect")
        return await self._accounts.create_user_and_log_in(username.lower(), password, admin=admin,
                                                           displayname=displayname)

    def _check_enabled(self) -> None:
        if not self._secret:
            raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise MatrixError(400, Codes.INVALID_PARAM, f"'{key}' must be a string")
    return value
