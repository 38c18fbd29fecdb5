"""Presence: online / unavailable / offline and a status message, shared with users in the same rooms.

Cheap by design: a change is one row and one aux-stream position; nothing runs while users are
idle. Idleness is worked out when presence is read (online but inactive for IDLE_AFTER_MS reads
as unavailable) instead of by per-user timers. Syncing marks a user online (`set_presence`),
rewriting the row at most once per ACTIVE_REFRESH_MS. Can be switched off in the config.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.config import PresenceConfig
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Action, RateLimiter
from homeserver.services.streams.aux import AuxStream
from storage.presence import PresenceRow, PresenceStore
from storage.sync import SyncQueries

STATES = ("online", "unavailable", "offline")
IDLE_AFTER_MS = 5 * 60 * 1000
ACTIVE_REFRESH_MS = 60 * 1000
MAX_STATUS_LENGTH = 1024
# Presence writes an incremental /sync checks one by one; past this many (a long gap) it reads
# the presence of the viewer's room mates instead.
MOVED_PER_SYNC = 200


class PresenceService:
    def __init__(self, store: PresenceStore, queries: SyncQueries, aux: AuxStream, clock: Clock,
                 config: PresenceConfig, *, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._store = store
        self._queries = queries
        self._aux = aux
        self._clock = clock
        self.enabled = config.enabled
        self._recent_syncs: dict[str, tuple[str, int]] = {}  # user -> (state, when this process noted it)
        self._listeners: list[Callable[[str, dict[str, Any]], Awaitable[None]]] = []

    def on_local_change(self, listener: Callable[[str, dict[str, Any]], Awaitable[None]]) -> None:
        """Call `listener(user_id, content)` after a local user's presence was written
        (federation's m.presence); `content` is the m.presence event content."""
        self._listeners.append(listener)

    async def set_status(self, requester: Requester, user_id: str, body: dict[str, Any]) -> None:
        """PUT /presence/{userId}/status; 429 past rc_presence.per_user."""
        if user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot set another user's presence")
        state = body.get("presence")
        if state not in STATES:
            raise MatrixError(400, Codes.INVALID_PARAM, f"'presence' must be one of {', '.join(STATES)}")
        status_msg = body.get("status_msg")
        if status_msg is not None and (not isinstance(status_msg, str) or len(status_msg) > MAX_STATUS_LENGTH):
            raise MatrixError(400, Codes.INVALID_PARAM, "'status_msg' must be a string")
        if not self.enabled:
            return
        await self._limiter.check(Action.PRESENCE, user_id, user_id=user_id)
        await self._write(user_id, state, status_msg, active=state == "online",
                          previous=await self._store.get(user_id))

    async def get_status(self, requester: Requester, user_id: str) -> dict[str, Any]:
        """GET /presence/{userId}/status: your own, or that of a user you share a room with."""
        if not self.enabled:
            return {"presence": "offline"}
        if user_id != requester.user_id and user_id not in await self._queries.users_sharing_rooms(requester.user_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You do not share a room with this user")
        row = await self._store.get(user_id)
        if row is None:
            return {"presence": "offline"}
        return self._content(row)

    async def on_sync(self, user_id: str, set_presence: str | None) -> None:
        """A sync marks its user online (unless it asks otherwise), throttled; past
        rc_presence.per_user the update is ignored (the sync goes on), as Synapse."""
        if not self.enabled or set_presence == "offline":
            return
        state = set_presence or "online"
        now = self._clock.now_ms()
        recent = self._recent_syncs.get(user_id)
        if recent is not None and recent[0] == state and now - recent[1] < ACTIVE_REFRESH_MS:
            return  # this process wrote it a moment ago: no need to read it back
        row = await self._store.get(user_id)
        if row is None or row.state != state or now - row.last_active_ts >= ACTIVE_REFRESH_MS:
            # A bucket of its own, as Synapse's: syncing does not use up PUT /presence's.
            if not await self._limiter.allows(Action.PRESENCE, (user_id, "sync"), user_id=user_id):
                return  # not noted as recent: a later sync tries again
            await self._write(user_id, state, row.status_msg if row else None, active=state == "online",
                              previous=row)
        if len(self._recent_syncs) > 100_000:
            self._recent_syncs.clear()
        self._recent_syncs[user_id] = (state, now)

    async def presence_events(self, user_id: str, since: int | None, upto: int) -> list[dict[str, Any]]:
        """m.presence events of users sharing a room with `user_id` (and their own) in (since, upto]."""
        if not self.enabled or (since is not None and since >= upto):
            return []
        rows = None
        if since is not None:
            # An incremental sync: the few users whose presence moved, each checked against the
            # viewer's rooms, rather than every member of every room of the viewer's.
            moved = await self._store.written_between(since, upto, MOVED_PER_SYNC)
            if len(moved) < MOVED_PER_SYNC:
                others = [r.user_id for r in moved if r.user_id != user_id]
                sharing = await self._queries.sharing_a_room_with(user_id, others)
                rows = [r for r in moved if r.user_id == user_id or r.user_id in sharing]
        if rows is None:  # an initial sync, or a long gap: by the viewer's room mates
            users = await self._queries.users_sharing_rooms(user_id) | {user_id}
            rows = await self._store.of_users(sorted(users), since, upto)
        return [{"type": "m.presence", "sender": r.user_id, "content": self._content(r)} for r in rows]

    async def presence_of_users(self, user_ids: list[str], since: int | None, upto: int) -> list[dict[str, Any]]:
        """m.presence events of these users written in (since, upto] (peeking into a room: its members)."""
        if not self.enabled or not user_ids:
            return []
        rows = await self._store.of_users(sorted(set(user_ids)), since, upto)
        return [{"type": "m.presence", "sender": r.user_id, "content": self._content(r)} for r in rows]

    async def current_states(self, user_ids: list[str]) -> list[dict[str, Any]]:
        """The m.presence event of each of these users now; offline for those never seen."""
        if not self.enabled or not user_ids:
            return []
        found = {e["sender"]: e for e in await self.presence_of_users(user_ids, None, self._aux.current)}
        return [found.get(u) or {"type": "m.presence", "sender": u, "content": {"presence": "offline"}}
                for u in dict.fromkeys(user_ids)]

    async def apply_remote(self, user_id: str, state: str, status_msg: str | None, last_active_ago: int,
                           currently_active: bool) -> None:
        """Presence of another server's user (an m.presence EDU, origin already checked).
        Kept only for users sharing a room with someone here: nobody else could see it."""
        if not self.enabled:
            return
        last_active = self._clock.now_ms() - max(0, last_active_ago)
        wake = await self._queries.users_sharing_rooms(user_id)
        if not wake - {user_id}:
            return
        async with self._aux.write(wake) as position:
            await self._store.put(PresenceRow(user_id, state, status_msg, last_active, currently_active, position))

    # --- internals ---------------------------------------------------------------------------

    async def _write(self, user_id: str, state: str, status_msg: str | None, *, active: bool,
                     previous: PresenceRow | None) -> None:
        now = self._clock.now_ms()
        last_active = now if active or previous is None else previous.last_active_ts
        wake = await self._queries.users_sharing_rooms(user_id) | {user_id}
        async with self._aux.write(wake) as position:
            row = PresenceRow(user_id, state, status_msg, last_active, active, position)
            await self._store.put(row)
        if self._listeners:
            content = self._content(row)
            for listener in self._listeners:
                await listener(user_id, content)

    def _content(self, row: PresenceRow) -> dict[str, Any]:
        ago = max(0, self._clock.now_ms() - row.last_active_ts)
        state = row.state
        if state == "online" and ago > IDLE_AFTER_MS:
            state = "unavailable"
        content: dict[str, Any] = {
            "presence": state,
            "last_active_ago": ago,
            "currently_active": state == "online" and ago < ACTIVE_REFRESH_MS * 2,
        }
        if row.status_msg is not None:
            content["status_msg"] = row.status_msg
        return content
