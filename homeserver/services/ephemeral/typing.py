"""Typing notifications: in memory only, as nothing about them needs to survive a restart.

Each change bumps a process-wide serial, and the room remembers the serial of its last change;
a sync token carries the serial it has seen, so a sync sends a room's typing list only when it
changed since. Expiry costs one timer per room with typers (at its earliest expiry), not one
per user, and nothing at all when nobody types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import AccountRestrictions, Requester
from homeserver.services.rooms.membership import MembershipService
from homeserver.services.streams.notifier import Notifier
from storage.events import EventStore

MAX_TYPING_TIMEOUT_MS = 120_000
DEFAULT_TYPING_TIMEOUT_MS = 30_000


class TypingService:
    def __init__(self, membership: MembershipService, events: EventStore, notifier: Notifier,
                 monotonic: Callable[[], float] | None = None, *,
                 restrictions: AccountRestrictions | None = None) -> None:
        self._restrictions = restrictions
        self._membership = membership
        self._events = events
        self._notifier = notifier
        self._monotonic = monotonic or (lambda: asyncio.get_running_loop().time())
        self._typing: dict[str, dict[str, float]] = {}  # room -> user -> expiry (monotonic seconds)
        self._room_serial: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.serial = 0
        self._listeners: list[Callable[[str, str, bool, int], Awaitable[None] | None]] = []
        self._any_listeners: list[Callable[[str, str, bool, int], None]] = []

    def on_change(self, listener: Callable[[str, str, bool, int], Awaitable[None] | None]) -> None:
        """Call `listener(room_id, user_id, typing, timeout_ms)` after a change made through
        this process: a local user's, or a remote user's received over federation (not one
        replicated from another process). Replication tells the other processes; federation
        tells other servers of local users' changes."""
        self._listeners.append(listener)

    def on_any_change(self, listener: Callable[[str, str, bool, int], None]) -> None:
        """Call `listener(room_id, user_id, typing, timeout_ms)` after every change this process
        learns of, those replicated from other processes included: for the appservice feeds,
        which run in whichever process holds each appservice's lease."""
        self._any_listeners.append(listener)

    async def set_typing(self, requester: Requester, room_id: str, user_id: str, body: dict[str, Any]) -> None:
        """PUT /rooms/{roomId}/typing/{userId}."""
        if user_id != requester.user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot set another user's typing state")
        typing = body.get("typing")
        if not isinstance(typing, bool):
            raise MatrixError(400, Codes.BAD_JSON, "'typing' must be a boolean")
        timeout = body.get("timeout", DEFAULT_TYPING_TIMEOUT_MS)
        if typing and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0):
            raise MatrixError(400, Codes.BAD_JSON, "'timeout' must be a non-negative integer")
        if await self._membership.membership_of(room_id, user_id) != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not joined to this room")
        timeout = min(timeout, MAX_TYPING_TIMEOUT_MS) if typing else 0
        if self._restrictions is not None and await self._restrictions.is_shadow_banned(user_id):
            await self._restrictions.shadow_ban_delay()  # seen by nobody, as Synapse
            return
        await self._apply_and_announce(room_id, user_id, typing, timeout)

    async def apply_remote(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        """A remote user's typing from their server (the caller checked origin and membership)."""
        await self._apply_and_announce(room_id, user_id, typing, timeout_ms)

    async def apply(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        """Record a change (local, or from another process) and wake the room's members."""
        typers = self._typing.setdefault(room_id, {})
        was_typing = user_id in typers
        if typing:
            typers[user_id] = self._monotonic() + timeout_ms / 1000
        else:
            typers.pop(user_id, None)
        self._schedule_expiry(room_id)
        for listener in self._any_listeners:
            listener(room_id, user_id, typing, timeout_ms)
        if typing != was_typing:
            await self._changed(room_id)

    def typing_events(self, room_ids: list[str], since_serial: int | None, upto_serial: int) -> dict[str, dict[str, Any]]:
        """room -> m.typing event, for rooms whose typing changed in (since_serial, upto_serial]
        (every room with typers when since is None). A room that changed after `upto_serial`
        waits for the next sync, whose token will cover it: a response never carries a change
        its next_batch does not. A serial from the future (a restart) counts as None."""
        if since_serial is not None and since_serial > self.serial:
            since_serial = None
        out: dict[str, dict[str, Any]] = {}
        for room_id in room_ids:
            serial = self._room_serial.get(room_id)
            if serial is None or serial > upto_serial:
                continue
            typers = self._typing.get(room_id) or {}
            if since_serial is None and not typers:
                continue
            if since_serial is None or serial > since_serial:
                out[room_id] = {"type": "m.typing", "content": {"user_ids": sorted(typers)}}
        return out

    # --- internals ---------------------------------------------------------------------------

    async def _apply_and_announce(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        await self.apply(room_id, user_id, typing, timeout_ms)
        for listener in self._listeners:
            result = listener(room_id, user_id, typing, timeout_ms)
            if result is not None:
                await result

    async def _changed(self, room_id: str) -> None:
        self.serial += 1
        self._room_serial[room_id] = self.serial
        members = await self._events.members(room_id)
        self._notifier.notify_users([*(u for u, m in members.items() if m == "join"), room_id])  # and peekers

    def _schedule_expiry(self, room_id: str) -> None:
        timer = self._timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()
        typers = self._typing.get(room_id)
        if not typers:
            self._typing.pop(room_id, None)
            return
        delay = max(0.0, min(typers.values()) - self._monotonic())
        loop = asyncio.get_running_loop()
        self._timers[room_id] = loop.call_later(delay, lambda: asyncio.ensure_future(self._expire(room_id)))

    async def _expire(self, room_id: str) -> None:
        self._timers.pop(room_id, None)
        typers = self._typing.get(room_id) or {}
        now = self._monotonic()
        expired = [u for u, until in typers.items() if until <= now]
        for user_id in expired:
            del typers[user_id]
        self._schedule_expiry(room_id)
        if expired:
            await self._changed(room_id)
