"""Wake-ups for committed room events: whom a batch of new events concerns.

The room's joined, invited and knocking members (cached per state snapshot, so a send costs
no members query) and the target of a membership event, woken through the notifier once the
events' stream position is visible.
"""

from __future__ import annotations

from collections.abc import Callable

from homeserver.core.events import Event
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache, SnapshotMemo, member_changes
from homeserver.services.streams.notifier import Notifier
from homeserver.services.streams.tracker import StreamTracker
from storage.events import EventStore


class RoomEventNotifications:
    """Turns committed room events into wake-ups: the room's joined members, and the target
    of a membership event (an invitee is not a member yet)."""

    def __init__(self, events: EventStore, notifier: Notifier, stream: StreamTracker, rooms: RoomStateCache,
                 max_bytes: int) -> None:
        self._events = events
        self._notifier = notifier
        self._stream = stream
        # The room's joined, invited and knocking members, cached per state snapshot.
        self._to_wake = SnapshotMemo(rooms, self._members_to_wake, max_bytes, update=self._update_to_wake)
        self.cache_stats = self._to_wake.cache_stats
        # Set by the app: tell other processes (position, rooms, invitees and other targets).
        self.replicate: Callable[[int, list[str], list[str]], None] | None = None

    async def on_persisted(self, published: list[tuple[Event, int]]) -> None:
        users: set[str] = set()
        for room_id in {event.room_id for event, _ in published}:
            users.update(await self._to_wake.get(room_id))
        targets = [e.state_key for e, _ in published if e.type == "m.room.member" and e.state_key]
        users.update(targets)
        users.update({event.room_id for event, _ in published})  # peekers wait under the room's ID
        if self.replicate is not None:
            self.replicate(max(p for _, p in published), sorted({e.room_id for e, _ in published}), targets)
        # Wake them only once a sync can see the batch (a lower position may still be in flight).
        self._notifier.notify_when_visible(self._stream, max(p for _, p in published), users)

    async def _members_to_wake(self, room_id: str, _snap: object) -> frozenset[str]:
        members = await self._events.members(room_id)
        return frozenset(u for u, m in members.items() if m in _WOKEN)

    async def _update_to_wake(self, room_id: str, old: frozenset[str], _snap: RoomSnapshot,
                              changed: dict[tuple[str, str], Event]) -> frozenset[str]:
        """The members after a batch: its member events applied to those before it."""
        members = member_changes(changed)
        if not members:
            return old
        return (old - members.keys()) | {u for u, m in members.items() if m in _WOKEN}


_WOKEN = ("join", "invite", "knock")
