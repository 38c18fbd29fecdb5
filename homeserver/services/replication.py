"""Several server processes on one database: they tell each other what they committed.

Over PostgreSQL LISTEN/NOTIFY on one channel, each process announces, after commit:
- stream positions it finished (room events, aux), so the others' trackers advance;
- rooms that got new events, so the others drop their cached room snapshot and wake the
  rooms' members; users to wake for aux-stream changes;
- typing changes (typing lives in memory), and cache invalidations (tokens, ignored users).
Announcements are queued and sent by one background task, batched into few NOTIFYs, so the
request path never waits for them. A process ignores its own announcements.

Each process takes its own room locks, but a room still has one writer at a time across
processes: the persist statement claims the room's head version and writes only if the room
is still where the batch was built (services/rooms/events.py), so two processes sending into
one room at once never fork it; the one that lost the race rebuilds on the new head. The
announcements below only keep caches fresh; correctness does not hang on their timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.streams.notifier import Notifier
from homeserver.services.streams.tracker import StreamTracker
from storage.database import Database
from storage.events import EventStore

logger = logging.getLogger(__name__)

CHANNEL = "chatgo_replication"
# NOTIFY payloads must stay under 8000 bytes.
MAX_PAYLOAD = 7000


class Replication:
    def __init__(self, db: Database, events: EventStore, rooms: RoomStateCache, notifier: Notifier,
                 trackers: dict[str, StreamTracker]) -> None:
        self._db = db
        self._events = events
        self._rooms = rooms
        self._notifier = notifier
        self._trackers = trackers
        self.instance = secrets.token_hex(6)
        self._queue: list[dict[str, Any]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listening: contextlib.AsyncExitStack | None = None
        # kind -> handler(message) for announcements other services define (typing, caches).
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {}
        for name, tracker in trackers.items():
            tracker.on_local_finish = lambda positions, name=name: self.publish(
                {"k": "pos", "s": name, "p": positions})

    def on(self, kind: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        self._handlers[kind] = handler

    def publish(self, message: dict[str, Any]) -> None:
        """Queue an announcement for the other processes (no-op until started)."""
        if self._task is None:
            return
        self._queue.append(message)
        self._wakeup.set()

    def room_events(self, position: int, room_ids: list[str], extra_users: list[str]) -> None:
        self.publish({"k": "rooms", "p": position, "r": room_ids, "u": extra_users})

    def wake(self, stream: str, position: int, users: list[str]) -> None:
        self.publish({"k": "wake", "s": stream, "p": position, "u": users})

    async def start(self) -> None:
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self._db.listen(CHANNEL, self._received))
        self._listening = stack
        self._task = asyncio.create_task(self._send_loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await self._flush()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listening is not None:
            await self._listening.aclose()
            self._listening = None

    # --- sending -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._flush()
            except Exception:  # the database is down or restarting: try again with the next change
                logger.warning("could not announce changes to other processes", exc_info=True)

    async def _flush(self) -> None:
        batch: list[dict[str, Any]] = []
        size = 0
        while self._queue:
            message = self._queue.pop(0)
            encoded = len(orjson.dumps(message))
            if batch and size + encoded > MAX_PAYLOAD:
                await self._notify(batch)
                batch, size = [], 0
            batch.append(message)
            size += encoded
        if batch:
            await self._notify(batch)

    async def _notify(self, batch: list[dict[str, Any]]) -> None:
        payload = orjson.dumps({"i": self.instance, "m": batch}).decode()
        await self._db.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    # --- receiving ---------------------------------------------------------------------------

    async def _received(self, payload: str) -> None:
        try:
            envelope = orjson.loads(payload)
            if envelope.get("i") == self.instance:
                return
            for message in envelope["m"]:
                await self._apply(message)
        except Exception:  # a bad announcement must not stop the listener
            logger.exception("could not apply a replication message")

    async def _apply(self, message: dict[str, Any]) -> None:
        kind = message["k"]
        if kind == "pos":
            tracker = self._trackers.get(message["s"])
            if tracker is not None:
                tracker.finish_remote([int(p) for p in message["p"]])
        elif kind == "rooms":
            users: set[str] = set(message["u"]) | set(message["r"])  # room IDs: peekers
            for room_id in message["r"]:
                self._rooms.forget(room_id)
                members = await self._events.members(room_id)
                users.update(u for u, m in members.items() if m in ("join", "invite", "knock"))
            self._notifier.notify_when_visible(self._trackers["events"], message["p"], users)
        elif kind == "wake":
            tracker = self._trackers.get(message["s"])
            if tracker is not None:
                self._notifier.notify_when_visible(tracker, message["p"], set(message["u"]))
        else:
            handler = self._handlers.get(kind)
            if handler is not None:
                result = handler(message)
                if asyncio.iscoroutine(result):
                    await result
