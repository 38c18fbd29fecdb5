"""Relations and threads: `/relations/{eventId}[/{relType}[/{eventType}]]` and `/threads`.

Only events the user may see are returned (history visibility), and the parent must be
visible too; pages use the same topological tokens as /messages.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.rooms.timeline import parse_topo_token, topo_token
from storage.events import EventStore
from storage.relations import RelationQueries

MAX_LIMIT = 100


class RelationsService:
    def __init__(self, events: EventStore, relations: RelationQueries, rooms: RoomStateCache,
                 formatter: EventFormatter) -> None:
        self._events = events
        self._relations = relations
        self._rooms = rooms
        self._format = formatter

    async def relations(
        self, requester: Requester, room_id: str, parent_id: str, *, rel_type: str | None, event_type: str | None,
        from_token: str | None, to_token: str | None, direction: str, limit: int,
    ) -> dict[str, Any]:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        timeline = await self._format.visibility(room_id, requester.user_id)
        parent = await self._events.get_event(parent_id)
        if parent is None or parent.room_id != room_id or not self._format.visible([parent], timeline, requester.user_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        if direction not in ("b", "f"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'b' or 'f'")
        limit = max(1, min(limit, MAX_LIMIT))
        point = parse_topo_token(from_token) if from_token else None
        end_point = parse_topo_token(to_token) if to_token else None
        if direction == "b":
            rows = await self._relations.relations(room_id, parent_id, rel_type=rel_type, event_type=event_type,
                                                   before=point, after=None, limit=limit)
            if end_point is not None:
                rows = [r for r in rows if (r.depth, r.stream_ordering) > end_point]
        else:
            rows = await self._relations.relations(room_id, parent_id, rel_type=rel_type, event_type=event_type,
                                                   before=None, after=point or (-1, -1), limit=limit)
            if end_point is not None:
                rows = [r for r in rows if (r.depth, r.stream_ordering) <= end_point]
        visible = self._format.visible(rows, timeline, requester.user_id)
        body: dict[str, Any] = {"chunk": await self._format.format_events(visible, snap.version, requester)}
        if len(rows) == limit:
            body["next_batch"] = topo_token(rows[-1].depth, rows[-1].stream_ordering)
        if from_token:
            body["prev_batch"] = from_token
        return body

    async def threads(self, requester: Requester, room_id: str, *, include: str, from_token: str | None,
                      limit: int) -> dict[str, Any]:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if include not in ("all", "participated"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'include' must be 'all' or 'participated'")
        timeline = await self._format.visibility(room_id, requester.user_id)
        limit = max(1, min(limit, MAX_LIMIT))
        before = parse_topo_token(from_token) if from_token else None
        roots = await self._relations.thread_roots(
            room_id, participant=requester.user_id if include == "participated" else None, before=before, limit=limit)
        rows_by_id = await self._events.get_events([r[0] for r in roots])
        rows = [rows_by_id[r[0]] for r in roots if r[0] in rows_by_id]
        visible = self._format.visible(rows, timeline, requester.user_id)
        body: dict[str, Any] = {"chunk": await self._format.format_events(visible, snap.version, requester)}
        if len(roots) == limit:
            body["next_batch"] = topo_token(roots[-1][1], roots[-1][2])
        return body
