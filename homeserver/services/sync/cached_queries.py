"""SyncQueries answered from memory where the event pipeline's own view suffices.

A /sync woken by a new message used to ask the database, for that one message: the user's
memberships now and at `since` (two queries), which rooms have news, the rooms' new events,
and who joined or left meanwhile. The event pipeline saw every one of those rows when it
stored them, so they are answered here from memory (rooms.recent.RecentEvents and the
user's memberships below), falling back to the database query whenever memory cannot be
sure (older positions, another process's writes, evicted rooms).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.caching import ByteLRU
from homeserver.services.rooms.recent import RecentEvents
from homeserver.services.streams.tracker import StreamTracker
from homeserver.services.sync.changes import SyncChanges
from storage.database import Database
from storage.events import EventRow, PersistBatch
from storage.sync import RoomMembershipAt, SyncQueries

# A room's RoomMembershipAt in a user's map, with its slot.
MEMBERSHIP_BYTES = 400


@dataclass(frozen=True, slots=True)
class _Memberships:
    rooms: dict[str, RoomMembershipAt]
    as_of: int  # read at this position
    last_change: int  # the newest of them: they hold at every position from here to as_of


class UserMemberships:
    """Each user's latest membership per room, as of their last change. An entry read at the
    current position stays right until one of their memberships changes: the event pipeline
    drops it then (before the change becomes visible), and a read racing a change is not kept."""

    def __init__(self, queries: SyncQueries, stream: StreamTracker, max_bytes: int) -> None:
        self._queries = queries
        self._stream = stream
        self._cache: ByteLRU[str, _Memberships] = ByteLRU(
            max_bytes, lambda entry: MEMBERSHIP_BYTES * len(entry.rooms))
        self.cache_stats = self._cache.stats
        self._generation = 0  # bumped by every membership change stored
        self._stored_upto = 0  # the highest position of a membership change stored

    def forget_all(self) -> None:
        """Drop every entry (membership rows were deleted behind the pipeline's back)."""
        self._cache.clear()
        self._generation += 1

    def stored(self, batch: PersistBatch) -> None:
        """EventService.on_stored: drop the users whose memberships changed."""
        for change in batch.memberships:
            self._cache.pop(change.user_id)
            self._generation += 1
            self._stored_upto = max(self._stored_upto, change.stream_ordering)

    async def at(self, user_id: str, position: int) -> dict[str, RoomMembershipAt]:
        """room_id -> the user's latest membership at or before `position`."""
        entry = self._cache.get(user_id)
        if entry is not None and entry.last_change <= position and (
                position <= entry.as_of or self._stream.foreign_upto <= entry.as_of):
            return entry.rooms
        generation, current = self._generation, self._stream.current
        rooms = await self._queries.memberships_at(user_id, position)
        # Kept only when read at the visible position with no change in flight or meanwhile:
        # then any later change of this user drops it.
        if position == current and self._generation == generation and self._stored_upto <= current:
            last_change = max((m.stream_ordering for m in rooms.values()), default=0)
            self._cache.put(user_id, _Memberships(rooms, position, last_change))
        return rooms


class CachedSyncQueries(SyncQueries):
    """SyncQueries whose per-sync reads come from memory when it knows the answer."""

    def __init__(self, db: Database, recent: RecentEvents, memberships: UserMemberships,
                 changes: SyncChanges | None = None) -> None:
        super().__init__(db)
        self._recent = recent
        self._memberships = memberships
        self._changes = changes

    def forget_room(self, room_id: str) -> None:
        """A room's events or memberships were deleted (a purge): nothing held of them is right."""
        self._recent.forget(room_id)
        self._memberships.forget_all()
        if self._changes is not None:
            self._changes.forget_all()

    async def memberships_at(self, user_id: str, position: int) -> dict[str, RoomMembershipAt]:
        return await self._memberships.at(user_id, position)

    async def rooms_with_events_between(self, room_ids: list[str], since: int, upto: int) -> set[str]:
        found = self._recent.rooms_with_events(room_ids, since, upto)
        return found if found is not None else await super().rooms_with_events_between(room_ids, since, upto)

    async def recent_events(self, room_id: str, *, after: int, upto: int, limit: int) -> list[EventRow]:
        rows = self._recent.events(room_id, after=after, upto=upto, limit=limit)
        return rows if rows is not None else await super().recent_events(room_id, after=after, upto=upto,
                                                                          limit=limit)

    async def recent_events_in_rooms(self, windows: list[tuple[str, int, int, int]], *,
                                     no_outliers: bool = False) -> dict[str, list[EventRow]]:
        found: dict[str, list[EventRow]] = {}
        rest = windows
        if no_outliers:  # memory holds the timeline only, no out-of-band events
            rest = []
            for window in windows:
                room_id, after, upto, limit = window
                rows = self._recent.events(room_id, after=after, upto=upto, limit=limit)
                if rows is None:
                    rest.append(window)
                elif rows:
                    found[room_id] = rows
        if rest:
            found.update(await super().recent_events_in_rooms(rest, no_outliers=no_outliers))
        return found

    async def membership_changes_between(self, room_ids: list[str], since: int,
                                         upto: int) -> list[tuple[str, str, str]]:
        found = self._recent.membership_changes(room_ids, since, upto)
        return found if found is not None else await super().membership_changes_between(room_ids, since, upto)
