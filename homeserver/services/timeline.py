"""Reading rooms for clients: events, state, members and /messages pagination.

Every event leaves through `format_event`: client format, redactions applied (the original
PDU stays stored), `unsigned.transaction_id` for the device that sent it, and history
visibility decides who sees what (see homeserver/core/visibility.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.core.visibility import VisibilityTimeline
from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.room_state import RoomStateCache
from storage.events import EventRow, EventStore, TimelineQueries
from storage.state import StateStore

MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    chunk: list[dict[str, Any]]
    start: str
    end: str | None
    state: list[dict[str, Any]]


def stream_token(position: int) -> str:
    return f"s{position}"


def topo_token(depth: int, position: int) -> str:
    return f"t{depth}_{position}"


class TimelineService:
    def __init__(self, events: EventStore, queries: TimelineQueries, state: StateStore,
                 rooms: RoomStateCache, clock: Clock) -> None:
        self._events = events
        self._queries = queries
        self._state = state
        self._rooms = rooms
        self._clock = clock

    # --- formatting ------------------------------------------------------------------------------

    async def format_events(self, rows: list[EventRow], version: RoomVersion, requester: Requester | None) -> list[dict[str, Any]]:
        redaction_ids = [r.redacted_by for r in rows if r.redacted_by]
        redactions = await self._events.get_events(redaction_ids) if redaction_ids else {}
        now = self._clock.now_ms()
        out = []
        for row in rows:
            because = redactions.get(row.redacted_by) if row.redacted_by else None
            out.append(self._format(row, version, requester, now, because))
        return out

    def _format(self, row: EventRow, version: RoomVersion, requester: Requester | None, now: int,
                redacted_because: EventRow | None) -> dict[str, Any]:
        pdu = redact(row.pdu, version) if redacted_because is not None else row.pdu
        event: dict[str, Any] = {
            "event_id": row.event_id,
            "room_id": row.room_id,
            "type": pdu["type"],
            "sender": pdu["sender"],
            "content": pdu.get("content", {}),
            "origin_server_ts": pdu["origin_server_ts"],
        }
        if row.state_key is not None:
            event["state_key"] = row.state_key
        unsigned: dict[str, Any] = {"age": max(0, now - row.origin_server_ts)}
        if row.type == "m.room.redaction" and "redacts" in pdu and "redacts" not in event:
            event["redacts"] = pdu["redacts"]
        if (requester is not None and row.txn_id is not None and row.sender == requester.user_id
                and row.txn_device_id == requester.device_id):
            unsigned["transaction_id"] = row.txn_id
        if redacted_because is not None:
            unsigned["redacted_because"] = self._format(redacted_because, version, None, now, None)
        event["unsigned"] = unsigned
        return event

    # --- access -----------------------------------------------------------------------------------

    async def _room(self, room_id: str):
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return snap

    async def _visibility(self, room_id: str, user_id: str) -> VisibilityTimeline:
        changes = await self._queries.state_changes(room_id, "m.room.history_visibility")
        memberships = await self._queries.memberships_of(room_id, user_id)
        return VisibilityTimeline(
            [(pos, c.get("history_visibility") if isinstance(c, dict) else None) for pos, c in changes],
            [(m.stream_ordering, m.membership) for m in memberships],
        )

    def _visible(self, rows: list[EventRow], timeline: VisibilityTimeline, user_id: str) -> list[EventRow]:
        return [r for r in rows if r.stream_ordering is not None and timeline.can_see(
            r.stream_ordering,
            is_visibility_event=r.type == "m.room.history_visibility",
            is_own_membership=r.type == "m.room.member" and r.state_key == user_id,
        )]

    async def _state_group_for_reader(self, room_id: str, user_id: str) -> int | None:
        """Members read the current state; former members the state when they left."""
        snap = await self._room(room_id)
        memberships = await self._queries.memberships_of(room_id, user_id)
        if memberships and memberships[-1].membership == "join":
            return snap.state_group
        for m in reversed(memberships):
            if m.membership in ("leave", "ban"):
                # The state right after the user's own departure.
                row = await self._event_at(room_id, m.stream_ordering)
                return row.state_after if row else None
        world = await self._queries.state_changes(room_id, "m.room.history_visibility")
        if world and isinstance(world[-1][1], dict) and world[-1][1].get("history_visibility") == "world_readable":
            return snap.state_group
        raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")

    async def _event_at(self, room_id: str, position: int) -> EventRow | None:
        topo = await self._queries.topological_position(room_id, position)
        if topo is None:
            return None
        found = await self._queries.paginate(room_id, before=(topo[0], topo[1] + 1), limit=1)
        return found[0] if found else None

    # --- use cases ---------------------------------------------------------------------------------

    async def get_event(self, requester: Requester, room_id: str, event_id: str) -> dict[str, Any]:
        snap = await self._room(room_id)
        row = await self._events.get_event(event_id)
        if row is None or row.room_id != room_id or row.rejected_reason or row.stream_ordering is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        timeline = await self._visibility(room_id, requester.user_id)
        if not self._visible([row], timeline, requester.user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return (await self.format_events([row], snap.version, requester))[0]

    async def get_state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        snap = await self._room(room_id)
        group = await self._state_group_for_reader(room_id, requester.user_id)
        ids = snap.state if group == snap.state_group else (await self._state.state_ids(group) if group else {})
        rows = await self._events.get_events(list(ids.values()))
        return await self.format_events([rows[i] for i in ids.values() if i in rows], snap.version, requester)

    async def get_state_event(self, requester: Requester, room_id: str, event_type: str, state_key: str) -> dict[str, Any]:
        snap = await self._room(room_id)
        group = await self._state_group_for_reader(room_id, requester.user_id)
        ids = snap.state if group == snap.state_group else (await self._state.state_ids(group) if group else {})
        event_id = ids.get((event_type, state_key))
        row = await self._events.get_event(event_id) if event_id else None
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return (await self.format_events([row], snap.version, requester))[0]

    async def members(self, requester: Requester, room_id: str, membership: str | None = None,
                      not_membership: str | None = None) -> list[dict[str, Any]]:
        events = await self.get_state(requester, room_id)
        members = [e for e in events if e["type"] == "m.room.member"]
        if membership is not None:
            members = [e for e in members if e["content"].get("membership") == membership]
        if not_membership is not None:
            members = [e for e in members if e["content"].get("membership") != not_membership]
        return members

    async def joined_members(self, requester: Requester, room_id: str) -> dict[str, dict[str, Any]]:
        await self._room(room_id)
        memberships = await self._queries.memberships_of(room_id, requester.user_id)
        if not memberships or memberships[-1].membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not joined to this room")
        return {
            user_id: {"display_name": content.get("displayname"), "avatar_url": content.get("avatar_url")}
            for user_id, content in await self._queries.joined_members_with_profiles(room_id)
        }

    async def messages(self, requester: Requester, room_id: str, *, from_token: str | None, to_token: str | None,
                       direction: str, limit: int, event_filter: dict[str, Any] | None) -> Page:
        snap = await self._room(room_id)
        if direction not in ("b", "f"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'b' or 'f'")
        limit = max(0, min(limit, MAX_PAGE))
        timeline = await self._visibility(room_id, requester.user_id)
        memberships = await self._queries.memberships_of(room_id, requester.user_id)
        if not memberships and not timeline.can_see(2**62):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")
        point = await self._parse_token(room_id, from_token, direction)
        end_point = await self._parse_token(room_id, to_token, direction) if to_token else None
        filt = event_filter or {}
        kwargs = dict(types=filt.get("types"), not_types=filt.get("not_types"),
                      senders=filt.get("senders"), not_senders=filt.get("not_senders"))
        if direction == "b":
            rows = await self._queries.paginate(room_id, before=point, limit=limit, **kwargs)
            if end_point is not None:
                rows = [r for r in rows if (r.depth, r.stream_ordering) > end_point]
        else:
            rows = await self._queries.paginate(room_id, after=point or (-1, -1), limit=limit, **kwargs)
            if end_point is not None:
                rows = [r for r in rows if (r.depth, r.stream_ordering) <= end_point]
        visible = self._visible(rows, timeline, requester.user_id)
        chunk = await self.format_events(visible, snap.version, requester)
        start = from_token or (topo_token(*point) if point else topo_token(2**62, 2**62))
        end = topo_token(rows[-1].depth, rows[-1].stream_ordering) if len(rows) == limit and rows else None
        return Page(chunk=chunk, start=start, end=end, state=[])

    async def _parse_token(self, room_id: str, token: str | None, direction: str) -> tuple[int, int] | None:
        """A /messages token: `t{depth}_{stream}` (ours), or `s{stream}` (a sync token)."""
        if token is None:
            return None
        try:
            if token.startswith("t"):
                depth, _, stream = token[1:].partition("_")
                return int(depth), int(stream)
            if token.startswith("s"):
                position = int(token[1:].split("_")[0])
                topo = await self._queries.topological_position(room_id, position)
                # Just after the newest event at that position (backwards includes it).
                return (topo[0], topo[1] + 1) if topo else (0, 0)
        except ValueError:
            pass
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid pagination token {token!r}")
