"""Group commit: the writer of each room's queued sends (EventService.send queues them,
SendQueues hands each room's queue here one batch at a time).

Invariants:
- a room has at most one batch writer task at a time. Sends that queue while a batch commits
  form the next batch: built in order on the room's head (each event's prev_event is the one
  before it), committed by ONE statement (EventService.commit), each caller answered once the
  batch holding its event is published. No timer: a lone send is a batch of one, built at
  once. A send refused by the auth rules fails alone; the rest of its batch goes on;
- one writer per room across processes: the persist statement claims the room's head version
  and writes only if the room is still at the version the batch was built on; if another
  process wrote meanwhile, nothing is written (HeadMoved) and the batch is rebuilt on a fresh
  snapshot (each queued send built again). Chosen over routing rooms to an owning process
  (Synapse's event persisters) because it needs no forwarding between processes nor a
  configuration of who owns what, and costs nothing on the single-process path: the claim is
  part of the persist statement (no extra round trip), and the row lock it takes is held only
  for that statement. Several processes writing one room at once never fork it; so that they
  do not keep rebuilding each other's batches either, a room whose batch was refused counts
  as contended for a while, and its batches then take the room's writer lock (a PostgreSQL
  advisory lock) before they load the head and build, and let go once committed: the
  processes take turns instead of racing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from homeserver.core.events import Event
from homeserver.errors import Codes, MatrixError
from homeserver.services.rooms.send_queue import QueuedSend, TxnRef, answer, fail
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.events import EventStore

# A group-commit batch holds at most this many events, and stops taking more once its events
# reach this many bytes of JSON (one event may be 64 KiB).
MAX_BATCH_EVENTS = 100
MAX_BATCH_BYTES = 1 << 20
# A batch refused because another process moved the room's head is rebuilt at most this many
# times before its sends fail (503): each refusal means some other batch was written.
MAX_REBUILDS = 50
# After a batch was refused because another process wrote the room, the room counts as
# contended for this long (longer while the others keep writing it): its batches take the
# room's writer lock first.
CONTENDED_SECONDS = 2.0
# At most this many rooms of one process hold or wait for a writer lock at once (each holds a
# pooled connection meanwhile); the others write without it (the head check still holds).
MAX_LOCKED_WRITERS = 3


class HeadMoved(Exception):
    """The room's head moved on after the batch was built on it: nothing was written."""


class TxnTaken(Exception):
    """A transaction ID of the batch already produced an event in the room: nothing was written."""


class EventPipeline(Protocol):
    """What the writer needs of the event pipeline (EventService)."""

    def room_lock(self, room_id: str) -> asyncio.Lock: ...

    def begin(self, snap: RoomSnapshot) -> Any: ...

    async def build_queued(self, pending: Any, request: QueuedSend) -> Event: ...

    async def commit(self, pending: Any, *, after_persist: Callable[[], Awaitable[None]] | None = None,
                     on_published: Callable[[], None] | None = None) -> list[int]: ...


class BatchWriter:
    def __init__(self, pipeline: EventPipeline, rooms: RoomStateCache, events: EventStore) -> None:
        self._pipeline = pipeline
        self._rooms = rooms
        self._events = events
        # room_id -> until when (time.monotonic) its batches take the writer lock.
        self._contended: dict[str, float] = {}
        self._locked_writers = 0

    async def write_next(self, room_id: str, batch: list[QueuedSend], queue: deque[QueuedSend]) -> None:
        """Write one batch of the room's queue (SendQueues calls this, one batch at a time)."""
        async with self._pipeline.room_lock(room_id):
            if self._is_contended(room_id) and self._locked_writers < MAX_LOCKED_WRITERS:
                await self._write_locked(room_id, batch, queue)
            else:
                await self._write_batch(room_id, batch, queue)
        self._is_contended(room_id)  # drops a lapsed entry

    def _is_contended(self, room_id: str) -> bool:
        until = self._contended.get(room_id)
        if until is not None and until <= time.monotonic():
            del self._contended[room_id]
            return False
        return until is not None

    async def _write_locked(self, room_id: str, batch: list[QueuedSend], queue: deque[QueuedSend]) -> None:
        """A batch of a contended room: under the room's writer lock, on a head loaded under
        it. The lock goes as soon as the batch is committed (before it is published)."""
        self._locked_writers += 1
        try:
            async with contextlib.AsyncExitStack() as lock:
                await lock.enter_async_context(self._rooms.writer_lock(room_id))
                known = self._rooms.cached(room_id)  # gone if another process announced a write
                self._rooms.forget(room_id)  # another process may have written while we waited
                snap = await self._rooms.snapshot(room_id)
                if known is None or (snap is not None and snap.head != known.head):
                    self._contended[room_id] = time.monotonic() + CONTENDED_SECONDS  # still shared
                await self._write_batch(room_id, batch, queue, after_persist=lock.aclose)
        finally:
            self._locked_writers -= 1

    async def _write_batch(self, room_id: str, batch: list[QueuedSend], queue: deque[QueuedSend], *,
                           after_persist: Callable[[], Awaitable[None]] | None = None) -> None:
        """Build the batch's events in order on the room's head and commit them together;
        answer each request. Rebuilt on a fresh snapshot when another process wrote first, and
        without the sends whose transaction already produced an event (the persist finds
        those: no lookup of our own unless it did)."""
        look_up = False
        for _ in range(MAX_REBUILDS + 1):
            snap = await self._rooms.snapshot(room_id)
            if snap is None:
                for request in batch:
                    fail(request, MatrixError(404, Codes.NOT_FOUND, "Unknown room"))
                return
            batch = [r for r in batch if not r.done.done()]  # answered, or the caller gave up
            earlier: dict[tuple[str, str, str], str] = {}
            if look_up:
                earlier = await self._events.events_for_txns(room_id, list(dict.fromkeys(
                    (r.txn.user_id, r.txn.device_id, r.txn.txn_id) for r in batch if r.txn is not None)))
            pending = self._pipeline.begin(snap)
            built: list[tuple[QueuedSend, Event]] = []
            outcome: dict[TxnRef, Event | Exception] = {}  # the same transaction twice: one event
            again: list[QueuedSend] = []
            size = 0
            for i, request in enumerate(batch):
                if size >= MAX_BATCH_BYTES:
                    queue.extendleft(reversed(batch[i:]))  # the next batch, first in line
                    batch = batch[:i]
                    break
                txn = request.txn
                if txn is not None:
                    if (txn.user_id, txn.device_id, txn.txn_id) in earlier:
                        continue
                    if txn in outcome:
                        again.append(request)
                        continue
                try:
                    event = await self._pipeline.build_queued(pending, request)
                except Exception as err:  # refused (auth rules, size): this request alone
                    fail(request, err)
                    if txn is not None:
                        outcome[txn] = err
                    continue
                if txn is not None:
                    pending.txns[event.event_id] = txn
                    outcome[txn] = event
                built.append((request, event))
                size += len(orjson.dumps(event.pdu))
            if built:
                try:
                    # Each sender is answered as soon as the batch is published.
                    await self._pipeline.commit(pending, after_persist=after_persist,
                                      on_published=lambda built=built: [answer(r, e) for r, e in built])
                except HeadMoved:
                    self._rooms.forget(room_id)
                    self._contended[room_id] = time.monotonic() + CONTENDED_SECONDS
                    continue
                except TxnTaken:  # a retry of a send already stored: look the transactions up
                    look_up = True
                    continue
            for request in again:
                result = outcome[request.txn]
                fail(request, result) if isinstance(result, Exception) else answer(request, result)
            found = [r for r in batch if r.txn is not None and not r.done.done()]
            if found:
                ids = {r: earlier[(r.txn.user_id, r.txn.device_id, r.txn.txn_id)] for r in found}
                events = await self._rooms.events.get_many(list(ids.values()), snap.version)
                for request, event_id in ids.items():
                    answer(request, events[event_id])
            return
        for request in batch:
            fail(request, MatrixError(503, Codes.UNKNOWN, "The room is too busy, try again"))
