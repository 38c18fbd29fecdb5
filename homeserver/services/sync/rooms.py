"""The per-room part of /sync: timeline, the state before it, the room summary, stripped state.

A fresh view of a room (first sync, full_state, or a room just joined) gets its full state at
the start of the timeline; otherwise a room gets its new timeline events and, when the
timeline is limited, the state that changed in the gap. With lazy-loaded members, the state
carries only the member events of the timeline's senders (and the user's own), and a device is
not sent the same member event twice unless it asks for redundant members.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homeserver.core.events import STRIPPED_STATE_TYPES
from homeserver.core.filters import SyncFilter, only_fields
from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.core.visibility import VisibilityTimeline
from homeserver.services.auth import Requester
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache
from homeserver.services.rooms.timeline import topo_token
from homeserver.services.sync.summaries import MemberSummaries
from storage.events import EventRow, EventStore
from storage.federation_rooms import FederationRoomStore
from storage.state import StateStore
from storage.sync import RoomMembershipAt, SyncQueries

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000
# Member summaries kept (one per room: counts and a dozen user IDs).
SUMMARY_CACHE_BYTES = 2 * 1024 * 1024
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


@dataclass(eq=False)
class _Work:
    """One room of a response while it is built."""
    room_id: str
    window: RoomWindow
    membership: RoomMembershipAt
    version: RoomVersion
    snap: RoomSnapshot | None
    limit: int = 0
    fetch: int = 0
    # Joined all through the window: a member sees every event (no visibility to compute).
    member_throughout: bool = False
    visibility: VisibilityTimeline | None = None
    rows: list[EventRow] = field(default_factory=list)
    truncated: bool = False
    limited: bool = False
    start_group: int | None = None  # the snapshot before the timeline (fresh or gappy views)
    since_group: int | None = None  # the snapshot at `since` (gappy incremental views)
    state_rows: list[EventRow] = field(default_factory=list)
    body: dict[str, Any] | None = None


@dataclass(eq=False)
class _StateWant:
    """What a sync needs of one state snapshot of a room: all of it, or some keys."""
    work: _Work
    full: bool = False
    others: bool = False  # every key that is not a member event
    members: set[str] = field(default_factory=set)  # these users' member events

    def pick(self, state: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        picked = {k: e for k, e in state.items() if k[0] != "m.room.member"} if self.others else {}
        for user_id in self.members:
            event_id = state.get(("m.room.member", user_id))
            if event_id is not None:
                picked[("m.room.member", user_id)] = event_id
        return picked


class RoomSyncBuilder:
    def __init__(self, queries: SyncQueries, events: EventStore, state: StateStore, rooms: RoomStateCache,
                 formatter: EventFormatter, stripped: FederationRoomStore) -> None:
        self._stripped = stripped
        self._queries = queries
        self._events = events
        self._state = state
        self._rooms = rooms
        self._format = formatter
        self._summaries = MemberSummaries(queries, SUMMARY_CACHE_BYTES)
        # (user, device) -> room -> member event IDs already sent to it.
        self._sent_members: OrderedDict[tuple[str, str | None], dict[str, set[str]]] = OrderedDict()

    async def room(self, requester: Requester, room_id: str, window: RoomWindow, membership: RoomMembershipAt,
                   f: SyncFilter, ignored: frozenset[str]) -> dict[str, Any]:
        """A room's timeline in the window and the state the client lacks before it."""
        return (await self.rooms(requester, [(room_id, window, membership)], f, ignored))[room_id]

    async def rooms(self, requester: Requester, wanted: Sequence[tuple[str, RoomWindow, RoomMembershipAt]],
                    f: SyncFilter, ignored: frozenset[str]) -> dict[str, dict[str, Any]]:
        """`room` for many rooms (each once), each kind of data read for all of them at once:
        the timelines, the visibility inputs, the snapshots, the state events, the formatting
        (redactions, relations) and the summaries are one query each, not one per room."""
        works = [await self._work(requester, room_id, window, membership, f) for room_id, window, membership in wanted]
        todo = [w for w in works if w.body is None]
        if todo:
            await self._timelines(requester, todo, f, ignored)
            await self._states(requester, todo, f)
            await self._bodies(requester, todo, f)
        return {w.room_id: w.body for w in works if w.body is not None}

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

    # --- the steps of `rooms` -----------------------------------------------------------------

    async def _work(self, requester: Requester, room_id: str, window: RoomWindow, membership: RoomMembershipAt,
                    f: SyncFilter) -> _Work:
        snap = await self._rooms.snapshot(room_id)
        work = _Work(room_id, window, membership, snap.version if snap else get_room_version("12"), snap)
        if membership.membership in ("leave", "ban"):
            row = await self._events.get_event(membership.event_id)
            if row is not None and row.outlier:
                # An out-of-band membership (an invite rejected, a knock withdrawn, in a room we
                # are not in): no timeline of the room is ours to show, the event itself is.
                events = await self._events_out([row], work.version, requester, f, bundle=False)
                work.body = {"timeline": {"events": events, "limited": False,
                                          "prev_batch": topo_token(row.depth, row.stream_ordering)},
                             "state": {"events": []}}
                return work
        work.limit = min(f.timeline.limit if f.timeline.limit is not None else DEFAULT_TIMELINE_LIMIT,
                         MAX_TIMELINE_LIMIT)
        work.member_throughout = window.since is not None and membership.membership == "join" \
            and membership.stream_ordering <= window.since
        return work

    async def _timelines(self, requester: Requester, works: list[_Work], f: SyncFilter,
                         ignored: frozenset[str]) -> None:
        """Each room's timeline: the first batch of every room in one read, the visibility
        inputs of the rooms that need them in another; a filter or history the user may not
        see may drop most events: then that room pages back (a few batches at most) until
        `limit` events pass, as Synapse does, so the timeline fills up."""
        filtering = bool(ignored) or f.timeline.filters_events
        for work in works:
            work.fetch = max(work.limit * 2, 10) if filtering else work.limit  # room for what the filter drops
        first = await self._queries.recent_events_in_rooms(
            [(w.room_id, w.window.since or 0, w.window.upto, w.fetch + 1) for w in works], no_outliers=True)
        seeing = [w.room_id for w in works if not w.member_throughout]
        inputs = await self._queries.visibility_inputs(seeing, requester.user_id) if seeing else {}
        for work in works:
            if not work.member_throughout:
                work.visibility = self._format.visibility_from(*inputs[work.room_id])
            await self._timeline(requester, work, first.get(work.room_id, []), f, ignored)

    async def _timeline(self, requester: Requester, work: _Work, raw: list[EventRow], f: SyncFilter,
                        ignored: frozenset[str]) -> None:
        since, limit = work.window.since, work.limit
        rows: list[EventRow] = []
        cut, more, upto = False, False, work.window.upto
        # Current state events always show in the timeline, even from a stretch of history
        # the user may not see (as Synapse does): clients take the room's state from them.
        current = work.snap.state if work.snap is not None else {}
        for round_ in range(FILTER_ROUNDS):
            batch = work.fetch if round_ == 0 else max(limit * 2, 10)
            if round_:
                raw = await self._queries.recent_events(work.room_id, after=since or 0, upto=upto, limit=batch + 1)
            more = len(raw) > batch
            raw = raw[1:] if more else raw  # the extra oldest one only says there is more
            if work.visibility is None:
                visible = raw  # joined all through the window: a member sees every event
            else:
                seen = {r.event_id for r in self._format.visible(raw, work.visibility, requester.user_id)}
                visible = [r for r in raw if r.event_id in seen or (
                    r.state_key is not None and current.get((r.type, r.state_key)) == r.event_id)]
            cut = cut or len(visible) < len(raw)
            rows = [r for r in visible if self._timeline_allows(r, f, ignored)] + rows
            if not more or len(rows) >= limit or not raw:
                break
            upto = raw[0].stream_ordering - 1
        work.truncated = more or len(rows) > limit  # older events the client may page back to
        # A fresh view: history the user may not see is cut off, which also makes the
        # timeline limited (there is more, just not for them).
        work.limited = work.truncated or (since is None and cut)
        work.rows = rows[-limit:] if limit else []

    async def _states(self, requester: Requester, works: list[_Work], f: SyncFilter) -> None:
        """The state clients lack before each timeline: all of it for a fresh view (with lazy
        members, the other keys and only the members the timeline needs); what changed in the
        gap for a limited incremental timeline; nothing otherwise. Every snapshot in one read
        (none when it is the room's current one, in memory), every state event in another."""
        needing = [w for w in works if w.window.since is None or w.limited]
        for work in needing:
            if work.rows:
                work.start_group = work.rows[0].state_before
            else:
                last = await self._queries.event_at_or_before(work.room_id, work.window.upto)
                work.start_group = last.state_after if last else None
            if work.window.since is not None:
                at_since = await self._queries.event_at_or_before(work.room_id, work.window.since)
                work.since_group = at_since.state_after if at_since else None
        lazy = f.state.lazy_load_members
        wants: dict[int, _StateWant] = {}

        def want(work: _Work, group: int | None) -> _StateWant | None:
            return wants.setdefault(group, _StateWant(work)) if group else None

        for work in needing:
            start = want(work, work.start_group)
            if start is not None and lazy and work.window.since is None:
                # Only the members a lazy-loading client is sent: the timeline's senders, its own.
                start.others = True
                start.members.update({r.sender for r in work.rows} | {requester.user_id})
            elif start is not None:
                start.full = True
            since_state = want(work, work.since_group)
            if since_state is not None:
                since_state.full = True
        if lazy:  # the senders' member events are taken from the snapshot before the timeline
            for work in works:
                if work.window.since is not None and work.rows:
                    senders = want(work, work.rows[0].state_before)
                    if senders is not None:
                        senders.members.update(r.sender for r in work.rows)
        states = await self._state_maps(wants)
        wanted: dict[str, list[str]] = {}
        for work in needing:
            start = states.get(work.start_group, {}) if work.start_group else {}
            timeline_ids = {r.event_id for r in work.rows}
            if work.window.since is None:
                wanted[work.room_id] = [e for e in start.values() if e not in timeline_ids]
            else:
                old = states.get(work.since_group, {}) if work.since_group else {}
                wanted[work.room_id] = [e for k, e in start.items() if old.get(k) != e and e not in timeline_ids]
        found = await self._event_rows({e for ids in wanted.values() for e in ids})
        for work in works:
            rows = [found[e] for e in wanted.get(work.room_id, ()) if e in found]
            work.state_rows = [r for r in rows if f.state.matches(r.type, r.sender, r.pdu.get("content"))]
        if not lazy:
            return
        # A gappy incremental sync keeps every state change of the gap, members too (as
        # Synapse does); lazy loading trims only the members that did not change.
        senders: dict[str, list[str]] = {}
        for work in works:
            if work.window.since is not None and work.rows and work.rows[0].state_before:
                start = states.get(work.rows[0].state_before, {})
                have = {r.state_key for r in (*work.state_rows, *work.rows) if r.type == "m.room.member"}
                missing = sorted({r.sender for r in work.rows} - have)
                # Those this device was sent already would be dropped below: not even read.
                sent = set() if f.state.include_redundant_members else \
                    self._sent_members.get((requester.user_id, requester.device_id), {}).get(work.room_id, set())
                senders[work.room_id] = [e for e in (start.get(("m.room.member", s)) for s in missing)
                                         if e is not None and e not in sent]
        members = await self._event_rows({e for ids in senders.values() for e in ids})
        for work in works:
            gap = {r.event_id for r in work.state_rows} if work.window.since is not None else set()
            work.state_rows += [members[e] for e in senders.get(work.room_id, ()) if e in members]
            work.state_rows = self._lazy_members(requester, work.room_id, work.rows, work.state_rows, f,
                                                 work.window.since is None, gap)

    async def _state_maps(self, wants: dict[int, _StateWant]) -> dict[int, Mapping[tuple[str, str], str]]:
        """group -> (the wanted part of) its state map. A room's current snapshot is in memory
        (a woken sync's timeline nearly always starts on it); other snapshots are read, whole
        only where whole maps are wanted, else by key."""
        out: dict[int, Mapping[tuple[str, str], str]] = {}
        whole: list[int] = []
        keyed: list[int] = []
        members: set[str] = set()
        others = False
        for group, want in wants.items():
            state = self._state_in_memory(want.work, group)
            if state is not None:
                out[group] = state if want.full else want.pick(state)
            elif want.full:
                whole.append(group)
            else:
                keyed.append(group)
                members |= want.members
                others = others or want.others
        if whole:
            out.update(await self._state.state_ids_of_groups(sorted(whole)))
        if keyed:
            out.update(await self._queries.state_keys_of_groups(sorted(keyed), sorted(members), others=others))
        return out

    def _state_in_memory(self, work: _Work, group: int) -> Mapping[tuple[str, str], str] | None:
        """The state map of `group` if it is a snapshot of the room held in memory (a cached
        snapshot is never changed in place: the pipeline builds on a copy and swaps it in)."""
        for snap in (self._rooms.cached(work.room_id), work.snap):
            if snap is not None and snap.state_group == group:
                return snap.state
        return None

    async def _bodies(self, requester: Requester, works: list[_Work], f: SyncFilter) -> None:
        """Format every room's events (per room version, all rooms at once) and add the
        summaries, read for all the rooms that need one at once."""
        by_version: dict[str, list[_Work]] = {}
        for work in works:
            by_version.setdefault(work.version.identifier, []).append(work)
        timelines: dict[str, list[dict[str, Any]]] = {}
        states: dict[str, list[dict[str, Any]]] = {}
        for same in by_version.values():
            version = same[0].version
            for out, attribute, bundle in ((timelines, "rows", True), (states, "state_rows", False)):
                events = iter(await self._events_out([r for w in same for r in getattr(w, attribute)], version,
                                                     requester, f, bundle=bundle))
                for work in same:
                    out[work.room_id] = [next(events) for _ in getattr(work, attribute)]
        summarised = {w.room_id for w in works if w.membership.membership == "join" and (
            w.window.since is None or any(r.type == "m.room.member" for r in (*w.rows, *w.state_rows)))}
        summaries = await self._summaries.of_rooms((w.room_id, self._current_group(w)) for w in works
                                                   if w.room_id in summarised)
        for work in works:
            window, rows = work.window, work.rows
            timeline: dict[str, Any] = {"events": timelines[work.room_id], "limited": work.limited}
            if window.since is None and not work.truncated:
                # The whole visible history fits: paging back starts from now (as in Synapse,
                # whose clients expect /messages from prev_batch to return this timeline again).
                timeline["prev_batch"] = f"s{window.upto}"
            elif rows:
                timeline["prev_batch"] = topo_token(rows[0].depth, rows[0].stream_ordering)
            else:
                timeline["prev_batch"] = f"s{window.since if window.since is not None else window.upto}"
            work.body = {"timeline": timeline, "state": {"events": states[work.room_id]}}
            summary = summaries.get(work.room_id)
            if summary is not None:
                snap = self._rooms.cached(work.room_id) or work.snap
                named = snap is not None and (("m.room.name", "") in snap.state
                                              or ("m.room.canonical_alias", "") in snap.state)
                work.body["summary"] = summary.body(requester.user_id, named)

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

    async def _event_rows(self, event_ids: set[str]) -> dict[str, EventRow]:
        return await self._events.get_events(sorted(event_ids)) if event_ids else {}

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

    def _current_group(self, work: _Work) -> int | None:
        """The room's snapshot group when the cached snapshot is the state this sync saw last
        (after its newest timeline event): its summary may then come from memory."""
        seen = work.rows[-1].state_after if work.rows else work.start_group
        snap = self._rooms.cached(work.room_id)
        return seen if seen is not None and snap is not None and snap.state_group == seen else None
