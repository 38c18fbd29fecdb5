"""Hot room state in memory: each room's version, current state, snapshot and extremities.

A send needs the room's current state (for auth events and the auth check) and its forward
extremities (for prev_events). Both live here once loaded, and the event pipeline updates
them itself after every persist, so a warm send reads nothing from the database. Parsed
events are cached too (auth checks read the same few state events over and over).

Invalidation: `forget(room_id)` drops a room when another process wrote into it (LISTEN/NOTIFY,
services/replication.py). A snapshot carries the room's head version (storage: room_heads):
a batch built on a snapshot another process has since overtaken is refused by the database,
whatever the announcements' timing, and rebuilt on a fresh snapshot (rooms/events.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sized
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from homeserver.caching import ENTRY_OVERHEAD, ID_BYTES, ByteLRU, json_size
from homeserver.core.events import Event, stored_event
from homeserver.core.room_versions import RoomVersion, get_room_version
from storage.events import EventRow, EventStore
from storage.room_heads import RoomHeadQueries

# What an Event holds besides its PDU (the dataclass, the prev/auth tuples).
EVENT_OVERHEAD = 400
# A current-state entry: the (type, state_key) tuple and its strings, the event ID, the slot.
STATE_ENTRY_BYTES = 300
EXTREMITY_BYTES = 150

# A state snapshot is stored as a delta on its parent (the entries that changed) until the
# chain of deltas down to the last full copy would reach max(MIN, a quarter of the state),
# at most MAX; then as a full copy. Copies every quarter of the state keep storage linear in
# the changes (a fixed period made a room of S state events write S²/(2·period) rows), and
# the cap keeps a read's walk of the chain short in a very big room.
DELTA_CHAIN_MIN = 50
DELTA_CHAIN_MAX = 500


def delta_chain_limit(state_entries: int) -> int:
    """The chain length at which a room with `state_entries` state entries stores a full copy."""
    return max(DELTA_CHAIN_MIN, min(state_entries // 4, DELTA_CHAIN_MAX))


@dataclass
class RoomSnapshot:
    """The room as the next local event will see it. Mutated only under the room's lock."""
    room_id: str
    version: RoomVersion
    state_group: int | None
    chain_length: int
    state: dict[tuple[str, str], str]
    extremities: dict[str, int] = field(default_factory=dict)  # event_id -> depth
    # The room_heads version these extremities and this state are at (0: never written).
    head: int = 0
    # Set by the pipeline on the snapshot a local batch left: (the group it was built on,
    # this snapshot's group, the state keys the batch set), so that values derived from the
    # state (SnapshotMemo) are updated from the change instead of derived again. Valid only
    # while `state_group` is the second item (a copy built on further keeps a stale one).
    delta: tuple[int | None, int | None, tuple[tuple[str, str], ...]] | None = None


class EventCache:
    """event_id -> parsed Event, at most `max_bytes` (estimated), least recently used out first."""

    def __init__(self, events: EventStore, max_bytes: int) -> None:
        self._events = events
        self._cache: ByteLRU[str, Event] = ByteLRU(max_bytes, event_size)
        self.cache_stats = self._cache.stats

    def put(self, event: Event) -> None:
        self._cache.put(event.event_id, event)

    def forget_room(self, room_id: str) -> None:
        """Drop the room's events (its history was purged)."""
        for event_id in self._cache:
            event = self._cache.peek(event_id)
            if event is not None and event.room_id == room_id:
                self._cache.pop(event_id)

    async def get_many(self, event_ids: Iterable[str], version: RoomVersion) -> dict[str, Event]:
        found: dict[str, Event] = {}
        missing = []
        for event_id in event_ids:
            event = self._cache.get(event_id)
            if event is None:
                missing.append(event_id)
            else:
                found[event_id] = event
        if missing:
            for row in (await self._events.get_events(missing)).values():
                event = event_from_row(row, version)
                self.put(event)
                found[event.event_id] = event
        return found


def event_size(event: Event) -> int:
    """Estimated bytes of a parsed event: its PDU, and the Event's own fields and tuples."""
    return json_size(event.pdu) + EVENT_OVERHEAD


def snapshot_size(snap: RoomSnapshot) -> int:
    """Estimated bytes of a room's snapshot: a (type, state_key) -> event ID entry per state
    event, an entry per forward extremity."""
    return STATE_ENTRY_BYTES * len(snap.state) + EXTREMITY_BYTES * len(snap.extremities) + ENTRY_OVERHEAD


def event_from_row(row: EventRow, version: RoomVersion) -> Event:
    """The parsed event of a stored row, under the ID it was stored with (checked at intake)."""
    return stored_event(row.pdu, version, row.event_id)


class RoomStateCache:
    def __init__(self, heads: RoomHeadQueries, event_cache: EventCache, max_bytes: int) -> None:
        self._heads = heads
        self.events = event_cache
        # Least recently used out first, past `max_bytes`: a dropped room is loaded again.
        self._snapshots: ByteLRU[str, RoomSnapshot] = ByteLRU(max_bytes, snapshot_size)
        self.cache_stats = self._snapshots.stats

    async def snapshot(self, room_id: str) -> RoomSnapshot | None:
        """The room's snapshot, loaded on first use; None when the room is unknown here."""
        snap = self._snapshots.get(room_id)
        if snap is not None:
            return snap
        head = await self._heads.head_of(room_id)  # one statement: a consistent picture
        if head is None:
            return None
        snap = RoomSnapshot(room_id, get_room_version(head.room_version), head.state_group, head.chain_length,
                            head.state, head.extremities, head.version)
        self._snapshots.put(room_id, snap)
        return snap

    def cached(self, room_id: str) -> RoomSnapshot | None:
        """The room's snapshot if it is loaded (no database read)."""
        return self._snapshots.peek(room_id)

    def writer_lock(self, room_id: str) -> AbstractAsyncContextManager[None]:
        """The room's writer lock across processes, for a batch built and stored under it."""
        return self._heads.room_writer_lock(room_id)

    def put(self, snap: RoomSnapshot) -> None:
        self._snapshots.put(snap.room_id, snap)

    def forget(self, room_id: str) -> None:
        self._snapshots.pop(room_id)

    async def state_events(self, snap: RoomSnapshot, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        """The current state events at `keys` (those that exist)."""
        ids = {key: snap.state[key] for key in keys if key in snap.state}
        events = await self.events.get_many(ids.values(), snap.version)
        return {key: events[event_id] for key, event_id in ids.items() if event_id in events}


T = TypeVar("T")
# The ceiling of a SnapshotMemo created without one (its values: a few identifiers per room).
DEFAULT_MEMO_BYTES = 2 * 1024 * 1024


# update(room_id, the value at the snapshot before, the new snapshot, the state events the
# batch set): the new value, or None to derive it from the whole state.
MemoUpdate = Callable[[str, T, RoomSnapshot, dict[tuple[str, str], Event]], Awaitable[T | None]]


class SnapshotMemo(Generic[T]):
    """A value derived from a room's current state (its members, its servers...), kept while
    the room stays on the same state snapshot. Any state event (a membership change among
    them) moves the room to a new snapshot, messages do not, and another process's write makes
    this one reload the snapshot: so a cached value is never older than the state it came from.
    A room with no snapshot (unknown, or only out-of-band memberships) is derived every time.
    At most `max_bytes` of values (`size_of` estimates one), least recently used out first.

    With `update`, a snapshot that a local batch made from the one the value was kept for
    (RoomSnapshot.delta) gets its value from the old one and the few state events the batch
    set (a join: one member event), not from the whole state again: filling a room of N
    members costs N updates, not N derivations of up to N members."""

    def __init__(self, rooms: RoomStateCache, derive: Callable[[str, RoomSnapshot | None], Awaitable[T]],
                 max_bytes: int = DEFAULT_MEMO_BYTES, size_of: Callable[[T], int] | None = None, *,
                 update: MemoUpdate[T] | None = None) -> None:
        self._rooms = rooms
        self._derive = derive
        self._update = update
        measure = size_of or ids_size
        self._values: ByteLRU[str, tuple[int, T]] = ByteLRU(max_bytes, lambda entry: measure(entry[1]))
        self.cache_stats = self._values.stats

    async def get(self, room_id: str) -> T:
        return await self.get_at(room_id, await self._rooms.snapshot(room_id))

    async def get_at(self, room_id: str, snap: RoomSnapshot | None) -> T:
        """The value for a given snapshot of the room (the one a batch left, evaluated later)."""
        group = snap.state_group if snap is not None else None
        cached = self._values.get(room_id) if group is not None else None
        if cached is not None and cached[0] == group:
            return cached[1]
        if cached is not None and snap is not None and self._update is not None and snap.delta is not None \
                and snap.delta[0] == cached[0] and snap.delta[1] == group:
            changed = await self._rooms.state_events(snap, snap.delta[2])
            updated = await self._update(room_id, cached[1], snap, changed)
            if updated is not None:
                self._values.put(room_id, (group, updated))
                return updated
        value = await self._derive(room_id, snap)
        if group is not None:
            self._values.put(room_id, (group, value))
        return value

    def forget(self, room_id: str) -> None:
        """Drop a room's value: for state written behind the pipeline's back (tests)."""
        self._values.pop(room_id)


def member_changes(changed: dict[tuple[str, str], Event]) -> dict[str, str | None]:
    """user ID -> their membership now, for the member events among a batch's state changes."""
    return {key[1]: _str(event.content.get("membership")) for key, event in changed.items()
            if key[0] == "m.room.member"}


async def update_joined_servers(room_id: str, old: set[str], snap: RoomSnapshot,
                                changed: dict[tuple[str, str], Event]) -> set[str] | None:
    """A SnapshotMemo update of the servers of a room's joined members: a join adds its
    server; a member of a server in the set who is no longer joined may have been its last
    one (derive again)."""
    servers = set(old)
    for user_id, membership in member_changes(changed).items():
        server = user_id.split(":", 1)[1] if ":" in user_id else ""
        if membership == "join":
            servers.add(server)
        elif server in old:
            return None
    return servers


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def ids_size(values: Any) -> int:
    """Estimated bytes of a set or tuple of identifiers (user IDs, server names)."""
    return ID_BYTES * len(values) if isinstance(values, Sized) else 0
