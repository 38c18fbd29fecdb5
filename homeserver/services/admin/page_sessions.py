"""Sessions of the built-in admin page: a server admin logs in with their password and the page
keeps the access token of a device of its own (in an HttpOnly cookie).

Invariants: only server admins hold a page session (a user who is not an admin is refused
after the password check and the device just made for them is deleted again, so nothing of the
attempt stays usable); a session stops working as soon as its device is gone or the user stops
being an admin; the CSRF token of a session is derived from its access token, so it needs no
storage, changes with every login and cannot be computed without the token.
"""

from __future__ import annotations

import hashlib
import hmac

from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.accounts import AccountService
from homeserver.services.accounts.devices import DeviceService
from homeserver.services.auth import AuthService, Requester

DEVICE_DISPLAY_NAME = "ChatGO admin page"
_CSRF_CONTEXT = b"chatgo admin page csrf\x00"


class AdminPageSessions:
    def __init__(self, accounts: AccountService, auth: AuthService, devices: DeviceService) -> None:
        self._accounts = accounts
        self._auth = auth
        self._devices = devices

    async def log_in(self, username: str, password: str, *, client_ip: str | None = None) -> str:
        """Check the password through the login service (and its rate limits); the new
        session's access token. 403 M_FORBIDDEN for a wrong password and for a user who is
        not a server admin."""
        result = await self._accounts.login_with_password({
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": username},
            "password": password, "initial_device_display_name": DEVICE_DISPLAY_NAME,
        }, client_ip=client_ip)
        assert result.tokens is not None  # password logins are never inhibited
        requester = await self._auth.authenticate(result.tokens.access_token)
        if not requester.is_admin:
            await self._devices.delete_devices_now(result.user_id, [result.device_id])
            raise MatrixError(403, Codes.FORBIDDEN, "Only server admins may use the admin page")
        return result.tokens.access_token

    async def authenticate(self, access_token: str) -> Requester:
        """The admin holding this session; 401 for an unknown token, 403 for a non-admin."""
        requester = await self._auth.authenticate(access_token)
        if not requester.is_admin or requester.is_guest:
            raise MatrixError(403, Codes.FORBIDDEN, "Only server admins may use the admin page")
        return requester

    async def log_out(self, requester: Requester) -> None:
        """End the session: its device and access token are deleted."""
        await self._devices.delete_devices_now(requester.user_id, [requester.device_id])

    @staticmethod
    def csrf_token(access_token: str) -> str:
        """The session's CSRF token: every state-changing request of the page must send it."""
        return hmac.new(_CSRF_CONTEXT, access_token.encode(), hashlib.sha256).hexdigest()

    @classmethod
    def csrf_matches(cls, access_token: str, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), cls.csrf_token(access_token).encode())
