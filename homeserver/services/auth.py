"""Access tokens: minting, authenticating requests, refreshing and revoking; and which
accounts an admin restricted (locked, suspended, shadow-banned).

Tokens are random (`cgo_`/`cgr_` + 32 random bytes) and stored as sha256 hashes. Authenticated
requests are answered from an in-memory cache of token -> Requester; every revocation goes
through this service, which drops the user's cached tokens, so a revoked token stops working
at once (other processes hear of it over LISTEN/NOTIFY, through `replicate`).

A request of a locked account is refused with 401 M_USER_LOCKED (soft logout), one of an
expired account (account validity) with 403 ORG_MATRIX_EXPIRED_ACCOUNT, except on the routes
that allow them (logging out).

An application service authenticates with its registration's `as_token` (never stored as an
access token): it acts as its sender, or, with the `user_id` query parameter, as a registered
user in its namespaces, on a device of theirs with `device_id` (spec: "Identity assertion").
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from homeserver.caching import ByteLRU
from homeserver.config import AuthConfig
from homeserver.core.appservices import AppService, AppServiceRegistry
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from storage.accounts import AccountStore, RestrictedUser
from storage.database import Database
from storage.devices import DeviceStore
from storage.tokens import TokenStore

_CACHE_LIMIT = 100_000
# The ceiling of the token cache when the app gives none (config caches.access_tokens), and
# what one cached token takes (its hash, the Requester, the index by user).
TOKEN_CACHE_BYTES = 4 * 1024 * 1024
CACHED_TOKEN_BYTES = 600
# Synapse's errcode for an account past its validity period.
EXPIRED_ACCOUNT = "ORG_MATRIX_EXPIRED_ACCOUNT"
USER_SUSPENDED = "M_USER_SUSPENDED"
# A shadow-banned user's "successful" action answers after a random pause, as Synapse's do.
SHADOW_BAN_DELAY_S = (1.0, 10.0)


@dataclass(frozen=True, slots=True)
class Requester:
    user_id: str
    device_id: str | None  # None for an admin's "login as" token, which has no device
    token_id: int
    is_admin: bool
    is_guest: bool
    # The appservice whose as_token made the request (device_id is then "" unless the request
    # named one); None for a user's own access token.
    app_service_id: str | None = None


# An appservice request's token_id: as_tokens are not stored, so there is nothing to revoke.
APPSERVICE_TOKEN_ID = -1
UNSTABLE_DEVICE_ID_PARAM = "org.matrix.msc3202.device_id"


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str | None
    expires_in_ms: int | None


@dataclass(frozen=True, slots=True)
class _Cached:
    requester: Requester
    valid_until_ts: int | None
    token_owner: str  # the requester, or the admin acting as them
    account_expiration_ts: int | None


class AccountRestrictions:
    """The local accounts an admin locked, suspended or shadow-banned.

    They are few, so all of them are kept in memory (read on first use, again after each
    change, and when another process announces one through `replicate`): every request and
    every event sent can ask without a query. Flags are written only through `set`.
    """

    def __init__(self, accounts: AccountStore) -> None:
        self._accounts = accounts
        self._flags: dict[str, RestrictedUser] | None = None
        self._generation = 0
        self._loading = asyncio.Lock()  # one read at a time, however many requests wait for it
        # Set by the app: tell other processes to read the flags again.
        self.replicate: Callable[[], None] | None = None

    async def _of(self, user_id: str) -> RestrictedUser | None:
        flags = self._flags
        if flags is None:
            async with self._loading:
                flags = self._flags
                if flags is None:
                    generation = self._generation
                    flags = {r.user_id: r for r in await self._accounts.restricted_users()}
                    if generation == self._generation:  # no change while we read
                        self._flags = flags
        return flags.get(user_id)

    async def is_locked(self, user_id: str) -> bool:
        flags = await self._of(user_id)
        return flags is not None and flags.locked

    async def is_suspended(self, user_id: str) -> bool:
        flags = await self._of(user_id)
        return flags is not None and flags.suspended

    async def is_shadow_banned(self, user_id: str) -> bool:
        flags = await self._of(user_id)
        return flags is not None and flags.shadow_banned

    async def set(self, user_id: str, flag: str, value: bool) -> None:
        """Set `shadow_banned`, `locked` or `suspended` on a local account."""
        await self._accounts.set_flag(user_id, flag, value)
        self.forget_cached()
        if self.replicate is not None:
            self.replicate()

    def forget_cached(self) -> None:
        self._flags = None
        self._generation += 1

    @staticmethod
    async def shadow_ban_delay() -> None:
        await asyncio.sleep(random.uniform(*SHADOW_BAN_DELAY_S))


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AuthService:
    def __init__(self, db: Database, tokens: TokenStore, clock: Clock, config: AuthConfig, *,
                 restrictions: AccountRestrictions, accounts: AccountStore, account_validity_ms: int | None = None,
                 appservices: AppServiceRegistry | None = None, devices: DeviceStore | None = None,
                 cache_bytes: int = TOKEN_CACHE_BYTES) -> None:
        """`account_validity_ms`: how long accounts stay valid (None: they do not expire).
        `cache_bytes`: the ceiling of the cache of authenticated tokens (caches.access_tokens)."""
        self._db = db
        self.appservices = appservices or AppServiceRegistry()
        self._accounts = accounts
        self._devices = devices
        self._known_users: set[str] = set()  # users seen to exist (they are never deleted)
        self._tokens = tokens
        self._clock = clock
        self._config = config
        self._restrictions = restrictions
        self._validity_ms = account_validity_ms
        self._cache: ByteLRU[bytes, _Cached] = ByteLRU(cache_bytes, lambda _: CACHED_TOKEN_BYTES,
                                                       on_evict=self._evicted)
        self._cached_by_user: dict[str, set[bytes]] = {}
        self.cache_stats = self._cache.stats
        # Set by the app: tell other processes to drop their cached tokens of a user.
        self.replicate: Callable[[str], None] | None = None

    async def authenticate(self, token: str, query: Mapping[str, str] | None = None, *,
                           allow_locked: bool = False) -> Requester:
        """The requester owning `token`; 401 M_UNKNOWN_TOKEN when it is unknown or expired.
        `query`: the request's query parameters, read for an appservice's `user_id` and
        `device_id` (ignored for users' tokens, as Synapse does). `allow_locked`: let locked
        and expired accounts through (logging out); as in Synapse, an appservice's requests
        are not checked for either."""
        service = self.appservices.by_token(token)
        if service is not None:
            return await self._appservice_requester(service, query or {})
        token_hash = hash_token(token)
        cached = self._cache.get(token_hash)
        if cached is None:
            row = await self._tokens.get_access_token(token_hash)
            if row is None or row.deactivated:
                raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unrecognised access token", soft_logout=False)
            if row.refresh_token_id is not None:
                # First use of a refreshed token: the refresh token it replaced is spent.
                await self._tokens.delete_predecessors(row.refresh_token_id)
            expiration = row.account_expiration_ts
            if self._validity_ms is not None and expiration is None:
                # First use since account validity applies: the period starts now.
                expiration = self._clock.now_ms() + self._validity_ms
                await self._accounts.add_expiration_if_missing(row.user_id, expiration)
            requester = Requester(row.user_id, row.device_id, row.id, row.is_admin, row.is_guest)
            cached = _Cached(requester, row.valid_until_ts, row.token_owner, expiration)
            self._remember(token_hash, cached)
        now = self._clock.now_ms()
        if cached.valid_until_ts is not None and cached.valid_until_ts <= now:
            # Expired tokens of refreshable sessions: the client should refresh, not log out.
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Access token has expired", soft_logout=True)
        if not allow_locked:
            user_id = cached.requester.user_id
            if await self._restrictions.is_locked(user_id):
                raise MatrixError(401, Codes.USER_LOCKED, "This account has been locked", soft_logout=True)
            if (self._validity_ms is not None and cached.account_expiration_ts is not None
                    and cached.account_expiration_ts <= now):
                raise MatrixError(403, EXPIRED_ACCOUNT, "User account has expired")
        return cached.requester

    async def issue_puppet_token(self, admin_id: str, user_id: str, valid_until_ms: int | None) -> str:
        """An access token of `admin_id` acting as `user_id`, on no device (Synapse's "login
        as a user"): the user's device list does not show it, and it ends with the admin's
        sessions (their /logout/all), not with the user's."""
        access_token = "cgo_" + secrets.token_urlsafe(32)
        await self._tokens.add_puppet_token(hash_token(access_token), admin_id, user_id, now_ts=self._clock.now_ms(),
                                            valid_until_ts=valid_until_ms)
        return access_token
    async def _appservice_requester(self, service: AppService, query: Mapping[str, str]) -> Requester:
        """Spec, "Identity assertion": the sender, or the `user_id` it asserts (403 outside its
        namespaces or before it registered the user), on the `device_id` it names (400
        M_UNKNOWN_DEVICE when that is not the user's)."""
        user_id = query.get("user_id") or service.sender
        if user_id != service.sender:
            if not service.is_interested_in_user(user_id):
                raise MatrixError(403, Codes.FORBIDDEN, f"Application service cannot masquerade as this user ({user_id}).")
            if not await self.user_exists(user_id):
                raise MatrixError(403, Codes.FORBIDDEN, f"Application service has not registered this user ({user_id})")
        device_id = query.get("device_id") or query.get(UNSTABLE_DEVICE_ID_PARAM) or ""
        if device_id and (self._devices is None or await self._devices.get_device(user_id, device_id) is None):
            raise MatrixError(400, Codes.UNKNOWN_DEVICE,
                              f"Application service trying to use a device that doesn't exist ({device_id!r} for {user_id})")
        return Requester(user_id, device_id, APPSERVICE_TOKEN_ID, False, False, app_service_id=service.id)

    async def user_exists(self, user_id: str) -> bool:
        if user_id in self._known_users:
            return True
        if self._accounts is None or not await self._accounts.user_exists(user_id):
            return False
        if len(self._known_users) >= _CACHE_LIMIT:
            self._known_users.clear()
        self._known_users.add(user_id)
        return True

    def appservice_of(self, requester: Requester) -> AppService | None:
        return self.appservices.by_id(requester.app_service_id) if requester.app_service_id else None

    async def issue_tokens(self, user_id: str, device_id: str, *, with_refresh_token: bool) -> IssuedTokens:
        """Mint an access token (and a refresh token when asked) for an existing device."""
        issued, _ = await self._issue(user_id, device_id, with_refresh_token=with_refresh_token)
        return issued

    async def _issue(self, user_id: str, device_id: str, *, with_refresh_token: bool) -> tuple[IssuedTokens, int | None]:
        now = self._clock.now_ms()
        access_token = "cgo_" + secrets.token_urlsafe(32)
        if not with_refresh_token:
            await self._tokens.add_access_token(hash_token(access_token), user_id, device_id, now_ts=now)
            return IssuedTokens(access_token, None, None), None
        refresh_token = "cgr_" + secrets.token_urlsafe(32)
        lifetime = self._config.refreshable_access_token_lifetime_ms
        refresh_id = await self._tokens.add_refresh_token(hash_token(refresh_token), user_id, device_id, now_ts=now)
        await self._tokens.add_access_token(
            hash_token(access_token), user_id, device_id, now_ts=now,
            valid_until_ts=now + lifetime, refresh_token_id=refresh_id,
        )
        return IssuedTokens(access_token, refresh_token, lifetime), refresh_id

    async def refresh(self, refresh_token: str) -> tuple[str, IssuedTokens]:
        """Exchange a refresh token for a new pair; returns (user_id, tokens).

        Spec (client-server API, "Refreshing access tokens"): the old refresh token stays
        valid until the new pair is used, so presenting it again replaces the unused pair.
        """
        async with self._db.transaction():
            row = await self._tokens.get_refresh_token(hash_token(refresh_token))
            if row is None:
                raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown refresh token", soft_logout=False)
            if row.next_token_id is not None:
                # A retry: the successor was never used; throw it (and its access token) away.
                await self._tokens.delete_refresh_token(row.next_token_id)
            # This token is being used: whatever it replaced is spent.
            await self._tokens.delete_predecessors(row.id)
            issued, new_id = await self._issue(row.user_id, row.device_id, with_refresh_token=True)
            assert new_id is not None
            await self._tokens.set_next_refresh_token(row.id, new_id)
        self.forget_user(row.user_id)
        return row.user_id, issued

    async def revoke_access_token(self, requester: Requester) -> None:
        await self._tokens.delete_access_token(requester.token_id)
        self.forget_user(requester.user_id)

    async def revoke_device_tokens(self, user_id: str, device_id: str) -> None:
        await self._tokens.delete_tokens_of_device(user_id, device_id)
        self.forget_user(user_id)

    async def revoke_all_tokens(self, user_id: str, *, except_token_id: int | None = None) -> None:
        await self._tokens.delete_access_tokens_of_user(user_id, except_token_id=except_token_id)
        self.forget_user(user_id)

    def forget_user(self, user_id: str) -> None:
        """Drop the user's cached tokens: call after any change to their tokens or devices."""
        self.forget_cached(user_id)
        if self.replicate is not None:
            self.replicate(user_id)

    def forget_cached(self, user_id: str) -> None:
        """Drop this process's cached tokens of the user (another process changed them)."""
        for token_hash in self._cached_by_user.pop(user_id, ()):
            self._cache.pop(token_hash)

    def _remember(self, token_hash: bytes, cached: _Cached) -> None:
        self._cached_by_user.setdefault(cached.requester.user_id, set()).add(token_hash)
        if cached.token_owner != cached.requester.user_id:  # revoking the admin's tokens ends it too
            self._cached_by_user.setdefault(cached.token_owner, set()).add(token_hash)
        self._cache.put(token_hash, cached)

    def _evicted(self, token_hash: bytes, cached: _Cached) -> None:
        """A token dropped for room: out of its users' index too."""
        for user_id in {cached.requester.user_id, cached.token_owner}:
            hashes = self._cached_by_user.get(user_id)
            if hashes is not None:
                hashes.discard(token_hash)
                if not hashes:
                    del self._cached_by_user[user_id]
