"""The per-room part of /sync: timeline, the state before it, the room summary, stripped state.

A fresh view of a room (first sync, full_state, or a room just joined) gets its full state at
the start of the timeline; otherwise a room gets its new timeline events and, when the
timeline is limited, the state that changed in the gap. With lazy-loaded members, the state
carries only the member events of the timeline's senders (and the user's own), and a device is
not sent the same member event twice unless it asks for redundant members.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from homeserver.core.events import STRIPPED_STATE_TYPES
from homeserver.core.filters import SyncFilter, only_fields
from homeserver.core.redaction import redact
from homeserver.core.room_versions import get_room_version
from homeserver.services.auth import Requester
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.rooms.timeline import topo_token
from storage.events import EventRow, EventStore
from storage.federation_rooms import FederationRoomStore
from storage.state import StateStore
from storage.sync import RoomMembershipAt, SyncQueries

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000
MAX_HEROES = 5
# Batches a timeline reads at most to fill up to its limit (when a filter or history
# visibility drops events).
FILTER_ROUNDS = 5
# Devices whose sent lazy-loaded members are remembered (least recently syncing out first).
LAZY_MEMBER_DEVICES = 10_000


@dataclass(frozen=True)
class RoomWindow:
    """Which part of a room's history a sync covers: (since, upto] of the room-event stream;
    since None is a fresh view (full state, no earlier position)."""
    since: int | None
    upto: int
    full_state: bool = False

    def fresh(self) -> RoomWindow:
        return RoomWindow(None, self.upto, True)


class RoomSyncBuilder:
    def __init__(self, queries: SyncQueries, events: EventStore, state: StateStore, rooms: RoomStateCache,
                 formatter: EventFormatter, stripped: FederationRoomStore) -> None:
        self._stripped = stripped
        self._queries = queries
        self._events = events
        self._state = state
        self._rooms = rooms
        self._format = formatter
        # (user, device) -> room -> member event IDs already sent to it.
        self._sent_members: OrderedDict[tuple[str, str | None], dict[str, set[str]]] = OrderedDict()

    async def room(self, requester: Requester, room_id: str, window: RoomWindow, membership: RoomMembershipAt,
                   f: SyncFilter, ignored: frozenset[str]) -> dict[str, Any]:
        """A room's timeline in the window and the state the client lacks before it."""
        snap = await self._rooms.snapshot(room_id)
        version = snap.version if snap else get_room_version("12")
        if membership.membership in ("leave", "ban"):
            row = await self._events.get_event(membership.event_id)
            if row is not None and row.outlier:
                # An out-of-band membership (an invite rejected, a knock withdrawn, in a room we
                # are not in): no timeline of the room is ours to show, the event itself is.
                return {"timeline": {"events": await self._events_out([row], version, requester, f, bundle=False),
                                     "limited": False, "prev_batch": topo_token(row.depth, row.stream_ordering)},
                        "state": {"events": []}}
        since = window.since
        limit = min(f.timeline.limit if f.timeline.limit is not None else DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT)
        filtering = bool(ignored) or f.timeline.filters_events
        fetch = max(limit * 2, 10) if filtering else limit  # room for what the filter drops
        # A filter, or history the user may not see, may drop most events: page back (a few
        # batches at most) until `limit` events pass, as Synapse does, so the timeline fills up.
        rows, cut, more, upto = [], False, False, window.upto
        member_throughout = since is not None and membership.membership == "join" and membership.stream_ordering <= since
        visibility = None
        # Current state events always show in the timeline, even from a stretch of history
        # the user may not see (as Synapse does): clients take the room's state from them.
        current_ids = set(snap.state.values()) if snap and not member_throughout else set()
        for round_ in range(FILTER_ROUNDS):
            batch = fetch if round_ == 0 else max(limit * 2, 10)
            raw = await self._queries.recent_events(room_id, after=since or 0, upto=upto, limit=batch + 1)
            more = len(raw) > batch
            raw = raw[1:] if more else raw  # the extra oldest one only says there is more
            if member_throughout:
                visible = raw  # joined all through the window: a member sees every event
            else:
                visibility = visibility or await self._format.visibility(room_id, requester.user_id)
                seen = {r.event_id for r in self._format.visible(raw, visibility, requester.user_id)}
                visible = [r for r in raw if r.event_id in seen or r.event_id in current_ids]
            cut = cut or len(visible) < len(raw)
            rows = [r for r in visible if self._timeline_allows(r, f, ignored)] + rows
            if not more or len(rows) >= limit or not raw:
                break
            upto = raw[0].stream_ordering - 1
        truncated = more or len(rows) > limit  # older events the client may page back to
        # A fresh view: history the user may not see is cut off, which also makes the
        # timeline limited (there is more, just not for them).
        limited = truncated or (since is None and cut)
        rows = rows[-limit:] if limit else []
        state_rows = await self._state_before(room_id, rows, since, window.upto, limited)
        state_rows = [r for r in state_rows if f.state.matches(r.type, r.sender, r.pdu.get("content"))]
        if f.state.lazy_load_members:
            # A gappy incremental sync keeps every state change of the gap, members too (as
            # Synapse does); lazy loading trims only the members that did not change.
            gap = {r.event_id for r in state_rows} if since is not None else set()
            if since is not None and rows:
                state_rows += await self._members_of_senders(rows, state_rows)
            state_rows = self._lazy_members(requester, room_id, rows, state_rows, f, since is None, gap)
        timeline: dict[str, Any] = {"events": await self._events_out(rows, version, requester, f), "limited": limited}
        if since is None and not truncated:
            # The whole visible history fits: paging back starts from now (as in Synapse,
            # whose clients expect /messages from prev_batch to return this timeline again).
            timeline["prev_batch"] = f"s{window.upto}"
        elif rows:
            timeline["prev_batch"] = topo_token(rows[0].depth, rows[0].stream_ordering)
        else:
            timeline["prev_batch"] = f"s{since if since is not None else window.upto}"
        out: dict[str, Any] = {
            "timeline": timeline,
            "state": {"events": await self._events_out(state_rows, version, requester, f, bundle=False)},
        }
        if membership.membership == "join" and (since is None or any(
                r.type == "m.room.member" for r in (*rows, *state_rows))):
            out["summary"] = await self._summary(room_id, requester.user_id)
        return out

    def forget_room(self, room_id: str) -> None:
        """Drop what devices were sent of a room whose history was purged or that was deleted."""
        for per_room in self._sent_members.values():
            per_room.pop(room_id, None)

    @staticmethod
    def quiet_room(window: RoomWindow) -> dict[str, Any]:
        """A joined room with nothing new in its timeline (only ephemeral or account data)."""
        return {"timeline": {"events": [], "limited": False, "prev_batch": f"s{window.since or window.upto}"},
                "state": {"events": []}}

    async def stripped_state(self, room_id: str, membership: RoomMembershipAt) -> list[dict[str, Any]]:
        # A room on another server: the stripped state its invite (or knock answer) came with.
        saved = await self._stripped.stripped_state(membership.event_id)
        if saved is not None:
            stripped = [e for e in saved if isinstance(e, dict)]
        else:
            snap = await self._rooms.snapshot(room_id)
            if snap is None:
                return []
            # The room's stripped state and the inviter's own member event (as Synapse gives it).
            keys = [(t, "") for t in STRIPPED_STATE_TYPES] + [("m.room.member", membership.sender)]
            events = await self._rooms.state_events(snap, keys)
            stripped = [{"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
                        for e in events.values()]
        member = (await self._events.get_events([membership.event_id])).get(membership.event_id)
        if member is not None:
            stripped = [e for e in stripped if (e.get("type"), e.get("state_key")) != ("m.room.member", member.state_key)]
            stripped.append({"type": "m.room.member", "state_key": member.state_key, "content": member.pdu["content"],
                             "sender": member.sender})
        return stripped

    # --- internals ---------------------------------------------------------------------------

    @staticmethod
    def _timeline_allows(row: EventRow, f: SyncFilter, ignored: frozenset[str]) -> bool:
        # Spec (ignoring users): the ignored users' events are hidden, except state events.
        if row.sender in ignored and row.state_key is None:
            return False
        return f.timeline.matches(row.type, row.sender, row.pdu.get("content"))

    async def _events_out(self, rows: list[EventRow], version, requester: Requester, f: SyncFilter,
                          *, bundle: bool = True) -> list[dict[str, Any]]:
        if f.event_format == "federation":
            # The PDU as peers see it, with its ID (room versions 3+ carry none), as Synapse gives it.
            erased = await self._format.erased_for(rows, requester)
            events = [{**(redact(r.pdu, version) if r.redacted_by or r.event_id in erased else r.pdu),
                       "event_id": r.event_id} for r in rows]
        else:
            events = await self._format.format_events(rows, version, requester, bundle=bundle)
        if f.event_fields is not None:
            events = [only_fields(e, f.event_fields) for e in events]
        return events

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

    async def _members_of_senders(self, rows: list[EventRow], state_rows: list[EventRow]) -> list[EventRow]:
        """Member events (at the timeline's start) of senders the response does not carry yet."""
        have = {r.state_key for r in (*state_rows, *rows) if r.type == "m.room.member"}
        missing = {r.sender for r in rows} - have
        if not missing or rows[0].state_before is None:
            return []
        start = await self._state.state_ids(rows[0].state_before)
        ids = [start[("m.room.member", s)] for s in sorted(missing) if ("m.room.member", s) in start]
        found = await self._events.get_events(ids)
        return [found[i] for i in ids if i in found]

    def _lazy_members(self, requester: Requester, room_id: str, rows: list[EventRow], state_rows: list[EventRow],
                      f: SyncFilter, fresh: bool, gap: set[str]) -> list[EventRow]:
        """Keep only the member events of the timeline's senders and the user's own (and those
        in `gap`, changes an incremental sync must carry); on an incremental sync, skip those
        this device already has (unless redundant ones are asked for)."""
        wanted = {r.sender for r in rows} | {requester.user_id}
        kept = [r for r in state_rows if r.type != "m.room.member" or r.state_key in wanted or r.event_id in gap]
        key = (requester.user_id, requester.device_id)
        per_room = self._sent_members.pop(key, None) or {}
        self._sent_members[key] = per_room
        if len(self._sent_members) > LAZY_MEMBER_DEVICES:
            self._sent_members.popitem(last=False)
        if fresh:
            per_room[room_id] = set()
        sent = per_room.setdefault(room_id, set())
        if not f.state.include_redundant_members and not fresh:
            kept = [r for r in kept if r.type != "m.room.member" or r.event_id not in sent or r.event_id in gap]
        sent.update(r.event_id for r in kept if r.type == "m.room.member")
        sent.update(r.event_id for r in rows if r.type == "m.room.member")
        return kept

    async def _summary(self, room_id: str, user_id: str) -> dict[str, Any]:
        members = await self._queries.members_in_order(room_id)
        joined = [u for u, m in members if m == "join"]
        invited = [u for u, m in members if m == "invite"]
        summary: dict[str, Any] = {"m.joined_member_count": len(joined), "m.invited_member_count": len(invited)}
        snap = await self._rooms.snapshot(room_id)
        named = snap is not None and (("m.room.name", "") in snap.state or ("m.room.canonical_alias", "") in snap.state)
        if not named:
            heroes = [u for u in joined + invited if u != user_id][:MAX_HEROES]
            if not heroes:  # everyone left: name the room after those who were in it
                heroes = [u for u, m in members if m in ("leave", "ban") and u != user_id][:MAX_HEROES]
            summary["m.heroes"] = heroes
        return summary
