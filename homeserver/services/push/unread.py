"""Unread counts kept in memory, so that a sync does not count a room's unread messages again.

Counting a user's unread notifications reads every push action above their read receipt: as
many rows as they have unread messages (2,000 for each of 50 users after hsbench's send
phase: 140 ms for one fan-out of one message). Once counted, a (user, room)'s counts are
kept here and moved by what moves them:
- new push actions (PushEvaluator: `added`, after they are stored) add to the counts kept;
- a read receipt of the user in the room (ReceiptService, through the app) drops the entry,
  and so do deleted push actions (redactions: the room's entries) and purges (`forget_room`);
- another process's events and receipts are announced by position only: an entry counted
  before a position another process wrote (the stream trackers' `foreign_upto`) is dropped.
Every change is wrapped in `changing()`: a count read from the database is kept only when no
change began or was under way while it was read, so nothing is counted twice or missed.

New events' push actions are written in the background, after their stream positions became
visible (the evaluator registers them here with `evaluating` before that). The counts kept
move as soon as the actions are evaluated, before their INSERT commits: a reader of kept
counts waits only for the evaluation (`counted`), a reader that counts from the database for
the rows (`settled`). Either way a /sync that returns an event returns counts that include it.
Bounded in bytes (config caches.unread_counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from homeserver.caching import ENTRY_OVERHEAD, ByteLRU
from homeserver.services.streams.tracker import StreamTracker
from storage.push import PushAction

# A kept entry: the counts dict, its key, a thread or two.
COUNTS_BYTES = 400


@dataclass(slots=True)
class _Counted:
    counts: dict[str, Any]  # RoomUnreadCounts
    events_at: int  # the room-event stream position when it was counted
    aux_at: int  # the aux stream position (receipts) when it was counted


@dataclass(frozen=True, slots=True)
class CountToken:
    """Taken before counting from the database: says whether the count may be kept."""
    generation: int
    events_at: int
    aux_at: int


class UnreadCounts:
    def __init__(self, events: StreamTracker, aux: StreamTracker, max_bytes: int) -> None:
        self._events = events
        self._aux = aux
        self._cache: ByteLRU[tuple[str, str], _Counted] = ByteLRU(
            max_bytes, lambda entry: COUNTS_BYTES + ENTRY_OVERHEAD * len(entry.counts["threads"]),
            on_evict=self._evicted)
        self.cache_stats = self._cache.stats
        self._users_of_room: dict[str, set[str]] = {}
        self._generation = 0
        self._changing = 0
        # room_id -> done once the push actions of the room's events published so far are written,
        # and once the counts kept include them (evaluated, maybe not written yet).
        self._evaluating: dict[str, asyncio.Future[None]] = {}
        self._counting: dict[str, asyncio.Future[None]] = {}
        # room_id -> (the room's `counted` future, the users evaluated first because a /sync
        # of theirs was waiting, done once the counts kept of those include the events).
        self._early: dict[str, tuple[asyncio.Future[None], frozenset[str], asyncio.Future[None]]] = {}

    def evaluating(self, room_id: str, written: asyncio.Future[None],
                   counted: asyncio.Future[None] | None = None) -> None:
        """The push actions of events of the room (and of those registered before) are being
        evaluated and written: `counted` is done when the counts kept include them, `written`
        when they are stored."""
        for pending, future in ((self._evaluating, written), (self._counting, counted)):
            if future is not None:
                pending[room_id] = future
                future.add_done_callback(lambda _, p=pending, f=future: _forget(p, room_id, f))
        self._early.pop(room_id, None)  # nobody's counts include these events yet

    def evaluating_first(self, room_id: str, counted: asyncio.Future[None], users: frozenset[str],
                         first: asyncio.Future[None]) -> None:
        """Of the evaluation `counted` stands for, `users` come first: `first` is done once
        their counts kept include its events (before the other members are evaluated)."""
        if self._counting.get(room_id) is counted and not counted.done():
            self._early[room_id] = (counted, users, first)
            counted.add_done_callback(lambda _: self._early.pop(room_id, None)
                                      if self._early.get(room_id, (None,))[0] is counted else None)

    async def settled(self, room_ids: Iterable[str] | None = None) -> None:
        """Wait until the push actions of the rooms' (all rooms' with None) events published
        so far are written: before counting from the database."""
        await _wait(self._evaluating, room_ids)

    async def counted(self, room_ids: Iterable[str], user_id: str | None = None) -> None:
        """Wait until the counts kept (of `user_id`, or of everyone) include the push actions
        of the rooms' events published so far (they may not be written yet): before reading
        kept counts."""
        if user_id is None:
            await _wait(self._counting, room_ids)
            return
        waits = []
        for room_id in room_ids:
            counted = self._counting.get(room_id)
            if counted is None:
                continue
            early = self._early.get(room_id)
            wait = early[2] if early is not None and early[0] is counted and user_id in early[1] else counted
            if not wait.done():
                waits.append(wait)
        if waits:
            await asyncio.wait(waits)

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Around any write that moves counts (push actions, receipts): counts read meanwhile
        are not kept."""
        self._changing += 1
        self._generation += 1
        try:
            yield
        finally:
            self._changing -= 1
            self._generation += 1

    def added(self, actions: Iterable[PushAction]) -> None:
        """Push actions stored (inside `changing`): each counts where its user's count is kept."""
        for action in actions:
            entry = self._cache.peek((action.user_id, action.room_id))
            if entry is None or not (action.notify or action.highlight):
                continue
            counts = entry.counts
            if action.thread_id is not None:
                counts = counts["threads"].setdefault(action.thread_id,
                                                      {"notification_count": 0, "highlight_count": 0})
            counts["notification_count"] += 1 if action.notify else 0
            counts["highlight_count"] += 1 if action.highlight else 0

    @contextlib.contextmanager
    def read_moving(self, user_id: str, room_id: str) -> Iterator[None]:
        """Around a write of the user's read receipt in the room: their count goes."""
        with self.changing():
            yield
            self._drop((user_id, room_id))

    def forget_room(self, room_id: str) -> None:
        """The room's push actions were deleted (redactions, a purge): count it again."""
        self._generation += 1
        for user_id in self._users_of_room.pop(room_id, ()):
            self._cache.pop((user_id, room_id))

    def get(self, user_id: str, room_id: str) -> dict[str, Any] | None:
        """A copy of the kept counts, or None when they must be counted."""
        entry = self._cache.get((user_id, room_id))
        if entry is None:
            return None
        if self._events.foreign_upto > entry.events_at or self._aux.foreign_upto > entry.aux_at:
            self._drop((user_id, room_id))  # another process may have moved them
            return None
        return copy.deepcopy(entry.counts)

    def token(self) -> CountToken:
        return CountToken(self._generation, self._events.current, self._aux.current)

    def keep(self, token: CountToken, user_id: str, room_id: str, counts: dict[str, Any]) -> None:
        """Keep counts read from the database since `token`, unless something moved meanwhile."""
        if token.generation != self._generation or self._changing:
            return
        self._cache.put((user_id, room_id), _Counted(copy.deepcopy(counts), token.events_at, token.aux_at))
        self._users_of_room.setdefault(room_id, set()).add(user_id)

    def _drop(self, key: tuple[str, str]) -> None:
        if self._cache.pop(key) is not None:
            self._evicted(key, None)

    def _evicted(self, key: tuple[str, str], _: _Counted | None) -> None:
        users = self._users_of_room.get(key[1])
        if users is not None:
            users.discard(key[0])
            if not users:
                del self._users_of_room[key[1]]


def _forget(pending: dict[str, asyncio.Future[None]], room_id: str, future: asyncio.Future[None]) -> None:
    if pending.get(room_id) is future:
        del pending[room_id]


async def _wait(pending: dict[str, asyncio.Future[None]], room_ids: Iterable[str] | None) -> None:
    futures = pending.values() if room_ids is None else (pending.get(r) for r in room_ids)
    # Done ones are left out: asyncio.wait would still give up a turn of the event loop.
    waits = [f for f in futures if f is not None and not f.done()]
    if waits:
        await asyncio.wait(waits)
