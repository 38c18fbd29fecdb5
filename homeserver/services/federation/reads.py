"""What other servers may read of our rooms: events, state, auth chains, history; and ACLs.

Use cases (server-server API "Retrieving events", "Backfilling and retrieving missing
events", "Retrieving event authorisation information", "Server Access Control Lists"):
- `check_acl`: the room's current m.room.server_acl must allow the requesting server
  (403 M_FORBIDDEN otherwise); every room-scoped federation endpoint calls it first.
- `get_event`, `get_state`, `get_state_ids`, `get_event_auth`, `backfill`,
  `get_missing_events`, `timestamp_to_event`: the answers of the matching endpoints.

Invariants:
- a server reads a room only while one of its users is joined to it, now or at the event
  asked about (as Synapse's assert_host_in_room, plus the event's own state): 403 otherwise;
- events go out as their stored PDUs, redacted when redacted here or sent by a local user who
  asked for erasure when deactivating, and redacted when the
  room's history visibility at the event hides them from that server (Synapse's
  filter_events_for_server): `world_readable` and `shared` (and unknown values) show events
  to any server; `invited` to a server with an invited or joined user there, `joined` to a
  server with a joined user there. "There" is the state after the event (so a server's own
  join is visible to it); for history_visibility events and the server's own users' member
  events the state before counts too, as the client rules say. Outliers (no state) show;
- rejected events never go out; soft-failed ones only when asked for by ID (peers reference them);
- every DAG walk is one recursive query (FederationReadQueries), whatever its length.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from homeserver.core.acl import server_allowed
from homeserver.core.ids import server_name_of
from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion
from homeserver.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.services.rooms.partial_state import PartialStateRooms
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from storage.events import EventRow, EventStore
from storage.timeline import TimelineQueries
from storage.federation_reads import FederationReadQueries, ServerView
from storage.state import StateStore

# Synapse asks for (and answers) at most 100 events per backfill or get_missing_events.
MAX_EVENTS = 100
DEFAULT_MISSING_EVENTS_LIMIT = 10
MAX_DEPTH = 2**63 - 1  # the largest BIGINT (depths and timestamps are stored as such)
ACL_KEY = ("m.room.server_acl", "")


class FederationReadService:
    def __init__(self, events: EventStore, graph: FederationReadQueries, state: StateStore, timeline: TimelineQueries,
                 rooms: RoomStateCache, clock: Clock, server_name: str,
                 erased: Callable[[Sequence[str]], Awaitable[set[str]]] | None = None,
                 partial_state: PartialStateRooms | None = None) -> None:
        """`erased(user_ids)`: those of our users who asked for erasure when deactivating.
        `partial_state`: the rooms joined with a partial state (faster joins), whose state we
        do not serve yet and whose servers we take from the join's answer meanwhile."""
        self._partial = partial_state
        self._erased = erased
        self._events = events
        self._timeline = timeline
        self._graph = graph
        self._state = state
        self._rooms = rooms
        self._clock = clock
        self._server_name = server_name

    # --- ACLs ---------------------------------------------------------------------------------

    async def check_acl(self, room_id: str, origin: str) -> None:
        """403 M_FORBIDDEN when the room's current server ACL denies `origin`. A room unknown
        here has no ACL to apply (the caller answers for the room itself)."""
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            return
        await self._check_acl(snap, origin)

    async def _check_acl(self, snap: RoomSnapshot, origin: str) -> None:
        if ACL_KEY not in snap.state:
            return  # the common case: no ACL, nothing read
        acl = (await self._rooms.state_events(snap, [ACL_KEY])).get(ACL_KEY)
        if acl is not None and not server_allowed(acl.content, origin):
            raise MatrixError(403, Codes.FORBIDDEN, f"Server {origin} is banned from this room by its server ACL")

    # --- single events and state ------------------------------------------------------------

    async def get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        """GET /event/{eventId}: a transaction holding the one PDU."""
        row = await self._events.get_event(event_id)
        if row is None or row.rejected_reason is not None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        snap = await self._room(row.room_id, origin)
        await self._check_in_room(snap.room_id, origin, row)
        return self._transaction(await self._visible_pdus(origin, [row], snap.version))

    async def get_state_ids(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /state_ids/{roomId}?event_id=: the state before the event, and its auth chain."""
        snap, state_ids = await self._state_before(origin, room_id, event_id)
        ids = list(state_ids.values())
        chain = await self._graph.auth_chain_ids(room_id, ids)
        create_id = _implied_create_id(snap, ids, chain)
        return {"pdu_ids": ids, "auth_chain_ids": chain + [create_id] if create_id else chain}

    async def get_state(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /state/{roomId}?event_id=: the state events before the event, and their auth chain."""
        snap, state_ids = await self._state_before(origin, room_id, event_id)
        ids = list(state_ids.values())
        rows = await self._events.get_events(ids)
        chain = await self._auth_chain(snap, ids)
        return {"pdus": [self._pdu(rows[i], snap.version) for i in ids if i in rows],
                "auth_chain": [self._pdu(r, snap.version) for r in chain]}

    async def get_event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /event_auth/{roomId}/{eventId}: the event's full auth chain."""
        snap = await self._room(room_id, origin)
        await self._refuse_while_partial(room_id)
        row = await self._event_in_room(room_id, event_id)
        await self._check_in_room(room_id, origin, row)
        chain = await self._auth_chain(snap, [event_id])
        return {"auth_chain": [self._pdu(r, snap.version) for r in chain]}

    # --- history ------------------------------------------------------------------------------

    async def backfill(self, origin: str, room_id: str, from_event_ids: Sequence[str], limit: int) -> dict[str, Any]:
        """GET /backfill/{roomId}: the given events and those before them, deepest first, up to
        `limit` (at most 100), as a transaction."""
        snap = await self._room(room_id, origin)
        await self._check_in_room(room_id, origin, None)
        limit = min(limit, MAX_EVENTS)
        if limit <= 0 or not from_event_ids:
            return self._transaction([])
        rows = await self._graph.backfill(room_id, list(dict.fromkeys(from_event_ids)), limit)
        return self._transaction(await self._visible_pdus(origin, rows, snap.version))

    async def get_missing_events(self, origin: str, room_id: str, earliest: Sequence[str], latest: Sequence[str],
                                 limit: int = DEFAULT_MISSING_EVENTS_LIMIT, min_depth: int = 0) -> dict[str, Any]:
        """POST /get_missing_events/{roomId}: breadth-first back from `latest` via prev_events,
        not past `earliest`, up to `limit` (at most 100) events of depth >= `min_depth`,
        returned oldest first."""
        snap = await self._room(room_id, origin)
        await self._check_in_room(room_id, origin, None)
        limit = min(limit, MAX_EVENTS)
        if limit <= 0 or not latest:
            return {"events": []}
        min_depth = min(min_depth, MAX_DEPTH)  # a bigger one selects nothing either
        rows = await self._graph.missing_events(room_id, list(set(earliest)), list(set(latest)), limit, min_depth)
        rows.sort(key=lambda r: (r.depth, r.stream_ordering if r.stream_ordering is not None else -1))
        return {"events": await self._visible_pdus(origin, rows, snap.version)}

    async def timestamp_to_event(self, origin: str, room_id: str, ts: int, direction: str) -> dict[str, Any]:
        """GET /timestamp_to_event/{roomId}: the event nearest to `ts` in direction `dir`
        (`f` at or after, `b` at or before): {"event_id", "origin_server_ts"}; 404 if none."""
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "'dir' must be 'f' or 'b'")
        await self._room(room_id, origin)
        await self._check_in_room(room_id, origin, None)
        ts = max(min(ts, MAX_DEPTH), -MAX_DEPTH)  # a BIGINT; beyond it nothing lies anyway
        rows = await self._timeline.closest_to_timestamp(room_id, ts, forwards=direction == "f", limit=1)
        if not rows:
            raise MatrixError(404, Codes.NOT_FOUND,
                              f"No event found {'after' if direction == 'f' else 'before'} {ts}")
        return {"event_id": rows[0].event_id, "origin_server_ts": rows[0].origin_server_ts}

    # --- internals ----------------------------------------------------------------------------

    async def _room(self, room_id: str, origin: str) -> RoomSnapshot:
        snap = await self._rooms.snapshot(room_id)
        if snap is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        await self._check_acl(snap, origin)
        return snap

    async def _event_in_room(self, room_id: str, event_id: str) -> EventRow:
        row = await self._events.get_event(event_id)
        # An event of another room is as unknown here as a missing one: nothing leaks.
        if row is None or row.room_id != room_id or row.rejected_reason is not None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found in this room")
        return row

    async def _state_before(self, origin: str, room_id: str, event_id: str) -> tuple[RoomSnapshot, dict]:
        snap = await self._room(room_id, origin)
        await self._refuse_while_partial(room_id)
        row = await self._event_in_room(room_id, event_id)
        await self._check_in_room(room_id, origin, row)
        if row.outlier:
            raise MatrixError(404, Codes.NOT_FOUND, "The state at this event is not known here")
        if row.state_before is None:
            return snap, {}  # the create event: nothing before it
        return snap, await self._state.state_ids(row.state_before)

    async def _auth_chain(self, snap: RoomSnapshot, event_ids: list[str]) -> list[EventRow]:
        chain = await self._graph.auth_chain(snap.room_id, event_ids)
        create_id = _implied_create_id(snap, event_ids, [r.event_id for r in chain])
        if create_id:
            chain += [row for row in (await self._events.get_events([create_id])).values()]
        return chain

    async def _refuse_while_partial(self, room_id: str) -> None:
        """The state (and auth chains) of a room whose state we hold only in part are not
        served until the resync is over: 403 MSC3895, as Synapse answers."""
        if self._partial is not None and await self._partial.is_partial(room_id):
            raise MatrixError(403, Codes.UNABLE_DUE_TO_PARTIAL_STATE,
                              "Unable to authorise you right now; room is partial-stated here")

    async def _check_in_room(self, room_id: str, origin: str, row: EventRow | None) -> None:
        """403 unless a user of `origin` is joined now, or (given an event) in its state. While
        our state is partial, the servers the join's answer named count too (as Synapse's
        approximation): we do not know their members yet."""
        if await self._graph.server_joined(room_id, origin):
            return
        if self._partial is not None and origin in await self._partial.servers_in_room(room_id):
            return
        groups = [g for g in (row.state_before, row.state_after) if g is not None] if row is not None else []
        if groups:
            views = await self._graph.server_views(groups, origin)
            if any("join" in v.memberships for v in views.values()):
                return
        raise MatrixError(403, Codes.FORBIDDEN, f"{origin} is not in room {room_id}")

    async def _visible_pdus(self, origin: str, rows: Iterable[EventRow], version: RoomVersion) -> list[dict[str, Any]]:
        """The rows' PDUs as `origin` may see them (in the order given)."""
        rows = list(rows)
        groups: set[int] = set()
        for row in rows:
            if row.state_after is not None:
                groups.add(row.state_after)
            if row.state_before is not None and _both_sides_count(row, origin):
                groups.add(row.state_before)
        views = await self._graph.server_views(list(groups), origin) if groups else {}
        # Events of our users who asked for erasure go out redacted (as Synapse's
        # filter_events_for_server does, to every server).
        local_senders = list({r.sender for r in rows if server_name_of(r.sender) == self._server_name})
        erased = await self._erased(local_senders) if self._erased is not None and local_senders else set()
        out = []
        for row in rows:
            visible = row.state_after is None or _server_may_see(views[row.state_after])
            if not visible and row.state_before is not None and _both_sides_count(row, origin):
                visible = _server_may_see(views[row.state_before])
            out.append(self._pdu(row, version, hidden=not visible or row.sender in erased))
        return out

    def _pdu(self, row: EventRow, version: RoomVersion, *, hidden: bool = False) -> dict[str, Any]:
        """The PDU as it goes to a peer: as stored, redacted when redacted or hidden."""
        return redact(row.pdu, version) if hidden or row.redacted_by is not None else row.pdu

    def _transaction(self, pdus: list[dict[str, Any]]) -> dict[str, Any]:
        return {"origin": self._server_name, "origin_server_ts": self._clock.now_ms(), "pdus": pdus}


def _implied_create_id(snap: RoomSnapshot, event_ids: Sequence[str], chain_ids: Sequence[str]) -> str | None:
    """From v12 events do not list the create event in auth_events (the room ID names it),
    but it is in every auth chain all the same: a peer checking the events needs it. Its
    ID when it must be added to `chain_ids`."""
    if snap.version.auth.create_event_in_auth_events:
        return None
    create_id = "$" + snap.room_id[1:]
    if create_id in chain_ids or all(e == create_id for e in event_ids):
        return None
    return create_id


def _both_sides_count(row: EventRow, origin: str) -> bool:
    """History visibility changes, and member events of the server's own users, show when the
    state before OR after them allows (client-server API, history visibility)."""
    if row.type == "m.room.history_visibility" and row.state_key == "":
        return True
    return row.type == "m.room.member" and row.state_key is not None and server_name_of(row.state_key) == origin


def _server_may_see(view: ServerView) -> bool:
    """Synapse's check_event_is_visible for servers."""
    visibility = view.history_visibility
    if visibility not in ("invited", "joined"):
        return True  # world_readable, shared, none, or a value we do not know (= shared)
    if "join" in view.memberships:
        return True
    return visibility == "invited" and "invite" in view.memberships
