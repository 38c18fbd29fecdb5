"""Per-action token buckets, in memory, as Synapse's ratelimiters.

A bucket per (action, key) counts the actions done and leaks them at the action's
`per_second`; an action is allowed while the count stays within `burst_count`. Buckets are
refilled lazily when next used, and empty ones are dropped as the table grows (memory stays
proportional to the keys active in the last few bursts). A check is a dict lookup or two.

Who is exempt, as Synapse: users whose admin override is 0 (from every limit), users the app
says are exempt (appservice users, once appservices exist: the `is_exempt` hook), and server
admins from the message limit. An override other than 0 replaces `rc_message` for its user.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Hashable
from typing import Any

from homeserver.config import RateLimit, RateLimitConfig
from homeserver.errors import Codes, MatrixError
from storage.database import Database
from storage.ratelimit_overrides import RateLimitOverride, RateLimitOverrideStore


class Action(enum.Enum):
    """What is limited; the value names its setting under `rate_limiting`."""
    REQUEST = "per_second"  # the generic per-request limit of routes declared rate_limited
    MESSAGE = "rc_message"
    ADMIN_REDACTION = "rc_admin_redaction"
    REGISTRATION = "rc_registration"
    REGISTRATION_TOKEN_VALIDITY = "rc_registration_token_validity"
    LOGIN_ADDRESS = "rc_login.address"
    LOGIN_ACCOUNT = "rc_login.account"
    LOGIN_FAILED = "rc_login.failed_attempts"
    JOIN_LOCAL = "rc_joins.local"
    JOIN_REMOTE = "rc_joins.remote"
    JOINS_PER_ROOM = "rc_joins_per_room"
    THREEPID_VALIDATION = "rc_3pid_validation"
    INVITE_PER_ROOM = "rc_invites.per_room"
    INVITE_PER_USER = "rc_invites.per_user"
    INVITE_PER_ISSUER = "rc_invites.per_issuer"
    THIRD_PARTY_INVITE = "rc_third_party_invite"
    MEDIA_CREATE = "rc_media_create"
    PRESENCE = "rc_presence.per_user"
    DELAYED_EVENT_MGMT = "rc_delayed_event_mgmt"
    REPORT = "rc_reports"
    ROOM_CREATION = "rc_room_creation"
    USER_DIRECTORY = "rc_user_directory"
    KEY_REQUEST = "rc_key_requests"


_EMPTY = (0.0, 0.0, 0.0)  # (actions counted, when, leak rate)
_MIN_PRUNE_AT = 1024
_OVERRIDE_CACHE_LIMIT = 50_000
_UNKNOWN: Any = object()


def _configured(config: RateLimitConfig, action: Action) -> RateLimit | None:
    """The limit for `action`, or None when it is off."""
    if not config.enabled:
        return None
    if action is Action.REQUEST:
        return RateLimit(config.per_second, float(config.burst))
    limit: Any = config
    for part in action.value.split("."):
        limit = getattr(limit, part)
    return limit if limit is not None and limit.enabled else None


def limit_exceeded(wait_s: float) -> MatrixError:
    """429 M_LIMIT_EXCEEDED; the HTTP layer adds Retry-After from retry_after_ms."""
    if math.isinf(wait_s):  # a limit that never refills (per_second 0): no time to give
        return MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many requests")
    return MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many requests", retry_after_ms=math.ceil(wait_s * 1000))


class RateLimiter:
    def __init__(self, config: RateLimitConfig, db: Database | None, overrides: RateLimitOverrideStore | None, *,
                 is_exempt: Callable[[str], bool] = lambda user_id: False,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`db` and `overrides`: None for a limiter without admins' overrides (tests).
        `is_exempt`: users never limited (the hook for appservice users whose registration
        says `rate_limited: false`, once appservices exist)."""
        self._limits = {action: _configured(config, action) for action in Action}
        self._message_limit = self._limits[Action.MESSAGE]
        self._db = db
        self._store = overrides
        self._is_exempt = is_exempt
        self._monotonic = monotonic
        self._buckets: dict[tuple[Action, Hashable], tuple[float, float, float]] = {}
        self._prune_at = _MIN_PRUNE_AT
        self._overrides: dict[str, RateLimitOverride | None] = {}
        self._invalidations = 0
        # Set by the app: tell other processes that a user's override changed.
        self.replicate: Callable[[str], None] | None = None

    def enabled(self, action: Action) -> bool:
        return self._limits[action] is not None

    # --- checks ----------------------------------------------------------------------------

    async def check(self, action: Action, key: Hashable, *, user_id: str | None = None, cost: float = 1,
                    update: bool = True) -> None:
        """Count `cost` actions for `key`, or raise 429 M_LIMIT_EXCEEDED (counting nothing).
        `user_id`: who acts, when it is a user (for overrides and exemptions); `update=False`
        only looks (for a second limit that must also pass before either counts)."""
        limit = self._limits[action]
        if limit is None or (user_id is not None and await self.is_exempt(user_id)):
            return
        wait = self._take(action, key, limit.per_second, limit.burst_count, cost, update)
        if wait:
            raise limit_exceeded(wait)

    async def allows(self, action: Action, key: Hashable, *, user_id: str | None = None, cost: float = 1) -> bool:
        """As `check`, answering False instead of raising (for actions dropped silently)."""
        limit = self._limits[action]
        if limit is None or (user_id is not None and await self.is_exempt(user_id)):
            return True
        return not self._take(action, key, limit.per_second, limit.burst_count, cost, True)

    def record(self, action: Action, key: Hashable, cost: float = 1) -> None:
        """Count actions that happened whatever the limit says (a join to a room seen over
        federation, a failed login), so that the next `check` sees them."""
        limit = self._limits[action]
        if limit is None:
            return
        now = self._monotonic()
        count, at, _ = self._buckets.get((action, key), _EMPTY)
        count = max(0.0, count - (now - at) * limit.per_second)
        self._store_bucket((action, key), count + cost, now, limit.per_second)

    async def check_message(self, user_id: str, *, is_admin: bool, admin_redaction: bool = False,
                            update: bool = True) -> None:
        """An event sent by a client (rc_message), or a moderator's redaction of another's
        event (rc_admin_redaction when configured). Server admins are exempt."""
        limit = self._message_limit
        if limit is None or is_admin or self._is_exempt(user_id):
            return
        per_second, burst = limit.per_second, limit.burst_count
        override = await self.override_of(user_id)
        if override is not None:
            if not override.messages_per_second:
                return
            per_second, burst = float(override.messages_per_second), float(override.burst_count)
        action = Action.MESSAGE
        if admin_redaction and (redaction := self._limits[Action.ADMIN_REDACTION]) is not None:
            action, per_second, burst = Action.ADMIN_REDACTION, redaction.per_second, redaction.burst_count
        wait = self._take(action, user_id, per_second, burst, 1, update)
        if wait:
            raise limit_exceeded(wait)

    async def check_join(self, user_id: str, room_id: str, *, remote: bool) -> None:
        """A local user joining a room they are not in: the room's recent joins (looked at,
        counted by `joined` once the join happened) and the user's joins, local or through
        another server (rc_joins_per_room, rc_joins.local / rc_joins.remote)."""
        await self.check(Action.JOINS_PER_ROOM, room_id, user_id=user_id, update=False)
        await self.check(Action.JOIN_REMOTE if remote else Action.JOIN_LOCAL, user_id, user_id=user_id)

    def joined(self, room_id: str) -> None:
        """Someone joined the room (from here or from another server)."""
        self.record(Action.JOINS_PER_ROOM, room_id)

    async def check_invite(self, room_id: str | None, invitee: str, issuer: str | None) -> None:
        """An invite: into the room (when we decide for the room), of the invitee, by the
        issuer (when a local user sends it), as Synapse's rc_invites. Counted only when all pass."""
        checks = [(Action.INVITE_PER_USER, invitee)]
        if room_id is not None:
            checks.append((Action.INVITE_PER_ROOM, room_id))
        if issuer is not None:
            checks.append((Action.INVITE_PER_ISSUER, issuer))
        for update in (False, True):
            for action, key in checks:
                await self.check(action, key, user_id=issuer, update=update)

    def allows_at_once(self, action: Action, count: int) -> bool:
        """Whether `count` actions could ever pass together (within the burst)."""
        limit = self._limits[action]
        return limit is None or count <= limit.burst_count

    async def is_exempt(self, user_id: str) -> bool:
        if self._is_exempt(user_id):
            return True
        override = await self.override_of(user_id)
        return override is not None and not override.messages_per_second

    def _take(self, action: Action, key: Hashable, per_second: float, burst: float, cost: float,
              update: bool) -> float:
        """0 when allowed (counted when `update`), else the seconds until it would be."""
        now = self._monotonic()
        count, at, _ = self._buckets.get((action, key), _EMPTY)
        count = max(0.0, count - (now - at) * per_second)
        # Written as Synapse does, so that a float count a hair over the line is not let through.
        if count > burst - cost:
            return (count + cost - burst) / per_second if per_second > 0 else math.inf
        if update:
            self._store_bucket((action, key), count + cost, now, per_second)
        return 0.0

    def _store_bucket(self, bucket: tuple[Action, Hashable], count: float, now: float, per_second: float) -> None:
        self._buckets[bucket] = (count, now, per_second)
        if len(self._buckets) > self._prune_at:
            self.prune()

    def prune(self) -> None:
        """Drop the buckets that have leaked empty (they are the same as no bucket)."""
        now = self._monotonic()
        self._buckets = {k: v for k, v in self._buckets.items() if v[0] - (now - v[1]) * v[2] > 0}
        self._prune_at = max(_MIN_PRUNE_AT, 2 * len(self._buckets))

    # --- admins' per-user overrides ----------------------------------------------------------

    async def override_of(self, user_id: str) -> RateLimitOverride | None:
        """The user's override, read once and then kept (changes go through this object, or
        arrive from other processes through `forget_override`)."""
        cached = self._overrides.get(user_id, _UNKNOWN)
        if cached is not _UNKNOWN:
            return cached
        if self._store is None:
            return None
        invalidations = self._invalidations
        found = await self._store.get(user_id)
        if invalidations == self._invalidations:  # not changed meanwhile: safe to keep
            if len(self._overrides) >= _OVERRIDE_CACHE_LIMIT:
                self._overrides.clear()
            self._overrides[user_id] = found
        return found

    async def set_override(self, user_id: str, messages_per_second: int, burst_count: int) -> RateLimitOverride:
        """Write a user's override (in the caller's transaction, if any); it applies from the commit."""
        assert self._store is not None and self._db is not None
        await self._store.set(user_id, messages_per_second, burst_count)
        await self._db.after_commit(lambda: self._changed(user_id))
        return RateLimitOverride(messages_per_second, burst_count)

    async def delete_override(self, user_id: str) -> None:
        assert self._store is not None and self._db is not None
        await self._store.delete(user_id)
        await self._db.after_commit(lambda: self._changed(user_id))

    def forget_override(self, user_id: str) -> None:
        """Another process changed the user's override: read it again when next needed."""
        self._invalidations += 1
        self._overrides.pop(user_id, None)

    async def _changed(self, user_id: str) -> None:
        self.forget_override(user_id)
        if self.replicate is not None:
            self.replicate(user_id)
