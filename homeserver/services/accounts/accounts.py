"""Accounts: register, log in, change password, deactivate.

Invariants: a user ID is taken atomically (the users table's primary key); every login creates
or reuses a device and mints tokens for it in one transaction; deactivation removes every
device and token, so nothing the user held keeps working.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from homeserver.config import RegistrationConfig
from homeserver.core.appservices import AppService
from homeserver.core.ids import is_valid_localpart
from homeserver.errors import Codes, InteractiveAuthRequired, MatrixError
from homeserver.services.accounts import uia
from homeserver.services.accounts.devices import DeviceService
from homeserver.services.accounts.passwords import PasswordHashing
from homeserver.services.accounts.threepids import ThreepidService
from homeserver.services.accounts.uia import UIAService
from homeserver.services.auth import AuthService, IssuedTokens, Requester
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.rooms.erasure import ErasedUsers
from homeserver.services.rooms.membership import MembershipService
from storage.accounts import AccountStore
from storage.database import Database
from storage.profiles import ProfileStore
from storage.registration_tokens import RegistrationTokenStore

APPSERVICE_LOGIN_TYPE = "m.login.application_service"
# User IDs are at most 255 bytes (spec appendix "User Identifiers").
MAX_USER_ID_LENGTH = 255
MAX_PASSWORD_LENGTH = 512


@dataclass(frozen=True)
class LoginResult:
    user_id: str
    device_id: str
    tokens: IssuedTokens | None  # None when login was inhibited


class AccountService:
    def __init__(
        self, db: Database, accounts: AccountStore, profiles: ProfileStore, registration_tokens: RegistrationTokenStore,
        auth: AuthService, devices: DeviceService, uia_service: UIAService, passwords: PasswordHashing,
        membership: MembershipService, clock: Clock, server_name: str, config: RegistrationConfig,
        threepids: ThreepidService | None = None, email_enabled: bool = False, *, limiter: RateLimiter,
        erased: ErasedUsers | None = None,
    ) -> None:
        self._limiter = limiter
        self._erased = erased
        self._threepids = threepids
        self._email_enabled = email_enabled
        self._membership = membership
        self._db = db
        self._accounts = accounts
        self._profiles = profiles
        self._registration_tokens = registration_tokens
        self._auth = auth
        self._devices = devices
        self._uia = uia_service
        self._passwords = passwords
        self._clock = clock
        self.server_name = server_name
        self._config = config

    # --- registration --------------------------------------------------------------------

    def registration_flows(self) -> list[list[str]]:
        flow = [uia.REGISTRATION_TOKEN] if self._config.requires_token else [uia.DUMMY]
        flows = [flow]
        if self._email_enabled and not self._config.requires_token:
            flows.append([uia.EMAIL_IDENTITY])  # registering with an e-mail address (optional)
        # As Synapse: the captcha first, then the rest.
        return [[uia.RECAPTCHA, *f] for f in flows] if self._config.requires_captcha else flows

    def user_id_for(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    async def check_username(self, localpart: str) -> str:
        """Validate a requested localpart and check it is free; returns the user ID."""
        if not self._config.enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration has been disabled")
        return await self._check_username(localpart)

    async def check_username_free(self, localpart: str) -> str:
        """Whether a localpart could be registered, even when registration is closed (the
        admin API asks); returns the user ID, or raises why not."""
        return await self._check_username(localpart)

    async def _check_username(self, localpart: str) -> str:
        if not localpart or not is_valid_localpart(localpart):
            raise MatrixError(
                400, Codes.INVALID_USERNAME,
                "User ID can only contain characters a-z, 0-9, or '=_-./+'",
            )
        if localpart.isdigit():
            raise MatrixError(400, Codes.INVALID_USERNAME, "Numeric user IDs are reserved for guest users.")
        if localpart.startswith("_") or localpart in self._config.reserved_localparts:
            raise MatrixError(400, Codes.INVALID_USERNAME, "This user ID is reserved.")
        user_id = self.user_id_for(localpart)
        if len(user_id.encode()) > MAX_USER_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_USERNAME, f"User ID may not be longer than {MAX_USER_ID_LENGTH} characters")
        if self._auth.appservices.exclusive_owner_of_user(user_id) is not None:
            # Spec: a namespace an appservice holds exclusively is nobody else's to register in.
            raise MatrixError(400, Codes.EXCLUSIVE, "This user ID is reserved by an application service.")
        if await self._accounts.user_exists(user_id):
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
        return user_id

    async def register(self, body: dict[str, Any], *, kind: str = "user", client_ip: str | None = None,
                       access_token: str | None = None) -> LoginResult:
        """`POST /register`: UIA, then create the account and (unless inhibited) log in.

        As Synapse: the username is lower-cased; the UIA session remembers the first request's
        parameters (username, device, inhibit_login...) and a hash of its password, so later
        requests of the session may send only `auth`; and a request of a session that already
        registered a user logs that user in again (retries are idempotent) instead of failing.
        Registrations are limited per client IP (rc_registration): each request is checked,
        each new account counted, so the UIA steps of one registration do not use it up.
        """
        if kind == "user" and body.get("type") == APPSERVICE_LOGIN_TYPE:
            # Appservices register their users in bulk: not limited per address (as Synapse).
            return await self._register_for_appservice(access_token, body)
        if client_ip is not None:
            await self._limiter.check(Action.REGISTRATION, client_ip, update=False)
        if kind == "guest":
            result = await self._register_guest(body)
            self._counted_registration(client_ip)
            return result
        if kind != "user":
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid kind: {kind}")
        if not self._config.enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration has been disabled")
        if body.get("guest_access_token") is not None:
            return await self._upgrade_guest(body)
        params = {k: v for k, v in body.items() if k not in ("auth", "password")}
        auth = body.get("auth")
        username = _optional_str(body, "username")
        password = _optional_str(body, "password")
        _optional_str(body, "device_id")
        _optional_str(body, "initial_device_display_name")
        _optional_bool(body, "inhibit_login")
        want_refresh = _optional_bool(body, "refresh_token")
        if password is not None and len(password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Password too long")
        session_id = auth.get("session") if isinstance(auth, dict) else None
        registered = await self._uia.get_data(session_id, "registered_user_id")
        password_hash = await self._uia.get_data(session_id, "password_hash")
        # Username problems are reported before UIA starts, so clients can ask again at once.
        if username is not None:
            await self._check_wanted_username(username, registered)

        try:
            result = await self._uia.authenticate(
                auth, operation="register", flows=self.registration_flows(), params=params)
        except InteractiveAuthRequired as challenge:
            if password and not password_hash and challenge.session_id:
                await self._uia.set_data(challenge.session_id, "password_hash", await self._passwords.hash(password))
            raise
        params = result.params
        device_id = _optional_str(params, "device_id")
        display_name = _optional_str(params, "initial_device_display_name")
        inhibit_login = _optional_bool(params, "inhibit_login")

        if registered is not None:
            # This session already registered its user: log them in again.
            if inhibit_login:
                return LoginResult(registered, "", None)
            async with self._db.transaction():
                return await self._login_device(registered, device_id, display_name, want_refresh)

        username = _optional_str(params, "username")
        user_id = await self._check_wanted_username(username, None) if username is not None else None
        if password:
            password_hash = await self._passwords.hash(password)
        now = self._clock.now_ms()
        async with self._db.transaction():
            if user_id is None:
                user_id = await self._create_generated_user(password_hash, now)
            elif not await self._accounts.create_user(user_id, password_hash, created_ts=now):
                raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
            await self._new_profile(user_id)
            if token := result.results.get("registration_token"):
                await self._registration_tokens.complete_use(token)
            threepid = result.results.get("threepid")
            if threepid and self._threepids is not None:  # registered with a validated e-mail address
                await self._threepids.add_validated(user_id, threepid["medium"], threepid["address"],
                                                    threepid["validated_at"])
            await self._uia.set_data(result.session_id, "registered_user_id", user_id)
            login = None
            if not inhibit_login:
                login = await self._login_device(user_id, device_id, display_name, want_refresh)
        await self._uia.finish(result.session_id, keep=True)
        self._counted_registration(client_ip)
        return login or LoginResult(user_id, "", None)

    def _counted_registration(self, client_ip: str | None) -> None:
        if client_ip is not None:
            self._limiter.record(Action.REGISTRATION, client_ip)

    async def _register_for_appservice(self, access_token: str | None, body: dict[str, Any]) -> LoginResult:
        """Spec, "Server admin style permissions": an appservice registers a user of its
        namespaces with its as_token and `type: m.login.application_service`: no password, no
        user-interactive auth, whether registration is open or not. As Synapse, the username is
        taken as given (not lower-cased) and the user's display name is its localpart."""
        service = self._appservice_of_token(access_token)
        username = body.get("username")
        if not isinstance(username, str) or not username:
            raise MatrixError(400, Codes.MISSING_PARAM, "'username' is required")
        localpart = _localpart_of(username, self.server_name)
        if not is_valid_localpart(localpart, historical=True):
            raise MatrixError(400, Codes.INVALID_USERNAME, f"Invalid user ID localpart {localpart!r}")
        user_id = self.user_id_for(localpart)
        if len(user_id.encode()) > MAX_USER_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_USERNAME, f"User ID may not be longer than {MAX_USER_ID_LENGTH} characters")
        if not service.is_interested_in_user(user_id):
            raise MatrixError(400, Codes.EXCLUSIVE, "Invalid user localpart for this application service.")
        if self._auth.appservices.exclusive_owner_of_user(user_id, besides=service.id) is not None:
            raise MatrixError(400, Codes.EXCLUSIVE, "This user ID is reserved by another application service.")
        device_id = _optional_str(body, "device_id")
        display_name = _optional_str(body, "initial_device_display_name")
        inhibit_login = _optional_bool(body, "inhibit_login")
        want_refresh = _optional_bool(body, "refresh_token")
        if service.msc4190 and not inhibit_login:
            raise MatrixError(400, Codes.APPSERVICE_LOGIN_UNSUPPORTED,
                              "This appservice has MSC4190 enabled, so the inhibit_login parameter must be set to true.")
        owner = service.id if service.is_exclusive_user(user_id) else None
        async with self._db.transaction():
            if not await self._accounts.create_user(user_id, None, created_ts=self._clock.now_ms(), appservice_id=owner):
                raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
            await self._new_profile(user_id)
            if inhibit_login:
                return LoginResult(user_id, "", None)
            return await self._login_device(user_id, device_id, display_name, want_refresh)

    async def login_as_appservice(self, access_token: str | None, body: dict[str, Any]) -> LoginResult:
        """`POST /login` with `m.login.application_service`: an appservice logs in as a user of
        its namespaces (or its sender) with its as_token, without their password."""
        service = self._appservice_of_token(access_token)
        if service.msc4190:
            raise MatrixError(400, Codes.APPSERVICE_LOGIN_UNSUPPORTED,
                              "This appservice has MSC4190 enabled, so appservice login cannot be used.")
        identifier = body.get("identifier")
        if identifier is None and isinstance(body.get("user"), str):
            identifier = {"type": "m.id.user", "user": body["user"]}  # deprecated form
        if not isinstance(identifier, dict) or identifier.get("type") != "m.id.user":
            raise MatrixError(400, Codes.INVALID_PARAM, "An 'identifier' of type m.id.user is required")
        named = identifier.get("user")
        if not isinstance(named, str) or not named:
            raise MatrixError(400, Codes.INVALID_PARAM, "'identifier.user' must be a string")
        user_id = named if named.startswith("@") else self.user_id_for(named)
        if not service.is_interested_in_user(user_id):
            # Spec: logging in as a user outside its namespaces is M_EXCLUSIVE (Synapse: 403).
            raise MatrixError(403, Codes.EXCLUSIVE, "This user is not in the application service's namespaces")
        device_id = _optional_str(body, "device_id")
        display_name = _optional_str(body, "initial_device_display_name")
        want_refresh = _optional_bool(body, "refresh_token")
        user = await self._accounts.get_user(user_id)
        async with self._db.transaction():
            if user is None:
                if user_id != service.sender:
                    raise MatrixError(403, Codes.FORBIDDEN, f"{user_id} has not been registered")
                # The sender needs no registration; its devices need an account row.
                await self._accounts.create_user(user_id, None, created_ts=self._clock.now_ms(), appservice_id=service.id)
                await self._new_profile(user_id)
            elif user.deactivated and user_id != service.sender:
                raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
            return await self._login_device(user_id, device_id, display_name, want_refresh)

    def _appservice_of_token(self, access_token: str | None) -> AppService:
        """The appservice whose as_token this is; 401 as any request with a bad token."""
        if not access_token:
            raise MatrixError(401, Codes.MISSING_TOKEN, "An application service's as_token is required")
        service = self._auth.appservices.by_token(access_token)
        if service is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unrecognised access token", soft_logout=False)
        return service

    async def _check_wanted_username(self, username: str, registered: str | None) -> str:
        """The user ID a registration asks for (lower-cased, as Synapse does), checked; a
        session that registered its user may only name that one."""
        localpart = _localpart_of(username, self.server_name).lower()
        if registered is not None:
            if self.user_id_for(localpart) != registered:
                raise MatrixError(400, Codes.UNKNOWN, "A different user ID has already been registered for this session")
            return registered
        return await self._check_username(localpart)

    async def _register_guest(self, body: dict[str, Any]) -> LoginResult:
        """A guest account: a numeric user ID, no password (spec: "Guest access")."""
        if not self._config.allow_guests:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled")
        display_name = _optional_str(body, "initial_device_display_name")
        now = self._clock.now_ms()
        async with self._db.transaction():
            for _ in range(10):
                user_id = self.user_id_for(str(secrets.randbelow(10**12)).zfill(12))
                if await self._accounts.create_user(user_id, None, created_ts=now, is_guest=True):
                    break
            else:  # pragma: no cover - twelve random digits ten times over
                raise MatrixError(500, Codes.UNKNOWN, "Could not generate a guest user ID")
            await self._new_profile(user_id)  # named after its localpart, as Synapse's guests are
            return await self._login_device(user_id, None, display_name, False)

    async def _upgrade_guest(self, body: dict[str, Any]) -> LoginResult:
        """Registering with `guest_access_token` turns that guest into a full account, keeping
        its user ID (the `username` must be the guest's localpart)."""
        token = body.get("guest_access_token")
        if not isinstance(token, str):
            raise MatrixError(400, Codes.BAD_JSON, "'guest_access_token' must be a string")
        guest = await self._auth.authenticate(token)
        if not guest.is_guest:
            raise MatrixError(403, Codes.FORBIDDEN, "That access token is not a guest's")
        if body.get("username") != guest.user_id[1:].split(":", 1)[0]:
            raise MatrixError(400, Codes.INVALID_USERNAME, "'username' must be the guest's localpart")
        password = _optional_str(body, "password")
        result = await self._uia.authenticate(body.get("auth"), operation="register", flows=self.registration_flows())
        password_hash = await self._passwords.hash(password) if password else None
        async with self._db.transaction():
            await self._accounts.upgrade_guest(guest.user_id, password_hash)
            await self._profiles.set_displayname(guest.user_id, guest.user_id[1:].split(":", 1)[0])
            login = await self._login_device(
                guest.user_id, _optional_str(body, "device_id"), _optional_str(body, "initial_device_display_name"),
                _optional_bool(body, "refresh_token"))
        self._auth.forget_user(guest.user_id)
        await self._uia.finish(result.session_id)
        return login

    async def _create_generated_user(self, password_hash: str | None, now: int) -> str:
        alphabet = string.ascii_lowercase + string.digits
        for _ in range(10):
            user_id = self.user_id_for("u" + "".join(secrets.choice(alphabet) for _ in range(10)))
            if await self._accounts.create_user(user_id, password_hash, created_ts=now):
                return user_id
        raise MatrixError(500, Codes.UNKNOWN, "Could not generate a user ID")  # pragma: no cover

    async def create_user(self, localpart: str, password: str | None, *, admin: bool = False,
                          displayname: str | None = None, user_type: str | None = None) -> str:
        """Create an account outside the registration flow (`chatgo register-user`, admin)."""
        user_id = await self._check_username(localpart.lower())
        password_hash = await self._passwords.hash(password) if password else None
        async with self._db.transaction():
            if not await self._accounts.create_user(user_id, password_hash, created_ts=self._clock.now_ms(),
                                                    is_admin=admin, user_type=user_type):
                raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
            await self._new_profile(user_id, displayname)
        return user_id

    async def create_user_and_log_in(self, localpart: str, password: str | None, *, admin: bool = False,
                                     displayname: str | None = None) -> LoginResult:
        """Create an account outside the registration flow and log it in on a new device
        (shared-secret registration): the account and its first device in one transaction."""
        user_id = await self._check_username(localpart)
        password_hash = await self._passwords.hash(password) if password else None
        async with self._db.transaction():
            if not await self._accounts.create_user(user_id, password_hash, created_ts=self._clock.now_ms(), is_admin=admin):
                raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
            await self._new_profile(user_id, displayname)
            return await self._login_device(user_id, None, None, False)

    async def _new_profile(self, user_id: str, displayname: str | None = None) -> None:
        # As Synapse does: a new user's display name is their localpart unless one is given.
        await self._profiles.create_profile(user_id, displayname or user_id[1:].split(":", 1)[0])

    # --- login -----------------------------------------------------------------------------

    async def login_with_password(self, body: dict[str, Any], *, client_ip: str | None = None) -> LoginResult:
        """`POST /login` with `m.login.password`. Limited as Synapse: attempts per client IP
        (rc_login.address), failed attempts per account or third-party address
        (rc_login.failed_attempts), and successful logins per account (rc_login.account)."""
        await self.limit_login_attempt(client_ip)
        identifier = body.get("identifier")
        if identifier is None and "user" in body:
            identifier = {"type": "m.id.user", "user": body["user"]}  # deprecated form
        if identifier is None and "medium" in body and "address" in body:  # deprecated form
            identifier = {"type": "m.id.thirdparty", "medium": body["medium"], "address": body["address"]}
        if not isinstance(identifier, dict):
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'identifier'")
        id_type = identifier.get("type")
        failures_key: tuple[str, ...] | None = None  # what failed attempts are counted against
        if id_type == "m.id.thirdparty":
            medium, address = identifier.get("medium"), identifier.get("address")
            if not isinstance(medium, str) or not isinstance(address, str):
                raise MatrixError(400, Codes.INVALID_PARAM, "'medium' and 'address' must be strings")
            failures_key = (medium, address.lower())
            owner = await self._threepids.owner(medium, address) if self._threepids else None
            # An unknown address fails like a wrong password (no hint of who has an account).
            identifier = {"type": "m.id.user", "user": owner or "@unknown:" + self.server_name}
            id_type = "m.id.user"
        if id_type == "m.id.phone":
            raise MatrixError(403, Codes.FORBIDDEN, "Phone numbers are not supported for login")
        if id_type != "m.id.user":
            raise MatrixError(400, Codes.UNKNOWN, f"Unknown identifier type {id_type!r}")
        named = identifier.get("user")
        password = body.get("password")
        if not isinstance(named, str) or not named:
            raise MatrixError(400, Codes.INVALID_PARAM, "'identifier.user' must be a string")
        if not isinstance(password, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'password' must be a string")
        device_id = _optional_str(body, "device_id")
        display_name = _optional_str(body, "initial_device_display_name")
        want_refresh = _optional_bool(body, "refresh_token")

        user_id = _normalise_user(named, self.server_name)
        failures_key = failures_key or ((user_id or named).lower(),)
        await self._limiter.check(Action.LOGIN_FAILED, failures_key, update=False)
        user = await self._accounts.get_user(user_id) if user_id else None
        if user is None or not await self._passwords.verify(user.password_hash, password):
            self._limiter.record(Action.LOGIN_FAILED, failures_key)
            raise MatrixError(403, Codes.FORBIDDEN, "Invalid username or password")
        if user.deactivated:
            raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
        await self._limiter.check(Action.LOGIN_ACCOUNT, user.user_id.lower())
        async with self._db.transaction():
            return await self._login_device(user.user_id, device_id, display_name, want_refresh)

    async def log_in_user(self, user_id: str, body: dict[str, Any]) -> LoginResult:
        """Log in a user whom something else authenticated (a login token from SSO), with the
        login request's device_id, initial_device_display_name and refresh_token."""
        user = await self._accounts.get_user(user_id)
        if user is None or user.deactivated:
            raise MatrixError(403, Codes.USER_DEACTIVATED if user else Codes.FORBIDDEN, "This account cannot log in")
        await self._limiter.check(Action.LOGIN_ACCOUNT, user_id.lower())
        device_id = _optional_str(body, "device_id")
        display_name = _optional_str(body, "initial_device_display_name")
        want_refresh = _optional_bool(body, "refresh_token")
        async with self._db.transaction():
            return await self._login_device(user_id, device_id, display_name, want_refresh)

    async def limit_login_attempt(self, client_ip: str | None) -> None:
        """A login attempt of any type from `client_ip` (rc_login.address)."""
        if client_ip is not None:
            await self._limiter.check(Action.LOGIN_ADDRESS, client_ip)

    async def _login_device(self, user_id: str, device_id: str | None, display_name: str | None, want_refresh: bool) -> LoginResult:
        device_id = await self._devices.prepare_login_device(user_id, device_id, display_name)
        tokens = await self._auth.issue_tokens(user_id, device_id, with_refresh_token=want_refresh)
        return LoginResult(user_id, device_id, tokens)

    # --- account management ------------------------------------------------------------------

    async def change_password(self, requester: Requester | None, body: dict[str, Any]) -> None:
        """`POST /account/password`: with an access token, UIA with the current password;
        without one, a password reset (UIA with a validated e-mail address, see `_reset_password`)."""
        new_password = body.get("new_password")
        if not isinstance(new_password, str) or not new_password:
            raise MatrixError(400, Codes.MISSING_PARAM, "'new_password' must be a non-empty string")
        if len(new_password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Password too long")
        logout_devices = body.get("logout_devices", True)
        if not isinstance(logout_devices, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'logout_devices' must be a boolean")
        if requester is None:
            await self._reset_password(body.get("auth"), new_password, logout_devices)
            return
        result = await self._uia.authenticate(
            body.get("auth"), operation="change_password", flows=[[uia.PASSWORD]], user_id=requester.user_id
        )
        password_hash = await self._passwords.hash(new_password)
        async with self._db.transaction():
            await self._accounts.set_password_hash(requester.user_id, password_hash)
            if logout_devices:
                # Spec: the other access tokens and their devices are revoked; this one stays.
                await self._devices.delete_all_devices(requester.user_id, except_device_id=requester.device_id)
                await self._auth.revoke_all_tokens(requester.user_id, except_token_id=requester.token_id)
        await self._uia.finish(result.session_id)

    async def _reset_password(self, auth: Any, new_password: str, logout_devices: bool) -> None:
        """The forgotten password: the account is the one that owns the e-mail address the
        m.login.email.identity stage proved (POST /account/password/email/requestToken mailed
        the link); `logout_devices` ends all of its sessions (as Synapse: there is no current one)."""
        result = await self._uia.authenticate(auth, operation="reset_password", flows=[[uia.EMAIL_IDENTITY]])
        threepid = result.results.get("threepid") or {}
        user_id = None
        if self._threepids is not None and threepid:
            user_id = await self._threepids.owner(threepid["medium"], threepid["address"])
        if user_id is None:  # validated, but no account has it (any more): as Synapse
            raise MatrixError(404, Codes.NOT_FOUND, "No account here has this e-mail address")
        await self.set_password(user_id, new_password, logout_devices=logout_devices)
        await self._uia.finish(result.session_id)

    async def deactivate(self, requester: Requester, body: dict[str, Any]) -> str:
        """`POST /account/deactivate` (UIA with the password); returns the
        `id_server_unbind_result` (the 3PIDs bound through us are unbound first)."""
        erase = body.get("erase", False)
        if not isinstance(erase, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'erase' must be a boolean")
        result = None
        if requester.app_service_id is None:  # as Synapse: an appservice deactivates its users without UIA
            result = await self._uia.authenticate(
                body.get("auth"), operation="deactivate", flows=self._uia.user_flows(), user_id=requester.user_id
            )
        unbound = await self.deactivate_user(requester.user_id, erase=erase)
        if result is not None:
            await self._uia.finish(result.session_id)
        return unbound

    async def deactivate_user(self, user_id: str, *, erase: bool) -> str:
        """Deactivate an account (its owner asked, or an admin); returns the
        `id_server_unbind_result`. Its 3PIDs are unbound and removed, its devices, tokens (and
        pushers with them) and password go, its validity period ends. `erase` also deletes its
        profile and marks it erased: users who join its rooms later, and other servers, get
        its events redacted (spec: "Account deactivation"). Then it leaves every room and
        rejects its invites, as Synapse does."""
        unbound = await self._threepids.unbind_all(user_id) if self._threepids else "success"
        async with self._db.transaction():
            await self._accounts.deactivate(user_id)
            await self._accounts.delete_expiration(user_id)
            if erase:
                await self._accounts.mark_erased(user_id, self._clock.now_ms())
                await self._profiles.delete_profile(user_id)
            await self._devices.delete_all_devices(user_id)
        if erase and self._erased is not None:
            self._erased.changed(user_id)
        self._auth.forget_user(user_id)
        await self._membership.leave_all_rooms(user_id)
        return unbound

    async def reactivate_user(self, user_id: str, password: str | None) -> None:
        """An admin reactivates an account (no longer erased; its profile comes back empty if
        erasure deleted it). It gets back no rooms, devices or 3PIDs; it can log in with
        `password` (Synapse leaves checking that one is needed to the admin)."""
        password_hash = await self._passwords.hash(password) if password else None
        async with self._db.transaction():
            await self._accounts.reactivate(user_id)
            await self._accounts.mark_not_erased(user_id)
            await self._profiles.create_profile(user_id, None)
            if password_hash is not None:
                await self._accounts.set_password_hash(user_id, password_hash)
        if self._erased is not None:
            self._erased.changed(user_id)
        self._auth.forget_user(user_id)

    async def set_password(self, user_id: str, new_password: str, *, logout_devices: bool) -> None:
        """An admin sets a user's password (reset, or PUT /_synapse/admin/v2/users), or the user
        reset it by e-mail; `logout_devices` ends all of the user's sessions."""
        if len(new_password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Password too long")
        password_hash = await self._passwords.hash(new_password)
        async with self._db.transaction():
            await self._accounts.set_password_hash(user_id, password_hash)
            if logout_devices:
                await self._devices.delete_all_devices(user_id)
        self._auth.forget_user(user_id)


def _localpart_of(username: str, server_name: str) -> str:
    """Registration accepts a bare localpart or a full ID on this server."""
    if username.startswith("@"):
        localpart, sep, domain = username[1:].partition(":")
        if not sep or domain != server_name:
            raise MatrixError(400, Codes.INVALID_USERNAME, "User ID must be on this server")
        return localpart
    return username


def _normalise_user(named: str, server_name: str) -> str | None:
    """A login name (localpart or full ID) as a local user ID; None if it names another server."""
    if named.startswith("@"):
        localpart, sep, domain = named[1:].partition(":")
        if not sep or domain != server_name:
            return None
        return f"@{localpart.lower()}:{server_name}"
    return f"@{named.lower()}:{server_name}"


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a string")
    return value


def _optional_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a boolean")
    return value
