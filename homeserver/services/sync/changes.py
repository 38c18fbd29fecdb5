"""Where each room and each user's memberships last changed on the room-event stream.

An incremental /sync asks which of the user's rooms moved since its token, and whether the
user's own memberships did. Walking every room of the user to find out makes a /sync with
nothing new cost as much as the user has rooms. This keeps, filled by the event pipeline as
batches are stored (before their positions become visible), the last position at which each
room had an event or a membership row and at which each user's memberships changed, in
position order, so that "what changed after `since`" costs what changed, not what the user
has (Synapse's stream change cache).

What a reader may trust (otherwise it is told "unknown" and works it out from the database):
only positions above `floor`: the position it started at, raised when entries are dropped
(the oldest first, past `max_entries`) or when stored rows are deleted behind the pipeline's
back (`forget_all`), and above the stream tracker's `foreign_upto`, since another process's
writes are announced here by position only.
"""

from __future__ import annotations

from bisect import insort

from homeserver.services.streams.tracker import StreamTracker
from storage.events import PersistBatch

# Entities (rooms, users) remembered per kind; older ones are forgotten (raising the floor).
MAX_ENTRIES = 10_000


class StreamChanges:
    """entity -> the last position at which it changed, above a floor."""

    def __init__(self, stream: StreamTracker, max_entries: int = MAX_ENTRIES) -> None:
        self._stream = stream
        self._max_entries = max_entries
        self._last: dict[str, int] = {}
        # (position, entity) in position order; an entity's older pairs stay until compacted.
        self._order: list[tuple[int, str]] = []
        self._floor = stream.current

    def changed(self, entity: str, position: int) -> None:
        if position <= self._last.get(entity, 0):
            return
        self._last[entity] = position
        insort(self._order, (position, entity))  # near the end: positions arrive nearly in order
        if len(self._order) > 2 * self._max_entries:
            self._compact()

    def forget_all(self) -> None:
        """Trust nothing up to now (stored rows were deleted or rewritten)."""
        self._floor = max(self._floor, self._stream.current, *(p for p, _ in self._order[-1:]))
        self._last.clear()
        self._order.clear()

    def known_after(self, position: int) -> bool:
        """Whether every change after `position` is held here."""
        return position >= max(self._floor, self._stream.foreign_upto)

    def changed_after(self, entity: str, position: int) -> bool | None:
        """Whether `entity` changed after `position`; None when unknown."""
        if not self.known_after(position):
            return None
        return self._last.get(entity, 0) > position

    def entities_changed_after(self, position: int, at_most: int) -> set[str] | None:
        """The entities that changed after `position`; None when unknown or when more than
        `at_most` did (asking entity by entity is then cheaper)."""
        if not self.known_after(position):
            return None
        found: set[str] = set()
        order = self._order
        for i in range(len(order) - 1, -1, -1):
            changed_at, entity = order[i]
            if changed_at <= position:
                break
            if self._last.get(entity) == changed_at:
                found.add(entity)
                if len(found) > at_most:
                    return None
        return found

    def _compact(self) -> None:
        """Drop superseded pairs, then the oldest entities past `max_entries` (raising the floor)."""
        self._order = [(p, e) for p, e in self._order if self._last.get(e) == p]
        excess = len(self._order) - self._max_entries
        if excess > 0:
            dropped, self._order = self._order[:excess], self._order[excess:]
            for _, entity in dropped:
                del self._last[entity]
            self._floor = max(self._floor, dropped[-1][0])


class SyncChanges:
    """The rooms' and the users' memberships' last changes, filled by EventService.on_stored."""

    def __init__(self, stream: StreamTracker, max_entries: int = MAX_ENTRIES) -> None:
        self.rooms = StreamChanges(stream, max_entries)
        self.memberships = StreamChanges(stream, max_entries)

    def stored(self, batch: PersistBatch) -> None:
        # Every row with a position moves its room, outliers and rejected events too: a
        # superset of what a sync shows, narrowed by the exact reads that follow.
        newest = max((e.stream_ordering or 0 for e in batch.events), default=0)
        newest = max(newest, *(m.stream_ordering for m in batch.memberships)) if batch.memberships else newest
        if newest > 0:
            self.rooms.changed(batch.room_id, newest)
        for change in batch.memberships:
            self.memberships.changed(change.user_id, change.stream_ordering)

    def forget_all(self) -> None:
        self.rooms.forget_all()
        self.memberships.forget_all()
