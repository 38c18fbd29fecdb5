"""Rooms joined with a partial state (faster joins, MSC3706/MSC3902): which they are, the
servers we were told are in them, and the wait for their full state.

Use case: after a join whose send_join answer left the members out, the room works at once
(send, read, sync) while federation/partial_state.py fetches the full state in the background.
Readers that need every member (/members, /joined_members) wait here until it is in, as
Synapse blocks them, but for a bounded time, then answer from what is known.

Invariant: the in-memory view mirrors partial_state_rooms (loaded once, then changed only
through `mark` and `clear`), so the hot paths (receiving events, choosing destinations) ask
no query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from homeserver.services.clock import Clock
from storage.partial_state import PartialStateRoom, PartialStateStore

logger = logging.getLogger(__name__)

# How long /members and /joined_members wait for the full state before answering from what
# is known (Synapse waits without limit; a client request should not hang for ever).
FULL_STATE_WAIT_S = 60.0


class PartialStateRooms:
    def __init__(self, store: PartialStateStore, clock: Clock, *, wait_s: float = FULL_STATE_WAIT_S) -> None:
        self._store = store
        self._clock = clock
        self._wait_s = wait_s
        self._rooms: dict[str, PartialStateRoom] | None = None
        self._load_lock = asyncio.Lock()
        self._done: dict[str, asyncio.Event] = {}
        # room ID -> the stream position at which its full state came in (partial_state_cleared).
        self._cleared: dict[str, int] | None = None
        # Wired by the app: tells the other processes on the database that the flags changed.
        self.replicate: Callable[[], None] | None = None

    async def _all(self) -> dict[str, PartialStateRoom]:
        if self._rooms is None:
            async with self._load_lock:
                if self._rooms is None:
                    self._rooms = {r.room_id: r for r in await self._store.all()}
        return self._rooms

    async def rooms(self) -> list[PartialStateRoom]:
        return list((await self._all()).values())

    async def get(self, room_id: str) -> PartialStateRoom | None:
        return (await self._all()).get(room_id)

    async def is_partial(self, room_id: str) -> bool:
        return room_id in await self._all()

    async def servers_in_room(self, room_id: str) -> set[str]:
        """The servers the resident server named at our join ({} once the state is full)."""
        row = (await self._all()).get(room_id)
        return set(row.servers_in_room) if row is not None else set()

    async def mark(self, room_id: str, join_event_id: str, servers: Sequence[str]) -> PartialStateRoom:
        """Record the room as partial; call inside the join's transaction."""
        row = PartialStateRoom(room_id, join_event_id, tuple(servers), self._clock.now_ms())
        await self._store.add(room_id, join_event_id, servers, row.started_ts)
        return row

    async def marked(self, row: PartialStateRoom) -> None:
        """After the join's transaction committed: the in-memory view follows."""
        (await self._all())[row.room_id] = row
        self._done.setdefault(row.room_id, asyncio.Event()).clear()
        if self.replicate is not None:
            self.replicate()

    async def claim(self, room_id: str, lease_ms: int) -> bool:
        """Take the room's resync for `lease_ms`, unless another process is on it."""
        now = self._clock.now_ms()
        return await self._store.claim(room_id, now, now + lease_ms)

    async def release(self, room_ids: list[str]) -> None:
        """This process stops resyncing them (it is stopping): another may take them at once."""
        if room_ids:
            await self._store.release(room_ids)

    def forget_cached(self) -> None:
        """Another process marked or cleared a room: read the flags again, and let waiters
        look again."""
        self._rooms = self._cleared = None
        for done in self._done.values():
            done.set()
        self._done.clear()

    async def clear(self, room_id: str, join_event_id: str, stream_ordering: int) -> None:
        """The full state is in (from stream position `stream_ordering` on): the flag goes and
        the waiters wake."""
        await self._store.remove(room_id, join_event_id, stream_ordering)
        rooms = await self._all()
        if (row := rooms.get(room_id)) is not None and row.join_event_id == join_event_id:
            del rooms[room_id]
        if self._cleared is not None:
            self._cleared[room_id] = stream_ordering
        if (done := self._done.pop(room_id, None)) is not None:
            done.set()
        if self.replicate is not None:
            self.replicate()

    async def cleared_between(self, room_ids: list[str], after: int, upto: int) -> set[str]:
        """The rooms among `room_ids` whose full state came in within (after, upto]: an eager
        /sync hands them over again, whole. From memory: every /sync asks."""
        if self._cleared is None:
            async with self._load_lock:
                if self._cleared is None:
                    self._cleared = await self._store.cleared()
        cleared = self._cleared
        return {r for r in room_ids if after < cleared.get(r, -1) <= upto} if cleared else set()

    async def wait_for_full_state(self, room_id: str) -> None:
        """Return once the room's state is full, or after the bounded wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while await self.is_partial(room_id):
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.info("the full state of %s is still not in after %.0f s: answering from what is known",
                            room_id, self._wait_s)
                return
            done = self._done.setdefault(room_id, asyncio.Event())
            try:
                await asyncio.wait_for(done.wait(), remaining)
            except TimeoutError:
                pass
