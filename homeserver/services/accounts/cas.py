"""Single sign-on through a CAS server (spec: client-server "Client login via SSO"; CAS 2.0).

Login: GET /login/sso/redirect sends the browser to the CAS server's /login with a `service`
URL of ours (/login/cas/ticket, carrying the client's redirectUrl). The CAS server sends the
browser back there with a ticket, which we check at its /proxyValidate; its user, mapped to a
localpart as Synapse maps it, is the local user who logs in (created at their first login).
The browser then goes back to the client with a single-use `loginToken`, which the client
exchanges at POST /login (m.login.token).

User-interactive auth: the m.login.sso stage's fallback page sends the browser the same way,
with the UIA session in the service URL instead of a redirectUrl; the ticket completes the
stage for the CAS user, and the operation goes on only if that is the session's user.

Calls to the CAS server use the federation transport's session (TLS trust, IP range filter).
"""

from __future__ import annotations

import asyncio
import html
import logging
import xml.etree.ElementTree as ElementTree
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from federation.transport import Transport
from homeserver.config import CasConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.accounts.accounts import AccountService
from homeserver.services.accounts.login_tokens import LoginTokenService
from homeserver.services.accounts.uia import UIAService
from homeserver.services.clock import Clock
from storage.accounts import AccountStore

logger = logging.getLogger(__name__)

CAS_NS = "{http://www.yale.edu/tp/cas}"
# The ticket URL carries /r0/, as Synapse's does (sytest checks the service URL it sends).
TICKET_PATH = "/_matrix/client/r0/login/cas/ticket"
# The identity provider GET /login lists and /login/sso/redirect/{idpId} takes (Synapse's names).
IDENTITY_PROVIDER = {"id": "cas", "name": "CAS"}
ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._=-/+_")  # as Synapse's mapping keeps


class CasService:
    def __init__(self, config: CasConfig, base_url: str, accounts: AccountService, account_store: AccountStore,
                 login_tokens: LoginTokenService, uia: UIAService, transport: Transport, clock: Clock,
                 server_name: str) -> None:
        self._config = config
        self._base = base_url.rstrip("/")
        self._accounts = accounts
        self._account_store = account_store
        self._login_tokens = login_tokens
        self._uia = uia
        self._transport = transport
        self._clock = clock
        self._server_name = server_name

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    def login_flows(self) -> list[dict[str, Any]]:
        """What GET /login adds when CAS is set up."""
        if not self.enabled:
            return []
        return [{"type": "m.login.sso", "identity_providers": [dict(IDENTITY_PROVIDER)]}, {"type": "m.login.cas"}]

    # --- the browser's way there and back ---------------------------------------------------

    def login_redirect(self, redirect_url: str | None, idp_id: str | None = None) -> str:
        """Where GET /login/sso/redirect[/{idpId}] sends the browser."""
        self._require()
        if not redirect_url:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'redirectUrl' query parameter")
        if idp_id is not None and idp_id != IDENTITY_PROVIDER["id"]:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown identity provider")
        return self._cas_login(self._service(redirect_url=redirect_url))

    def uia_redirect(self, session_id: str | None) -> str:
        """Where the m.login.sso stage's fallback page sends the browser."""
        self._require()
        if not session_id:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'session' query parameter")
        return self._cas_login(self._service(session=session_id))

    async def ticket(self, ticket: str | None, redirect_url: str | None, session_id: str | None) -> str:
        """GET /login/cas/ticket: the HTML page for the browser."""
        self._require()
        if not ticket:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'ticket' query parameter")
        if session_id:
            user = await self._validate(ticket, self._service(session=session_id))
            await self._uia.complete_sso(session_id, self._accounts.user_id_for(map_username(user)))
            return _page("Authentication complete", "<p>You may now close this window and return to the application.</p>")
        if not redirect_url:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'redirectUrl' query parameter")
        user = await self._validate(ticket, self._service(redirect_url=redirect_url))
        user_id = await self._local_user(map_username(user))
        token = await self._login_tokens.issue(user_id)
        target = redirect_url + ("&" if "?" in redirect_url else "?") + urlencode({"loginToken": token})
        # A page with the link rather than a bare redirect, so the user sees which application
        # is being logged in (as Synapse asks before sending a token to a client).
        link = html.escape(target, quote=True)
        return _page("Continue to your application",
                     f'<p>You are logging in as {html.escape(user_id)}.</p><p><a href="{link}">Continue</a></p>')

    # --- internals -------------------------------------------------------------------------

    def _require(self) -> None:
        if not self.enabled:
            raise MatrixError(400, Codes.UNRECOGNIZED, "Single sign-on is not set up on this server")

    def _service(self, *, redirect_url: str | None = None, session: str | None = None) -> str:
        # Percent-encoded the way Synapse does (every reserved character), so the CAS server
        # is asked to validate the exact URL it sent the browser to.
        name, value = ("redirectUrl", redirect_url) if redirect_url is not None else ("session", session or "")
        return f"{self._base}{TICKET_PATH}?{name}={quote(value, safe='')}"

    def _cas_login(self, service: str) -> str:
        return f"{self._cas_url('login')}?{urlencode({'service': service})}"

    def _cas_url(self, endpoint: str) -> str:
        return f"{(self._config.server_url or '').rstrip('/')}/{endpoint}"

    async def _validate(self, ticket: str, service: str) -> str:
        """The CAS user the ticket stands for (CAS 2.0 /proxyValidate), or 401."""
        try:
            async with self._transport.session.get(self._cas_url("proxyValidate"),
                                                   params={"ticket": ticket, "service": service}) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            logger.warning("CAS server unreachable: %s", err)
            raise MatrixError(502, Codes.UNKNOWN, "Could not reach the CAS server") from None
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            raise MatrixError(502, Codes.UNKNOWN, "The CAS server sent a malformed answer") from None
        user = root.find(f"{CAS_NS}authenticationSuccess/{CAS_NS}user")
        if user is None or not (user.text or "").strip():
            raise MatrixError(401, Codes.UNAUTHORIZED, "The CAS server did not accept the ticket")
        return user.text.strip()

    async def _local_user(self, localpart: str) -> str:
        user_id = self._accounts.user_id_for(localpart)
        user = await self._account_store.get_user(user_id)
        if user is not None:
            if user.deactivated:
                raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
            return user_id
        try:
            return await self._accounts.create_user(localpart, None)
        except MatrixError as err:
            if err.errcode == Codes.USER_IN_USE:  # created meanwhile by a concurrent login
                return user_id
            raise


def map_username(username: str) -> str:
    """A CAS user name as a localpart, as Synapse maps SSO user names: lower-cased, each byte
    outside a-z 0-9 . _ = - / + written as =xx, and a leading underscore too (reserved)."""
    out = "".join(chr(b) if chr(b) in ALLOWED else f"={b:02x}"
                  for b in username.lower().encode())
    return "=5f" + out[1:] if out.startswith("_") else out


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
