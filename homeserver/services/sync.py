"""GET /sync over the room-event stream: joined, invited, knocked and left rooms.

A sync token is `s{position}`: everything up to that position of the room-event stream has
been delivered. Positions come from StreamTracker.current, which never passes an
uncommitted position, so an incremental sync can neither miss nor repeat an event.
Rooms the user joined since the last sync (or every room, in an initial or full_state sync)
get their full state at the start of the timeline; other rooms get their new timeline events
and, when the timeline is limited, the state that changed in the gap.

Not yet here (issue 4): filters beyond an inline room.timeline.limit, ephemeral events,
account data, presence, to-device, device lists, unread counts, room summaries.
"""

from __future__ import annotations

import time
from typing import Any

from homeserver.core.room_versions import get_room_version

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.event_format import EventFormatter
from homeserver.services.notifier import Notifier
from homeserver.services.room_state import RoomStateCache
from homeserver.services.streams import StreamTracker
from homeserver.services.timeline import topo_token
from storage.events import EventRow, EventStore, TimelineQueries
from storage.state import StateStore
from storage.sync import RoomMembershipAt, SyncQueries

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMEOUT_MS = 5 * 60 * 1000
# Stripped state shown with an invite (spec: "Stripped state", server behaviour).
INVITE_STATE_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
                      "m.room.canonical_alias", "m.room.encryption", "m.room.topic")


def sync_token(position: int) -> str:
    return f"s{position}"


def parse_sync_token(token: str) -> int:
    if token.startswith("s"):
        head = token[1:].split("_", 1)[0]
        if head.isdigit():
            return int(head)
    raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid sync token {token!r}")


class SyncService:
    def __init__(self, queries: SyncQueries, events: EventStore, timeline: TimelineQueries, state: StateStore,
                 rooms: RoomStateCache, formatter: EventFormatter, stream: StreamTracker, notifier: Notifier) -> None:
        self._queries = queries
        self._events = events
        self._timeline = timeline
        self._state = state
        self._rooms = rooms
        self._format = formatter
        self._stream = stream
        self._notifier = notifier

    async def sync(self, requester: Requester, *, since: str | None, timeout_ms: int, full_state: bool,
                   sync_filter: dict[str, Any] | None = None) -> dict[str, Any]:
        """`sync_filter` is a validated filter; room.rooms/not_rooms and room.timeline.limit apply."""
        since_position = parse_sync_token(since) if since else None
        room_filter = (sync_filter or {}).get("room", {})
        timeline_limit = min(room_filter.get("timeline", {}).get("limit", DEFAULT_TIMELINE_LIMIT), 1000)
        only_rooms = room_filter.get("rooms")
        rooms_filter = (set(only_rooms) if only_rooms is not None else None, set(room_filter.get("not_rooms", [])))
        deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        while True:
            upto = self._stream.current
            if since_position is not None and since_position > upto:
                since_position = upto  # a token from the future (e.g. after a restore): resync from now
            body, changed = await self._build(requester, since_position, upto, full_state, timeline_limit, rooms_filter)
            remaining = deadline - time.monotonic()
            if changed or since_position is None or full_state or remaining <= 0:
                return body
            future = self._notifier.register(requester.user_id)
            if self._stream.current != upto:  # something landed while we were building
                self._notifier.notify_users([requester.user_id])
            await self._notifier.wait(requester.user_id, future, remaining)
            if time.monotonic() >= deadline and self._stream.current == upto:
                return body

    async def _build(self, requester: Requester, since: int | None, upto: int, full_state: bool,
                     limit: int, rooms_filter: tuple[set[str] | None, set[str]]) -> tuple[dict[str, Any], bool]:
        user_id = requester.user_id
        only, excluded = rooms_filter
        now = {r: m for r, m in (await self._queries.memberships_at(user_id, upto)).items()
               if (only is None or r in only) and r not in excluded}
        before = await self._queries.memberships_at(user_id, since) if since is not None else {}
        join: dict[str, Any] = {}
        invite: dict[str, Any] = {}
        knock: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        active_joined = [r for r, m in now.items() if m.membership == "join"
                         and since is not None and not full_state and _same(before.get(r), m)]
        with_news = await self._queries.rooms_with_events_between(active_joined, since, upto) if active_joined else set()
        for room_id, membership in now.items():
            previous = before.get(room_id)
            changed = not _same(previous, membership)
            if membership.membership == "join":
                if since is None or full_state or changed:
                    join[room_id] = await self._room(requester, room_id, None, upto, limit, membership)
                elif room_id in with_news:
                    join[room_id] = await self._room(requester, room_id, since, upto, limit, membership)
            elif membership.membership == "invite" and (since is None or changed):
                invite[room_id] = {"invite_state": {"events": await self._stripped_state(room_id, membership)}}
            elif membership.membership == "knock" and (since is None or changed):
                knock[room_id] = {"knock_state": {"events": await self._stripped_state(room_id, membership)}}
            elif membership.membership in ("leave", "ban") and since is not None and changed \
                    and previous is not None and previous.membership in ("join", "invite", "knock"):
                # Up to the departure; nothing after it.
                leave[room_id] = await self._room(requester, room_id, since, membership.stream_ordering, limit, membership)
        rooms: dict[str, Any] = {}
        for name, section in (("join", join), ("invite", invite), ("knock", knock), ("leave", leave)):
            if section:
                rooms[name] = section
        body = {"next_batch": sync_token(upto), "rooms": rooms}
        return body, bool(rooms)

    async def _room(self, requester: Requester, room_id: str, since: int | None, upto: int, limit: int,
                    membership: RoomMembershipAt) -> dict[str, Any]:
        """A room's timeline in (since, upto] (all history when since is None) and its state."""
        snap = await self._rooms.snapshot(room_id)
        version = snap.version if snap else get_room_version("12")
        rows = await self._queries.recent_events(room_id, after=since or 0, upto=upto, limit=limit + 1)
        limited = len(rows) > limit
        rows = rows[-limit:] if limit else []
        visibility = await self._format.visibility(room_id, requester.user_id)
        if since is None:
            # A fresh view of the room: history the user may not see is cut off, which also
            # makes the timeline limited (there is more, just not for them).
            visible = self._format.visible(rows, visibility, requester.user_id)
            limited = limited or len(visible) < len(rows)
            rows = visible
        else:
            rows = self._format.visible(rows, visibility, requester.user_id)
        state_rows = await self._state_before(room_id, rows, since, upto, limited)
        timeline: dict[str, Any] = {
            "events": await self._format.format_events(rows, version, requester),
            "limited": limited,
        }
        if rows:
            timeline["prev_batch"] = topo_token(rows[0].depth, rows[0].stream_ordering)
        elif since is not None:
            timeline["prev_batch"] = sync_token(since)
        return {
            "timeline": timeline,
            "state": {"events": await self._format.format_events(state_rows, version, requester, bundle=False)},
            "ephemeral": {"events": []},
            "account_data": {"events": []},
        }

    async def _state_before(self, room_id: str, rows: list[EventRow], since: int | None, upto: int,
                            limited: bool) -> list[EventRow]:
        """The state clients lack before the timeline: all of it for a fresh view; what
        changed in the gap for a limited incremental timeline; nothing otherwise."""
        if since is not None and not limited:
            return []
        if rows:
            start_group = rows[0].state_before
        else:
            last = await self._queries.event_at_or_before(room_id, upto)
            start_group = last.state_after if last else None
        start = await self._state.state_ids(start_group) if start_group else {}
        timeline_ids = {r.event_id for r in rows}
        if since is None:
            wanted = [e for e in start.values() if e not in timeline_ids]
        else:
            at_since = await self._queries.event_at_or_before(room_id, since)
            old = await self._state.state_ids(at_since.state_after) if at_since and at_since.state_after else {}
            wanted = [e for k, e in start.items() if old.get(k) != e and e not in timeline_ids]
        found = await self._events.get_events(wanted)
        return [found[e] for e in wanted if e in found]

    async def _stripped_state(self, room_id: str, membership: RoomMembershipAt) -> list[dict[str, Any]]:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return []
        keys = [(t, "") for t in INVITE_STATE_TYPES]
        events = await self._rooms.state_events(snap, keys)
        stripped = [{"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
                    for e in events.values()]
        member = (await self._events.get_events([membership.event_id])).get(membership.event_id)
        if member is not None:
            stripped.append({"type": "m.room.member", "state_key": member.state_key, "content": member.pdu["content"],
                             "sender": member.sender})
        return stripped


def _same(previous: RoomMembershipAt | None, current: RoomMembershipAt) -> bool:
    return previous is not None and previous.event_id == current.event_id
