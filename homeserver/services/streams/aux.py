"""Writing to the aux stream: the per-user changes /sync delivers besides room events.

Account data, receipts, to-device messages, device-list changes and presence share one
position sequence. A writer takes a position, writes its rows at that position, and the users
it names are woken once the position is visible (no lower position still in flight), so a
sync that wakes always finds the change.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable

from homeserver.services.streams.notifier import Notifier
from homeserver.services.streams.tracker import StreamTracker
from storage.aux_stream import AuxStreamStore


class AuxStream:
    def __init__(self, store: AuxStreamStore, tracker: StreamTracker, notifier: Notifier) -> None:
        self._store = store
        self.tracker = tracker
        self._notifier = notifier
        # Set by the app: tell other processes whom to wake at which position.
        self.replicate: Callable[[str, int, list[str]], None] | None = None

    @property
    def current(self) -> int:
        return self.tracker.current

    async def touch(self, wake: Iterable[str]) -> None:
        """Move the stream with no rows: what these users' syncs compute from other tables
        (e.g. one-time key counts) is read again."""
        async with self.write(wake):
            pass

    @contextlib.asynccontextmanager
    async def write(self, wake: Iterable[str]) -> AsyncIterator[int]:
        """Yield a fresh position for the block's rows; wake `wake` when the block succeeded."""
        position = await self._store.next_position()
        self.tracker.start([position])
        try:
            yield position
        except BaseException:
            self.tracker.finish([position])
            raise
        self.tracker.finish([position])
        users = set(wake)
        self._notifier.notify_when_visible(self.tracker, position, users)
        if self.replicate is not None:
            self.replicate("aux", position, sorted(users))
