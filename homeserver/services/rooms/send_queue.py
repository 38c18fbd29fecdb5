"""Per-room queues of local sends, for group commit (services/rooms/events.py).

`SendQueues.send` queues a send into a room and waits for its outcome. A room with queued
sends has one writer task; it takes the queue's sends in batches (all that queued while the
previous batch was being written, up to `max_batch`) and hands each batch to the writing
function, which answers every send of it. No timer: a send into an idle room is a batch of
one, taken at once. The task ends when the queue is empty; the next send starts another.

Invariants: a send is answered exactly once (its result, its error, or cancelled); a
caller that gave up before its send was taken is skipped (its future is cancelled); an
error escaping the writing function fails the rest of that batch only.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from homeserver.core.events import Event


@dataclass(frozen=True)
class TxnRef:
    """Where a local send came from, for idempotency and unsigned.transaction_id."""
    user_id: str
    device_id: str
    txn_id: str


@dataclass(eq=False)
class QueuedSend:
    """One send waiting for its room's writer: what to build, and the future its caller awaits."""
    sender: str
    event_type: str
    content: dict[str, Any]
    state_key: str | None
    redacts: str | None
    txn: TxnRef | None  # idempotency: an earlier send with it answers with its event
    countersign: Callable[[Event], Awaitable[Event]] | None
    origin_server_ts: int | None = None  # the event's timestamp instead of now (an appservice's `ts`)
    done: asyncio.Future[Event] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


WriteBatch = Callable[[str, list[QueuedSend], deque[QueuedSend]], Awaitable[None]]


class SendQueues:
    def __init__(self, write: WriteBatch, *, max_batch: int) -> None:
        """`write(room_id, batch, queue)` writes one batch and answers its sends; it may put
        sends it did not take back at the head of `queue`."""
        self._write = write
        self._max_batch = max_batch
        self._queues: dict[str, deque[QueuedSend]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}  # referenced, so never collected

    def queued(self, room_id: str) -> int:
        """Sends into the room waiting to be taken into a batch."""
        queue = self._queues.get(room_id)
        return len(queue) if queue is not None else 0

    async def send(self, room_id: str, request: QueuedSend) -> Event:
        queue = self._queues.get(room_id)
        if queue is None:
            queue = self._queues[room_id] = deque()
            # A context of its own: the writer serves many callers and must not run inside
            # one caller's transaction (storage.database's ambient connection).
            self._writers[room_id] = asyncio.create_task(self._drain(room_id, queue), context=contextvars.Context())
        queue.append(request)
        return await request.done

    async def _drain(self, room_id: str, queue: deque[QueuedSend]) -> None:
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
                batch = [r for r in batch if not r.done.done()]  # callers that gave up
                try:
                    await self._write(room_id, batch, queue)
                except BaseException as err:
                    for request in batch:
                        fail(request, err)
                    if not isinstance(err, Exception):
                        raise
        except BaseException as err:  # cancelled (shutdown): nobody will write the rest
            for request in queue:
                fail(request, err)
            raise
        finally:
            del self._queues[room_id]
            del self._writers[room_id]


def answer(request: QueuedSend, event: Event) -> None:
    if not request.done.done():
        request.done.set_result(event)


def fail(request: QueuedSend, err: BaseException) -> None:
    if request.done.done():
        return
    if isinstance(err, asyncio.CancelledError):
        request.done.cancel()
    else:
        request.done.set_exception(err)
