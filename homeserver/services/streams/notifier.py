"""Waking waiting long-polls (/sync) when something that concerns their user is committed.

In memory, per user: a waiting request parks a future under its user ID; a committed change
resolves the futures of exactly the users it concerns, so an idle server does no work and a
change costs one dict lookup per interested user, not a query per waiter. A room ID is a key
too: a user peeking into a room they are not in (GET /events?room_id=) waits under it, and the
room's events, typing and receipts wake it.
(Several processes on one database will learn of each other's changes over LISTEN/NOTIFY.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable

from homeserver.services.streams.tracker import StreamTracker


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

    def waiting_users(self) -> Collection[str]:
        """The users with a waiting /sync (a view: read it at once)."""
        return self._waiters.keys()

    def waiting(self) -> int:
        """How many long-polls are parked now (for /metrics: counted when scraped, never on
        the hot path)."""
        return sum(map(len, self._waiters.values()))

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
