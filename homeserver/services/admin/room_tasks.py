"""Background room tasks of the admin API (room deletions, history purges): each runs as an
asyncio task of this process that outlives the request which started it, its status persisted
in room_admin_tasks so any process can report it later.

A running task's row gets a heartbeat every HEARTBEAT_S; a task whose heartbeat stopped for
STALE_MS (its process died) is reported as failed, and recorded so by `recover()` at the next
start. A clean stop records the tasks it interrupts as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.errors import MatrixError
from homeserver.services.clock import Clock
from storage.admin_rooms import RoomTask, RoomTaskStore

logger = logging.getLogger(__name__)

HEARTBEAT_S = 60.0
STALE_MS = 5 * 60 * 1000
RUNNING = ("scheduled", "active")
INTERRUPTED = "Interrupted: the server stopped before the task finished"

# The work of a task: gets the task ID, returns the result to record (or None).
Work = Callable[[str], Awaitable[dict[str, Any] | None]]


class RoomTaskRunner:
    def __init__(self, store: RoomTaskStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self, kind: str, room_id: str, params: dict[str, Any], requester: str, work: Work) -> str:
        """Record a new task and run `work` in the background; returns the task's ID."""
        task_id = "".join(secrets.choice(string.ascii_letters) for _ in range(16))
        await self._store.add(task_id, kind, room_id, params, requester, self._clock.now_ms())
        self._running[task_id] = asyncio.create_task(self._run(task_id, work), name=f"room-{kind}-{task_id}")
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat())
        return task_id

    async def get(self, task_id: str) -> RoomTask | None:
        return await self._store.get(task_id)

    async def for_room(self, room_id: str, kind: str) -> list[RoomTask]:
        return await self._store.for_room(room_id, kind)

    async def set_result(self, task_id: str, result: dict[str, Any]) -> None:
        """Record a task's partial result as it progresses."""
        await self._store.update(task_id, self._clock.now_ms(), result=result)

    def effective_status(self, task: RoomTask) -> str:
        """The task's status, "failed" for a running one whose process stopped beating."""
        if task.status in RUNNING and task.updated_ts < self._clock.now_ms() - STALE_MS:
            return "failed"
        return task.status

    def error_of(self, task: RoomTask) -> str | None:
        if task.status in RUNNING and self.effective_status(task) == "failed":
            return INTERRUPTED
        return task.error

    async def wait(self, task_id: str) -> None:
        """Until the task (if it runs in this process) is over."""
        task = self._running.get(task_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def recover(self) -> None:
        """At start-up: record as failed the tasks whose process died."""
        now = self._clock.now_ms()
        count = await self._store.fail_stale(now - STALE_MS, INTERRUPTED, now)
        if count:
            logger.warning("%d room admin tasks were interrupted by a stop and are marked failed", count)

    async def stop(self) -> None:
        """At a clean stop: interrupt the running tasks and record them as failed."""
        tasks = dict(self._running)
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for task_id in tasks:
            await self._store.update(task_id, self._clock.now_ms(), status="failed", error=INTERRUPTED)

    # --- internals -----------------------------------------------------------------------------

    async def _run(self, task_id: str, work: Work) -> None:
        try:
            await self._store.update(task_id, self._clock.now_ms(), status="active")
            result = await work(task_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, MatrixError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, MatrixError):
                logger.exception("room admin task %s failed", task_id)
            await self._store.update(task_id, self._clock.now_ms(), status="failed", error=message)
        else:
            await self._store.update(task_id, self._clock.now_ms(), status="complete", result=result)
        finally:
            self._running.pop(task_id, None)

    async def _beat(self) -> None:
        while self._running:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._store.heartbeat(list(self._running), self._clock.now_ms())
            except Exception:  # the database is away for a moment: the next beat retries
                logger.warning("could not refresh the heartbeat of room admin tasks", exc_info=True)
