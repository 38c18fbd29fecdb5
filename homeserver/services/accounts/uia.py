"""User-interactive authentication (spec: client-server API, "User-interactive authentication API").

An operation that needs UIA calls `UIAService.authenticate(auth, operation=..., flows=...)`
with the request's `auth` dict. Until one flow's stages are all completed it raises
`InteractiveAuthRequired` (401 with flows, params, session and completed stages); then it
returns the session's results. The session is bound to its operation and user, so it cannot
be replayed for another. Supported stages: m.login.dummy, m.login.password,
m.login.registration_token.

As in Synapse, a session remembers the request's parameters (`params`: the body without
`auth` and secrets): a later request of the session that sends only `auth` is carried out
with the parameters of the first. Operations may keep their own data in the session
(`set_data`), e.g. registration the user it created, so that a retry of a finished
registration logs that user in again instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from federation.transport import Transport
from homeserver.errors import Codes, InteractiveAuthRequired, MatrixError
from homeserver.services.accounts.passwords import PasswordHashing
from homeserver.services.clock import Clock
from storage.accounts import AccountStore
from storage.registration_tokens import RegistrationTokenStore
from storage.uia import UIAuthStore

logger = logging.getLogger(__name__)

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"
SSO = "m.login.sso"  # completed out of band, through the SSO provider (see `complete_sso`)
RECAPTCHA = "m.login.recaptcha"
EMAIL_IDENTITY = "m.login.email.identity"


@dataclass(frozen=True)
class Recaptcha:
    """How the m.login.recaptcha stage is checked: the siteverify API and the keys."""
    public_key: str
    private_key: str
    siteverify_api: str
    # Answers POST siteverify (form fields) with the service's JSON answer; None if unreachable.
    verify: Callable[[str, dict[str, str]], Awaitable[Any]]


# Keys of a session's `result` that are not stage results.
_PARAMS = "_params"
_DATA = "_data"


@dataclass(frozen=True)
class UIAResult:
    session_id: str
    # What the completed stages established, e.g. {"registration_token": "abc"}.
    results: dict[str, Any]
    # The request parameters the session remembers (see the module's doc).
    params: dict[str, Any] = field(default_factory=dict)


class UIAService:
    def __init__(
        self, sessions: UIAuthStore, accounts: AccountStore, registration_tokens: RegistrationTokenStore,
        passwords: PasswordHashing, clock: Clock, server_name: str, session_lifetime_ms: int,
        sso_enabled: bool = False, recaptcha: Recaptcha | None = None,
        email_validated: Callable[[Any], Awaitable[tuple[str, str, int] | None]] | None = None,
    ) -> None:
        # (medium, address, validated_ts) of a validated e-mail session named by threepid_creds.
        self._email_validated = email_validated
        self._sso_enabled = sso_enabled
        self._recaptcha = recaptcha
        self._sessions = sessions
        self._accounts = accounts
        self._registration_tokens = registration_tokens
        self._passwords = passwords
        self._clock = clock
        self._server_name = server_name
        self._lifetime_ms = session_lifetime_ms

    def user_flows(self) -> list[list[str]]:
        """The flows by which an existing user confirms who they are: their password, or
        single sign-on when it is set up (as Synapse offers them)."""
        return [[PASSWORD], [SSO]] if self._sso_enabled else [[PASSWORD]]

    async def complete_sso(self, session_id: str, user_id: str) -> None:
        """The SSO provider vouched for `user_id` in this session: the SSO stage is complete
        (the operation then checks that it is the session's user)."""
        session = await self._sessions.get_session(session_id)
        if session is None or session.created_ts + self._lifetime_ms < self._clock.now_ms():
            raise MatrixError(400, Codes.UNKNOWN, f"Unknown session ID: {session_id}")
        await self._sessions.mark_stage_completed(session_id, SSO, {"sso_user": user_id})

    async def authenticate(
        self, auth: Any, *, operation: str, flows: list[list[str]], user_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> UIAResult:
        """`params`: the request's parameters (its body without `auth` and secrets). An empty
        one in a later request of a session means "those of the session"."""
        now = self._clock.now_ms()
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'auth' must be an object")
        params = dict(params or {})
        session_id = auth.get("session") if auth else None
        if session_id is not None:
            if not isinstance(session_id, str):
                raise MatrixError(400, Codes.BAD_JSON, "'session' must be a string")
            session = await self._sessions.get_session(session_id)
            if session is None or session.created_ts + self._lifetime_ms < now:
                raise MatrixError(400, Codes.UNKNOWN, f"Unknown session ID: {session_id}")
            if session.operation != operation or session.user_id != user_id:
                raise MatrixError(403, Codes.FORBIDDEN, "Requested operation has changed during the UI authentication session.")
            completed = list(session.completed)
            results = {k: v for k, v in session.result.items() if k not in (_PARAMS, _DATA)}
            if params:
                if params != session.result.get(_PARAMS):
                    await self._sessions.merge_result(session_id, {_PARAMS: params})
            else:
                params = dict(session.result.get(_PARAMS) or {})
        else:
            # Clients may send a stage without a session (nio sends m.login.dummy straight away).
            session_id = secrets.token_urlsafe(24)
            await self._sessions.create_session(session_id, operation, user_id, now_ts=now)
            if params:
                await self._sessions.merge_result(session_id, {_PARAMS: params})
            completed, results = [], {}

        if not auth:
            raise InteractiveAuthRequired(self._challenge(session_id, flows, completed), session_id=session_id)
        if "type" in auth:
            stage = auth["type"]
            allowed = {s for flow in flows for s in flow}
            if self._recaptcha is not None:
                allowed.add(RECAPTCHA)  # as Synapse: a configured check is accepted outside the flows
            if stage not in allowed:
                raise MatrixError(400, Codes.UNRECOGNIZED, f"Unrecognised login type {stage!r}")
            error = await self._check_stage(stage, auth, user_id, now)
            if error is not None:
                raise InteractiveAuthRequired(
                    self._challenge(session_id, flows, completed, always_completed=True), Codes.FORBIDDEN, error,
                    session_id=session_id,
                )
            stage_result: dict[str, Any] = {}
            if stage == REGISTRATION_TOKEN:
                stage_result = {"registration_token": auth["token"]}
            elif stage == EMAIL_IDENTITY and self._email_validated is not None:
                medium, address, validated_ts = await self._email_validated(_creds(auth))
                stage_result = {"threepid": {"medium": medium, "address": address, "validated_at": validated_ts}}
            completed = await self._sessions.mark_stage_completed(session_id, stage, stage_result)
            results.update(stage_result)

        done = [flow for flow in flows if all(s in completed for s in flow)]
        if done:
            if all(SSO in flow for flow in done) and results.get("sso_user") != user_id:
                # As Synapse: the SSO provider vouched for someone else.
                raise MatrixError(403, Codes.FORBIDDEN, "Authenticated user does not match the requester")
            return UIAResult(session_id, results, params)
        raise InteractiveAuthRequired(
            self._challenge(session_id, flows, completed, always_completed=True), session_id=session_id
        )

    async def get_data(self, session_id: str | None, key: str) -> Any:
        """What the operation kept in the session under `key` (None if nothing, or no such session)."""
        if not isinstance(session_id, str):
            return None
        session = await self._sessions.get_session(session_id)
        if session is None or session.created_ts + self._lifetime_ms < self._clock.now_ms():
            return None
        return (session.result.get(_DATA) or {}).get(key)

    async def set_data(self, session_id: str, key: str, value: Any) -> None:
        await self._sessions.merge_data(session_id, _DATA, {key: value})

    async def finish(self, session_id: str, *, keep: bool = False) -> None:
        """The operation succeeded: the session cannot be used again, unless `keep` (the
        operation is idempotent within its session and knows it from the session's data)."""
        if not keep:
            await self._sessions.delete_session(session_id)
        await self._sessions.delete_expired(self._clock.now_ms() - self._lifetime_ms)

    def _challenge(self, session_id: str, flows: list[list[str]], completed: list[str],
                   always_completed: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self._recaptcha is not None and any(RECAPTCHA in flow for flow in flows):
            params[RECAPTCHA] = {"public_key": self._recaptcha.public_key}
        body: dict[str, Any] = {
            "flows": [{"stages": list(flow)} for flow in flows],
            "params": params,
            "session": session_id,
        }
        # As Synapse: once the client has attempted a stage, "completed" is always there.
        if completed or always_completed:
            body["completed"] = list(completed)
        return body

    async def _check_stage(self, stage: str, auth: dict[str, Any], user_id: str | None, now: int) -> str | None:
        """None when the stage passes, else the error message."""
        if stage == DUMMY:
            return None
        if stage == PASSWORD:
            return await self._check_password(auth, user_id)
        if stage == EMAIL_IDENTITY and self._email_validated is not None:
            return None if await self._email_validated(_creds(auth)) else "The e-mail address is not validated"
        if stage == RECAPTCHA and self._recaptcha is not None:
            return await self._check_recaptcha(auth)
        if stage == REGISTRATION_TOKEN:
            token = auth.get("token")
            if not isinstance(token, str) or not token:
                return "Missing registration token"
            if not await self._registration_tokens.reserve_use(token, now):
                return "Invalid registration token"
            return None
        return f"Unsupported stage {stage}"

    async def _check_recaptcha(self, auth: dict[str, Any]) -> str | None:
        assert self._recaptcha is not None
        response = auth.get("response")
        if not isinstance(response, str) or not response:
            return "Missing captcha response"
        answer = await self._recaptcha.verify(self._recaptcha.siteverify_api,
                                              {"secret": self._recaptcha.private_key, "response": response})
        if not isinstance(answer, dict) or answer.get("success") is not True:
            return "Captcha validation failed"
        return None

    async def _check_password(self, auth: dict[str, Any], user_id: str | None) -> str | None:
        if user_id is None:
            return "Password authentication needs a logged-in user"
        identifier = auth.get("identifier")
        named = None
        if isinstance(identifier, dict) and identifier.get("type") == "m.id.user":
            named = identifier.get("user")
        elif "user" in auth:
            named = auth.get("user")  # the deprecated top-level field
        if named is not None:
            if not isinstance(named, str):
                return "Invalid user identifier"
            full = named if named.startswith("@") else f"@{named.lower()}:{self._server_name}"
        else:
            full = user_id
        password = auth.get("password")
        if not isinstance(password, str):
            return "Missing password"
        user = await self._accounts.get_user(full)
        if user is None or not await self._passwords.verify(user.password_hash, password):
            return "Invalid password"
        if full != user_id:
            # As Synapse: valid credentials, but of another user (e.g. a stolen access token
            # with the thief's own password) is a 403, not another try at the stage.
            raise MatrixError(403, Codes.FORBIDDEN, "Authenticated user does not match the requester")
        return None


def siteverify_over(transport: Transport) -> Callable[[str, dict[str, str]], Awaitable[Any]]:
    """`Recaptcha.verify` through an outbound transport (its TLS trust and IP range filter)."""

    async def verify(url: str, fields: dict[str, str]) -> Any:
        try:
            async with transport.session.post(url, data=fields) as resp:
                return await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as err:
            logger.warning("captcha check failed: %s", err)
            return None

    return verify


def _creds(auth: dict[str, Any]) -> Any:
    # `threepid_creds` (r0), or `threepidCreds` (older clients).
    return auth.get("threepid_creds", auth.get("threepidCreds"))
