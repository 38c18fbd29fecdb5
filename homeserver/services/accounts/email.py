"""E-mail validation (spec: client-server "Adding Account Administrative Contact Information",
the requestToken endpoints, and the m.login.email.identity stage).

A client asks us to validate an address (POST /register/email/requestToken or
/account/3pid/email/requestToken) with a client secret: we mail the address a link with a
random token, and following it validates the session. The client then proves the address with
the session ID and its secret (`threepid_creds`): to register, or to add the address to its
account. We send the mails ourselves through the configured SMTP server; identity servers are
not involved (the id_server fields of the requests are ignored, as Synapse does when it sends
mail itself). A password reset (POST /account/password/email/requestToken, then POST
/account/password without an access token) goes the same way, for an address of an account.
"""

from __future__ import annotations

import asyncio
import html
import logging
import random
import re
import secrets
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlencode

from homeserver.config import EmailConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from storage.threepids import ThreepidValidationStore, UserThreepidStore, ValidationSession

logger = logging.getLogger(__name__)

SESSION_LIFETIME_MS = 24 * 3600 * 1000
SUBMIT_PATH = "/_matrix/client/unstable/chatgo/email/submit_token"
# Spec (client_secret): [0-9a-zA-Z.=_-], 1 to 255 characters.
CLIENT_SECRET = re.compile(r"^[0-9a-zA-Z.=_-]{1,255}$")
THREEPID_IN_USE = "M_THREEPID_IN_USE"
THREEPID_AUTH_FAILED = "M_THREEPID_AUTH_FAILED"


class EmailValidationService:
    def __init__(self, config: EmailConfig, sessions: ThreepidValidationStore, owners: UserThreepidStore,
                 clock: Clock, base_url: str, server_name: str, *, limiter: RateLimiter) -> None:
        self._config = config
        self._limiter = limiter
        self._sessions = sessions
        self._owners = owners
        self._clock = clock
        self._base = base_url.rstrip("/")
        self._server_name = server_name

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    async def request_token(self, body: dict[str, Any], *, for_registration: bool,
                            client_ip: str | None = None) -> dict[str, str]:
        """Mail a validation link (once per send_attempt); returns {"sid": ...}. Limited per
        client IP and per address (rc_3pid_validation), as Synapse: mails are not free. The
        address must not belong to an account yet (spec: M_THREEPID_IN_USE)."""
        purpose = "finish registering your account" if for_registration else "add this address to your account"
        return await self._request_token(
            body, client_ip, password_reset=False, subject=f"Validate your e-mail address on {self._server_name}",
            text=f"To {purpose} on {self._server_name}, follow this link:\n\n{{link}}\n\n"
                 "If this was not you, ignore this mail.\n")

    async def request_password_reset_token(self, body: dict[str, Any], *,
                                           client_ip: str | None = None) -> dict[str, str]:
        """POST /account/password/email/requestToken: as `request_token`, but the address must
        belong to an account here (spec: M_THREEPID_NOT_FOUND otherwise; Synapse says so
        unless told to hide it), and the mail's link is for resetting that account's password."""
        return await self._request_token(
            body, client_ip, password_reset=True, subject=f"Reset your password on {self._server_name}",
            text=f"Someone asked to reset your password on {self._server_name}. To reset your password, "
                 "follow this link, then go back to your application to choose the new one:\n\n{link}\n\n"
                 "If this was not you, ignore this mail: your password stays as it is.\n")

    async def _request_token(self, body: dict[str, Any], client_ip: str | None, *, password_reset: bool,
                             subject: str, text: str) -> dict[str, str]:
        """`text` names the link `{link}`."""
        if not self.enabled:
            raise MatrixError(400, "M_THREEPID_MEDIUM_NOT_SUPPORTED", "E-mail is not set up on this server")
        secret, address, attempt = body.get("client_secret"), body.get("email"), body.get("send_attempt")
        if not isinstance(secret, str) or not CLIENT_SECRET.match(secret):
            raise MatrixError(400, Codes.INVALID_PARAM, "'client_secret' must be 1-255 characters of [0-9a-zA-Z.=_-]")
        if not isinstance(address, str) or "@" not in address.strip("@") or len(address) > 500:
            raise MatrixError(400, Codes.INVALID_PARAM, "'email' is not an e-mail address")
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise MatrixError(400, Codes.INVALID_PARAM, "'send_attempt' must be an integer")
        address = canonical_email(address)
        if client_ip is not None:
            await self._limiter.check(Action.THREEPID_VALIDATION, client_ip)
        await self._limiter.check(Action.THREEPID_VALIDATION, ("email", address))
        owner = await self._owners.owner("email", address)
        refused = None
        if password_reset and owner is None:
            refused = MatrixError(400, Codes.THREEPID_NOT_FOUND, "No account here has this e-mail address")
        elif not password_reset and owner is not None:
            # Spec: the address is in use (for registration and for adding alike).
            refused = MatrixError(400, THREEPID_IN_USE, "This e-mail address is already in use")
        if refused is not None:
            if not self._config.request_token_inhibit_3pid_errors:
                raise refused
            # As if a mail went: a session that will never validate, after about as long as a
            # mail takes (as Synapse: 0.1-1 s), so that neither answer nor time tells.
            await asyncio.sleep(random.uniform(0.1, 1.0))
            return {"sid": secrets.token_urlsafe(18)}
        now = self._clock.now_ms()
        await self._sessions.delete_older_than(now - SESSION_LIFETIME_MS)
        session = await self._sessions.find(secret, "email", address)
        if session is not None and attempt <= session.send_attempt:
            return {"sid": session.session_id}  # spec: the same send_attempt sends nothing new
        token = secrets.token_urlsafe(24)
        if session is None:
            session = ValidationSession(secrets.token_urlsafe(18), secret, "email", address, token, attempt, now, None)
            await self._sessions.create(session)
        else:
            await self._sessions.set_attempt(session.session_id, attempt, token)
        link = self._base + SUBMIT_PATH + "?" + urlencode(
            {"token": token, "client_secret": secret, "sid": session.session_id})
        await self._send(address, subject, text.replace("{link}", link))
        return {"sid": session.session_id}

    async def submit_token(self, sid: str | None, secret: str | None, token: str | None) -> str:
        """The link of the mail: validates the session; the HTML page for the browser."""
        session = await self._sessions.get(sid) if sid else None
        if (session is None or session.client_secret != secret or not token
                or not secrets.compare_digest(session.token, token)
                or session.created_ts + SESSION_LIFETIME_MS < self._clock.now_ms()):
            raise MatrixError(400, THREEPID_AUTH_FAILED, "This validation link is not valid (any more)")
        await self._sessions.validate(session.session_id, self._clock.now_ms())
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>E-mail validated</title></head><body>"
                f"<p>Your e-mail address {html.escape(session.address)} is validated: you may go back to "
                "your application.</p></body></html>")

    async def validated(self, creds: Any) -> tuple[str, str, int] | None:
        """(medium, address, validated_ts) of a validated session named by threepid_creds
        ({sid, client_secret}), or None."""
        if not isinstance(creds, dict):
            return None
        sid, secret = creds.get("sid"), creds.get("client_secret")
        session = await self._sessions.get(sid) if isinstance(sid, str) else None
        if session is None or session.client_secret != secret or session.validated_ts is None:
            return None
        return session.medium, session.address, session.validated_ts

    async def _send(self, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self._config.notif_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self._server_name.split(":")[0])
        message.set_content(text)
        try:
            await asyncio.to_thread(self._send_now, message)
        except (OSError, smtplib.SMTPException) as err:
            logger.warning("could not send mail to %s: %s", to, err)
            raise MatrixError(500, Codes.UNKNOWN, "Could not send the validation mail") from None

    def _send_now(self, message: EmailMessage) -> None:
        c = self._config
        smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=30)
        try:
            if c.require_transport_security:
                smtp.starttls()
            if c.smtp_user:
                smtp.login(c.smtp_user, c.smtp_pass or "")
            smtp.send_message(message)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):  # the mail went; a server may not know QUIT
                smtp.close()


def canonical_email(address: str) -> str:
    """As Synapse compares addresses: stripped and lower-cased."""
    return address.strip().lower()
