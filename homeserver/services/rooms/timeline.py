"""Reading rooms for clients: events, state, members and /messages pagination.

Every event leaves through EventFormatter (client format, redactions applied, bundled
aggregations), and history visibility decides who sees what (homeserver/core/visibility.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.events import EventRow, EventStore
from storage.timeline import TimelineQueries
from storage.state import StateStore

MAX_PAGE = 1000
# /messages asks other servers for older history at most this many times per page.
BACKFILL_ROUNDS = 3


@dataclass(frozen=True)
class Page:
    chunk: list[dict[str, Any]]
    start: str
    end: str | None
    state: list[dict[str, Any]]


def topo_token(depth: int, position: int) -> str:
    return f"t{depth}_{position}"


def parse_topo_token(token: str) -> tuple[int, int]:
    """`t{depth}_{stream}` -> (depth, stream); 400 M_INVALID_PARAM otherwise."""
    try:
        if token.startswith("t"):
            depth, sep, stream = token[1:].partition("_")
            if sep:
                return int(depth), int(stream)
    except ValueError:
        pass
    raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid pagination token {token!r}")


class TimelineService:
    def __init__(self, events: EventStore, queries: TimelineQueries, state: StateStore,
                 rooms: RoomStateCache, formatter: EventFormatter,
                 backfill: Callable[[str, int], Awaitable[int]] | None = None, *,
                 full_state: Callable[[str], Awaitable[None]] | None = None) -> None:
        self._backfill = backfill
        # Waits until a room joined with a partial state has its full state (faster joins).
        self._full_state = full_state
        self._events = events
        self._format = formatter
        self._queries = queries
        self._state = state
        self._rooms = rooms

    # --- access -----------------------------------------------------------------------------------

    async def _room(self, room_id: str):
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return snap

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

    async def _state_at(self, snap: RoomSnapshot, group: int | None,
                        keys: Iterable[tuple[str, str]] | None = None) -> Mapping[tuple[str, str], str]:
        """Snapshot `group` of the room (only its `keys` when given): the room's current state
        from memory when that is the group asked, else read (keyed: a few index probes)."""
        if group is None:
            return {}
        if group == snap.state_group:
            return snap.state if keys is None else {k: snap.state[k] for k in keys if k in snap.state}
        return await self._state.state_ids(group) if keys is None else await self._state.state_ids_for_keys(group, keys)

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
        timeline = await self._format.visibility(room_id, requester.user_id)
        if not self._format.visible([row], timeline, requester.user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return (await self._format.format_events([row], snap.version, requester))[0]

    async def get_state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        snap = await self._room(room_id)
        group = await self._state_group_for_reader(room_id, requester.user_id)
        ids = await self._state_at(snap, group)
        rows = await self._events.get_events(list(ids.values()))
        return await self._format.format_events([rows[i] for i in ids.values() if i in rows], snap.version, requester)

    async def get_state_event(self, requester: Requester, room_id: str, event_type: str, state_key: str) -> dict[str, Any]:
        snap = await self._room(room_id)
        group = await self._state_group_for_reader(room_id, requester.user_id)
        event_id = (await self._state_at(snap, group, [(event_type, state_key)])).get((event_type, state_key))
        row = await self._events.get_event(event_id) if event_id else None
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return (await self._format.format_events([row], snap.version, requester))[0]

    async def members(self, requester: Requester, room_id: str, membership: str | None = None,
                      not_membership: str | None = None, at: str | None = None) -> list[dict[str, Any]]:
        """Member events of the room now, or `at` a pagination token (the state there). In a
        room joined with a partial state, once the full state is in (as Synapse)."""
        if self._full_state is not None:
            await self._full_state(room_id)
        if at is None:
            events = await self.get_state(requester, room_id)
        else:
            events = await self._state_at_token(requester, room_id, at)
        members = [e for e in events if e["type"] == "m.room.member"]
        if membership is not None:
            members = [e for e in members if e["content"].get("membership") == membership]
        if not_membership is not None:
            members = [e for e in members if e["content"].get("membership") != not_membership]
        return members

    async def _state_at_token(self, requester: Requester, room_id: str, token: str) -> list[dict[str, Any]]:
        snap = await self._room(room_id)
        point = await self._parse_token(room_id, token, "b")
        # The newest event at or before the point; its state after is the state at the token.
        rows = await self._queries.paginate(room_id, before=(point[0], point[1] + 1), limit=1) if point else []
        if not rows:
            return []
        timeline = await self._format.visibility(room_id, requester.user_id)
        if not self._format.visible(rows, timeline, requester.user_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You may not see the room at that point")
        ids = await self._state_at(snap, rows[0].state_after)
        state_rows = await self._events.get_events(list(ids.values()))
        return await self._format.format_events(list(state_rows.values()), snap.version, requester, bundle=False)

    async def joined_members(self, requester: Requester, room_id: str) -> dict[str, dict[str, Any]]:
        await self._room(room_id)
        memberships = await self._queries.memberships_of(room_id, requester.user_id)
        if not memberships or memberships[-1].membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not joined to this room")
        if self._full_state is not None:
            await self._full_state(room_id)
        return {
            user_id: {"display_name": content.get("displayname"), "avatar_url": content.get("avatar_url")}
            for user_id, content in await self._queries.joined_members_with_profiles(room_id)
        }

    async def messages(self, requester: Requester, room_id: str, *, from_token: str | None, to_token: str | None,
                       direction: str, limit: int, event_filter: dict[str, Any] | None,
                       as_admin: bool = False) -> Page:
        """`as_admin`: a server admin reads the whole timeline, member or not (Synapse's admin
        /messages), with no history visibility applied."""
        snap = await self._room(room_id)
        if direction not in ("b", "f"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'b' or 'f'")
        limit = max(0, min(limit, MAX_PAGE))
        timeline = None if as_admin else await self._format.visibility(room_id, requester.user_id)
        memberships = [] if as_admin else await self._queries.memberships_of(room_id, requester.user_id)
        if timeline is not None and not memberships and not timeline.can_see(2**62):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")
        point = await self._parse_token(room_id, from_token, direction)
        if direction == "b" and memberships and memberships[-1].membership in ("leave", "ban"):
            # A former member pages back from their departure at the latest, not from the
            # room's newest events (which they may not see), as Synapse does.
            left = await self._queries.topological_position(room_id, memberships[-1].stream_ordering)
            if left is not None and (point is None or point > (left[0], left[1] + 1)):
                point = (left[0], left[1] + 1)
        end_point = await self._parse_token(room_id, to_token, direction) if to_token else None
        filt = event_filter or {}
        kwargs = dict(types=filt.get("types"), not_types=filt.get("not_types"),
                      senders=filt.get("senders"), not_senders=filt.get("not_senders"))
        if direction == "b":
            rows = await self._queries.paginate(room_id, before=point, limit=limit, **kwargs)
            for _ in range(BACKFILL_ROUNDS):
                # Local history ran out in a room shared with other servers: it went on there.
                if len(rows) >= limit or self._backfill is None or not await self._backfill(room_id, limit):
                    break
                rows = await self._queries.paginate(room_id, before=point, limit=limit, **kwargs)
            if end_point is not None:
                rows = [r for r in rows if (r.depth, r.stream_ordering) > end_point]
        else:
            rows = await self._queries.paginate(room_id, after=point or (-1, -1), limit=limit, **kwargs)
            if end_point is not None:
                rows = [r for r in rows if (r.depth, r.stream_ordering) <= end_point]
        visible = rows if timeline is None else self._format.visible(rows, timeline, requester.user_id)
        chunk = await self._format.format_events(visible, snap.version, requester, visibility=timeline,
                                                 erasure=not as_admin)
        start = from_token or (topo_token(*point) if point else topo_token(2**62, 2**62))
        # Spec: no `end` when there are no more events; Synapse (and sytest) give `end` for
        # any page that found events, even a short one (the next page is then empty).
        end = topo_token(rows[-1].depth, rows[-1].stream_ordering) if rows else None
        state: list[dict[str, Any]] = []
        if filt.get("lazy_load_members") is True and visible:
            state = await self._senders_members(snap, visible, requester)
        return Page(chunk=chunk, start=start, end=end, state=state)

    async def _senders_members(self, snap: RoomSnapshot, rows: list[EventRow],
                               requester: Requester) -> list[dict[str, Any]]:
        """Lazy-loaded members of a page: the senders' member events at its first event."""
        keys = [("m.room.member", s) for s in dict.fromkeys(r.sender for r in rows)]
        ids = await self._state_at(snap, rows[0].state_after, keys)
        wanted = [ids[k] for k in keys if k in ids]
        found = await self._events.get_events(wanted)
        return await self._format.format_events([found[i] for i in wanted if i in found], snap.version, requester,
                                                bundle=False)

    async def context(self, requester: Requester, room_id: str, event_id: str, limit: int,
                      lazy_load_members: bool, *, as_admin: bool = False) -> dict[str, Any]:
        """Spec: /context: events before and after one event, and the room state at the last one.
        `as_admin`: for a server admin, member or not, with no history visibility applied."""
        snap = await self._room(room_id)
        row = await self._events.get_event(event_id)
        timeline = None if as_admin else await self._format.visibility(room_id, requester.user_id)

        def visible(rows: list[EventRow]) -> list[EventRow]:
            return rows if timeline is None else self._format.visible(rows, timeline, requester.user_id)
        if timeline is not None and not await self._queries.memberships_of(room_id, requester.user_id) \
                and not timeline.can_see(2**62):
            # Never in the room and not world-readable: 403, as for /messages (Synapse too).
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")
        if row is None or row.room_id != room_id or row.stream_ordering is None or row.rejected_reason \
                or not visible([row]):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        limit = max(0, min(limit, MAX_PAGE))
        before_limit = limit // 2
        after_limit = limit - before_limit
        point = (row.depth, row.stream_ordering)
        before = await self._queries.paginate(room_id, before=point, limit=before_limit) if before_limit else []
        after = await self._queries.paginate(room_id, after=point, limit=after_limit) if after_limit else []
        before = visible(before)
        after = visible(after)
        last = after[-1] if after else row
        state_ids = await self._state_at(snap, last.state_after)
        if lazy_load_members:
            senders = {r.sender for r in (*before, row, *after)}
            state_ids = {k: v for k, v in state_ids.items() if k[0] != "m.room.member" or k[1] in senders}
        state_rows = await self._events.get_events(list(state_ids.values()))
        first = before[-1] if before else row
        erasure = not as_admin
        return {
            "event": (await self._format.format_events([row], snap.version, requester, erasure=erasure))[0],
            "events_before": await self._format.format_events(before, snap.version, requester, erasure=erasure),
            "events_after": await self._format.format_events(after, snap.version, requester, erasure=erasure),
            "state": await self._format.format_events(list(state_rows.values()), snap.version, requester, bundle=False,
                                                      erasure=erasure),
            "start": topo_token(first.depth, first.stream_ordering),
            "end": topo_token(last.depth, last.stream_ordering),
        }

    async def event_at_timestamp(self, requester: Requester, room_id: str, ts: int, direction: str) -> dict[str, Any]:
        """Spec: /timestamp_to_event: the closest visible event at or after (f) / before (b) `ts`."""
        await self._room(room_id)
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'f' or 'b'")
        timeline = await self._format.visibility(room_id, requester.user_id)
        rows = await self._queries.closest_to_timestamp(room_id, ts, forwards=direction == "f", limit=20)
        for row in rows:
            if self._format.visible([row], timeline, requester.user_id):
                return {"event_id": row.event_id, "origin_server_ts": row.origin_server_ts}
        raise MatrixError(404, Codes.NOT_FOUND, f"No event found {'after' if direction == 'f' else 'before'} {ts}")

    async def _parse_token(self, room_id: str, token: str | None, direction: str) -> tuple[int, int] | None:
        """A /messages token: `t{depth}_{stream}` (ours), or `s{stream}` (a sync token)."""
        if token is None:
            return None
        if token.startswith("t"):
            return parse_topo_token(token)
        try:
            if token.startswith("s"):
                position = int(token[1:].split("_")[0])
                topo = await self._queries.topological_position(room_id, position)
                # Just after the newest event at that position (backwards includes it).
                return (topo[0], topo[1] + 1) if topo else (0, 0)
        except ValueError:
            pass
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid pagination token {token!r}")
