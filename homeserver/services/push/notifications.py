"""Notification counts and the list of notifications (GET /notifications).

Use cases: the unread notification and highlight counts of a user's rooms, split into the
main timeline and each thread (for /sync's unread_notifications and
unread_thread_notifications), a user's total for push badges, and the paginated list of the
events the user was notified about.

What is read comes from read receipts, as stream positions (`ReadUpto`): for each room, key
None is the unthreaded receipt (it covers the whole room), "main" the main-timeline receipt,
"$root" the receipt of that thread. A push action is unread when its position is above both
the unthreaded receipt and the receipt of its own thread (spec: "Receiving notifications",
threaded read receipts). The receipts come from `read_upto_for`, injected by the app.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypedDict

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.push.unread import UnreadCounts
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from storage.events import EventStore
from storage.push import PushAction, PushActionStore

# room_id -> {None: unthreaded, "main": main timeline, "$thread_root": that thread} -> position
ReadUpto = Mapping[str, Mapping[str | None, int]]
ReadUptoFor = Callable[[str, list[str]], Awaitable[ReadUpto]]

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class Counts(TypedDict):
    notification_count: int
    highlight_count: int


class RoomUnreadCounts(TypedDict):
    """A room's unread counts: `notification_count` and `highlight_count` of the main
    timeline (/sync `unread_notifications` for a client that asked for thread
    notifications), and `threads`: thread root ID -> the same two counts, for the threads
    with something unread (/sync `unread_thread_notifications`)."""
    notification_count: int
    highlight_count: int
    threads: dict[str, Counts]


def total_counts(counts: RoomUnreadCounts) -> Counts:
    """Main timeline and threads together: /sync `unread_notifications` for a client that did
    not ask for thread notifications (spec: RoomEventFilter.unread_thread_notifications)."""
    threads = counts["threads"].values()
    return {
        "notification_count": counts["notification_count"] + sum(c["notification_count"] for c in threads),
        "highlight_count": counts["highlight_count"] + sum(c["highlight_count"] for c in threads),
    }


class NotificationService:
    def __init__(self, actions: PushActionStore, events: EventStore, rooms: RoomStateCache, formatter: EventFormatter,
                 read_upto_for: ReadUptoFor, unread: UnreadCounts) -> None:
        self._actions = actions
        self._events = events
        self._rooms = rooms
        self._format = formatter
        self._read_upto_for = read_upto_for
        self.unread = unread  # the counts kept in memory
        # Requests of sync_unread_counts waiting for the next shared query, and its task.
        self._waiting: list[tuple[str, list[str], asyncio.Future[dict[str, RoomUnreadCounts]]]] = []
        self._counting: set[asyncio.Task[None]] = set()

    async def unread_counts(self, user_id: str, room_ids: Sequence[str],
                            read_upto: ReadUpto) -> dict[str, RoomUnreadCounts]:
        """Unread counts of each room in `room_ids` (zero counts included), in one query."""
        room_ids = list(dict.fromkeys(room_ids))
        await self.unread.settled(room_ids)  # the events published so far are counted
        rooms: list[tuple[str, int]] = []
        threads: list[tuple[str, str, int]] = []
        for room_id in room_ids:
            receipts = read_upto.get(room_id) or {}
            rooms.append((room_id, receipts.get(None) or 0))
            threads += [(room_id, key, pos) for key, pos in receipts.items() if key is not None and pos]
        found: dict[str, RoomUnreadCounts] = {
            room_id: {"notification_count": 0, "highlight_count": 0, "threads": {}} for room_id in room_ids}
        if rooms:
            for row in await self._actions.counts(user_id, rooms, threads):
                room = found[row.room_id]
                if row.thread_id is None:
                    room["notification_count"], room["highlight_count"] = row.notifications, row.highlights
                else:
                    room["threads"][row.thread_id] = {"notification_count": row.notifications,
                                                      "highlight_count": row.highlights}
        return found

    async def sync_unread_counts(self, user_id: str, room_ids: Sequence[str]) -> dict[str, RoomUnreadCounts]:
        """unread_counts after the user's own read receipts, for /sync: the counts kept in
        memory (push/unread.py), the others read together. The requests made while a query
        runs (or in one turn of the event loop) share the next one: a message wakes every
        waiting /sync of its room at once, and they all ask here together."""
        found: dict[str, RoomUnreadCounts] = {}
        missing = []
        await self.unread.counted(room_ids, user_id)  # the counts kept include the events published so far
        for room_id in dict.fromkeys(room_ids):
            kept = self.unread.get(user_id, room_id)
            if kept is None:
                missing.append(room_id)
            else:
                found[room_id] = kept  # type: ignore[assignment]
        if not missing:
            return found
        await self.unread.settled(missing)  # counted from the database: their rows are in
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, RoomUnreadCounts]] = loop.create_future()
        self._waiting.append((user_id, missing, future))
        if len(self._waiting) == 1 and not self._counting:
            # After the callbacks already scheduled, so the other woken syncs get here first;
            # in a context of its own (no caller's transaction).
            loop.call_soon(self._start_counting, context=contextvars.Context())
        found.update(await future)
        return found

    def _start_counting(self) -> None:
        """One query at a time: the requests made while one runs go in the next. Thousands
        of woken /syncs reach here over many turns of the event loop; a query for each
        turn's few (1,100 queries for 5,000 /syncs, all at once on the pool) took seconds each."""
        if self._counting or not self._waiting:
            return
        task = asyncio.get_running_loop().create_task(self._count_waiting())
        self._counting.add(task)
        task.add_done_callback(self._counted)

    def _counted(self, task: asyncio.Task[None]) -> None:
        self._counting.discard(task)
        if self._waiting:
            asyncio.get_running_loop().call_soon(self._start_counting, context=contextvars.Context())

    async def _count_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        found: dict[str, dict[str, RoomUnreadCounts]] = {}
        for user_id, rooms, _ in waiting:
            for room_id in rooms:
                found.setdefault(user_id, {})[room_id] = {"notification_count": 0, "highlight_count": 0, "threads": {}}
        token = self.unread.token()
        try:
            pairs = list(dict.fromkeys((u, r) for u, rooms, _ in waiting for r in rooms))
            rows = await self._actions.counts_after_receipts(pairs) if pairs else []
        except BaseException as err:
            for _, _, future in waiting:
                if not future.done():
                    future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        for user_id, row in rows:
            room = found[user_id].get(row.room_id)
            if room is None:
                continue
            if row.thread_id is None:
                room["notification_count"], room["highlight_count"] = row.notifications, row.highlights
            else:
                room["threads"][row.thread_id] = {"notification_count": row.notifications,
                                                  "highlight_count": row.highlights}
        for user_id, rooms in found.items():
            for room_id, counts in rooms.items():
                self.unread.keep(token, user_id, room_id, counts)
        for user_id, rooms, future in waiting:
            if not future.done():
                # One map per user: two requests of one user share it (they asked the same).
                future.set_result({r: found[user_id][r] for r in rooms})

    async def badge_count(self, user_id: str) -> int:
        """The unread notifications of all the user's joined rooms (push `counts.unread`)."""
        room_ids = await self._events.rooms_for_user(user_id)
        if not room_ids:
            return 0
        counts = await self.unread_counts(user_id, room_ids, await self._read_upto_for(user_id, room_ids))
        return sum(total_counts(c)["notification_count"] for c in counts.values())

    async def notifications(self, requester: Requester, *, from_token: str | None, limit: int | None,
                            only: str | None) -> dict[str, Any]:
        """Spec (getNotifications): the events the user was notified about, newest first."""
        before = None
        if from_token:
            if not from_token.isdigit():
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid 'from' token")
            before = int(from_token)
        limit = DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))
        await self.unread.settled()  # the notifications of the events published so far
        page = await self._actions.page(requester.user_id, before=before, limit=limit,
                                        only_highlight=only == "highlight")
        body: dict[str, Any] = {"notifications": await self._render(requester, page)}
        if len(page) == limit:
            body["next_token"] = str(page[-1].stream_ordering)
        return body

    async def _render(self, requester: Requester, page: list[PushAction]) -> list[dict[str, Any]]:
        if not page:
            return []
        room_ids = sorted({a.room_id for a in page})
        read = await self._read_upto_for(requester.user_id, room_ids)
        rows = await self._events.get_events([a.event_id for a in page])
        formatted: dict[str, dict[str, Any]] = {}
        for room_id in room_ids:
            snap = await self._rooms.snapshot(room_id)
            in_room = [rows[a.event_id] for a in page if a.room_id == room_id and a.event_id in rows]
            if snap is None or not in_room:
                continue
            for event in await self._format.format_events(in_room, snap.version, requester):
                event.pop("room_id", None)  # spec: ClientEventWithoutRoomID
                formatted[event["event_id"]] = event
        out = []
        for action in page:
            if action.event_id not in formatted:
                continue
            receipts = read.get(action.room_id) or {}
            upto = max(receipts.get(None) or 0, receipts.get(action.thread_id or "main") or 0)
            out.append({
                "actions": action.actions, "event": formatted[action.event_id], "room_id": action.room_id,
                "ts": action.ts, "read": action.stream_ordering <= upto,
                # As Synapse: always there, null when the pusher that matched had no tag.
                "profile_tag": None,
            })
        return out
