"""Waking waiting long-polls (/sync) when something that concerns their user is committed.

In memory, per user: a waiting request parks a future under its user ID; a committed change
resolves the futures of exactly the users it concerns, so an idle server does no work and a
change costs one dict lookup per interested user, not a query per waiter.
(Several processes on one database will learn of each other's changes over LISTEN/NOTIFY.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from homeserver.core.events import Event
from homeserver.services.rooms.state import RoomStateCache, SnapshotMemo
from homeserver.services.streams.tracker import StreamTracker
from storage.events import EventStore


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def notify_users(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            for future in self._waiters.pop(user_id, ()):
                if not future.done():
                    future.set_result(None)

    def notify_when_visible(self, tracker: StreamTracker, position: int, user_ids: set[str]) -> None:
        """Wake `user_ids` once `position` of the tracker's stream is visible to readers."""
        tracker.when_visible(position, lambda: self.notify_users(user_ids))

    def register(self, user_id: str) -> asyncio.Future[None]:
        """Park a future for `user_id` now, before checking for changes one last time, so a
        change committed in between is not missed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(user_id, set()).add(future)
        return future

    async def wait(self, user_id: str, future: asyncio.Future[None], timeout_s: float) -> bool:
        """Wait on a registered future; True when woken, False on timeout. Always unregisters."""
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    self._waiters.pop(user_id, None)


class RoomEventNotifications:
    """Turns committed room events into wake-ups: the room's joined members, and the target
    of a membership event (an invitee is not a member yet)."""

    def __init__(self, events: EventStore, notifier: Notifier, stream: StreamTracker, rooms: RoomStateCache) -> None:
        self._events = events
        self._notifier = notifier
        self._stream = stream
        # The room's joined, invited and knocking members, cached per state snapshot.
        self._to_wake = SnapshotMemo(rooms, self._members_to_wake)
        # Set by the app: tell other processes (position, rooms, invitees and other targets).
        self.replicate: Callable[[int, list[str], list[str]], None] | None = None

    async def on_persisted(self, published: list[tuple[Event, int]]) -> None:
        users: set[str] = set()
        for room_id in {event.room_id for event, _ in published}:
            users.update(await self._to_wake.get(room_id))
        targets = [e.state_key for e, _ in published if e.type == "m.room.member" and e.state_key]
        users.update(targets)
        if self.replicate is not None:
            self.replicate(max(p for _, p in published), sorted({e.room_id for e, _ in published}), targets)
        # Wake them only once a sync can see the batch (a lower position may still be in flight).
        self._notifier.notify_when_visible(self._stream, max(p for _, p in published), users)

    async def _members_to_wake(self, room_id: str, _snap: object) -> frozenset[str]:
        members = await self._events.members(room_id)
        return frozenset(u for u, m in members.items() if m in ("join", "invite", "knock"))
