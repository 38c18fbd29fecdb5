"""The per-room part of a sliding sync response, built for all the response's rooms at once.

A room is sent either whole (`initial`: its metadata, the required state and the newest
`timeline_limit` events) or as what changed since the position the connection last had it
at: new timeline events, the required state entries that changed, and metadata only when
the state behind it changed. Invites and knocks carry stripped state only. A user who left
sees the room up to their departure, and no state from before they could see it.
Queries are batched over the rooms (timelines, state changes, counts, heroes, events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.core.visibility import VisibilityTimeline
from homeserver.services.auth import Requester
from homeserver.services.rooms.event_format import EventFormatter
from homeserver.services.rooms.state import RoomStateCache
from homeserver.services.rooms.timeline import topo_token
from homeserver.services.sync.rooms import RoomSyncBuilder
from homeserver.services.sync.sliding_request import MEMBER, RoomConfig, StateKey
from homeserver.services.sync.summaries import MAX_HEROES
from storage.events import EventRow, EventStore
from storage.state import StateStore
from storage.sync import RoomMembershipAt, SlidingRoomRow, SyncQueries

NAME = ("m.room.name", "")
AVATAR = ("m.room.avatar", "")
DEFAULT_VERSION = get_room_version("12")


@dataclass(frozen=True)
class RoomPlan:
    """What to send of one room. `since` None: the whole room (`initial`); otherwise the
    changes after that room-event position. `previous` is the config the client's copy was
    built with; `expand_timeline`: the timeline limit grew, so resend the newest events."""
    room: SlidingRoomRow
    config: RoomConfig
    since: int | None
    previous: RoomConfig | None
    expand_timeline: bool = False
    is_dm: bool = False


@dataclass
class BuiltRoom:
    body: dict[str, Any]
    limited: bool
    timeline_event_ids: list[str]
    # user -> member event ID the client now has (lazy-loaded members are not resent).
    members_sent: dict[str, str] = field(default_factory=dict)


@dataclass
class _Work:
    """One room while its response is assembled."""
    plan: RoomPlan
    upto: int
    version: RoomVersion
    state: dict[StateKey, str]
    rows: list[EventRow] = field(default_factory=list)
    limited: bool = False
    visibility: VisibilityTimeline | None = None
    changed: dict[StateKey, str] = field(default_factory=dict)
    required: dict[StateKey, str] = field(default_factory=dict)

    @property
    def room_id(self) -> str:
        return self.plan.room.room_id

    @property
    def joined(self) -> bool:
        return self.plan.room.membership == "join"

    @property
    def initial(self) -> bool:
        return self.plan.since is None

    def changed_key(self, key: StateKey) -> bool:
        return self.initial or key in self.changed

    @property
    def members_changed(self) -> bool:
        return self.initial or any(t == MEMBER for t, _ in self.changed)


class SlidingRoomBuilder:
    def __init__(self, queries: SyncQueries, events: EventStore, state: StateStore, rooms: RoomStateCache,
                 formatter: EventFormatter, v3_rooms: RoomSyncBuilder) -> None:
        self._queries = queries
        self._events = events
        self._state = state
        self._rooms = rooms
        self._format = formatter
        self._v3_rooms = v3_rooms

    async def build(self, requester: Requester, plans: list[RoomPlan], upto: int, live_after: int | None,
                    members_sent: dict[str, dict[str, str]], ignored: frozenset[str]) -> dict[str, BuiltRoom]:
        """The rooms of one response. `live_after`: events after it count in `num_live`;
        `members_sent`: room -> the member events the connection already has."""
        out: dict[str, BuiltRoom] = {}
        works: list[_Work] = []
        for plan in plans:
            if plan.room.membership in ("invite", "knock"):
                out[plan.room.room_id] = await self._invite(plan)
            else:
                works.append(await self._work(plan, upto))
        if not works:
            return out
        await self._timelines(requester, works, ignored)
        await self._state_changes(works)
        me = requester.user_id
        for work in works:
            self._pick_required_state(work, me, members_sent.get(work.room_id, {}))
        wanted = {e for w in works for e in w.required.values()}
        wanted.update(w.state[k] for w in works for k in (NAME, AVATAR) if k in w.state)
        events = await self._events.get_events(sorted(wanted))
        # Heroes name a room that has no name, when its members may have changed.
        hero_rooms = [w.room_id for w in works if w.joined and w.members_changed
                      and not self._text(self._content_of(w.state.get(NAME), events).get("name"))]
        heroes = await self._queries.heroes(hero_rooms, me, MAX_HEROES) if hero_rooms else {}
        hero_ids = sorted({e for found in heroes.values() for _, e in found} - events.keys())
        if hero_ids:
            events.update(await self._events.get_events(hero_ids))
        count_rooms = [w.room_id for w in works if w.joined and w.members_changed]
        counts = await self._queries.member_counts(count_rooms) if count_rooms else {}
        for work in works:
            if not work.joined and work.visibility is not None:
                # Left rooms: no state from before the user could see the room.
                work.required = {k: e for k, e in work.required.items() if e in events and work.visibility.can_see(
                    events[e].stream_ordering or 0, is_own_membership=k == (MEMBER, me))}
        formatted = await self._format_all(requester, works, events)
        for work in works:
            timeline, required_state = formatted[work.room_id]
            body = self._body(work, timeline, required_state, events, heroes.get(work.room_id), live_after)
            if work.room_id in counts:
                body["joined_count"], body["invited_count"] = counts[work.room_id]
            sent = {} if work.initial else dict(members_sent.get(work.room_id, {}))
            sent.update((k[1], e) for k, e in work.required.items() if k[0] == MEMBER)
            sent.update((r.state_key, r.event_id) for r in work.rows if r.type == MEMBER and r.state_key is not None)
            out[work.room_id] = BuiltRoom(body, work.limited, [r.event_id for r in work.rows], sent)
        return out

    # --- steps ---------------------------------------------------------------------------------------

    async def _invite(self, plan: RoomPlan) -> BuiltRoom:
        room = plan.room
        membership = RoomMembershipAt(room.room_id, room.membership, room.event_id, room.stream_ordering, room.sender)
        # Knocks too: clients tell them apart by their own member event in it (as Synapse).
        body: dict[str, Any] = {"invite_state": await self._v3_rooms.stripped_state(room.room_id, membership),
                                "bump_stamp": room.stream_ordering}
        if plan.since is None:
            body["initial"] = True
        if plan.is_dm:
            body["is_dm"] = True
        return BuiltRoom(body, False, [])

    async def _work(self, plan: RoomPlan, upto: int) -> _Work:
        room = plan.room
        snap = await self._rooms.snapshot(room.room_id)
        version = snap.version if snap is not None else DEFAULT_VERSION
        if room.membership == "join":
            return _Work(plan, upto, version, dict(snap.state) if snap is not None else {})
        # Nothing after the user's departure: the state is the one their leave (or ban) left.
        left_at = await self._events.get_event(room.event_id)
        state = await self._state.state_ids(left_at.state_after) if left_at and left_at.state_after else {}
        return _Work(plan, room.stream_ordering, version, state)

    async def _timelines(self, requester: Requester, works: list[_Work], ignored: frozenset[str]) -> None:
        windows = []
        for work in works:
            limit = work.plan.config.timeline_limit
            after = 0 if work.initial or work.plan.expand_timeline else work.plan.since
            if limit > 0:
                windows.append((work.room_id, after, work.upto, limit + 1))
        found = await self._queries.recent_events_in_rooms(windows)
        for work in works:
            limit = work.plan.config.timeline_limit
            rows = found.get(work.room_id, [])
            work.limited = len(rows) > limit
            rows = rows[-limit:] if limit else []
            # A joined user sees everything since their join; older events (and everything
            # in a room they left) pass through history visibility.
            if rows and (not work.joined or rows[0].stream_ordering < work.plan.room.stream_ordering):
                work.visibility = await self._format.visibility(work.room_id, requester.user_id)
                visible = self._format.visible(rows, work.visibility, requester.user_id)
                work.limited = work.limited or (len(visible) < len(rows) and work.initial)
                rows = visible
            elif not work.joined:
                work.visibility = await self._format.visibility(work.room_id, requester.user_id)
            # Spec (ignoring users): their events are hidden, except state events.
            work.rows = [r for r in rows if r.sender not in ignored or r.state_key is not None]

    async def _state_changes(self, works: list[_Work]) -> None:
        windows = [(w.room_id, w.plan.since, w.upto) for w in works if w.plan.since is not None]
        changed = await self._queries.current_state_changed_in_rooms(windows)
        for work in works:
            work.changed = changed.get(work.room_id, {})

    @staticmethod
    def _pick_required_state(work: _Work, me: str, members_sent: dict[str, str]) -> None:
        wanted = work.plan.config.required_state
        if work.initial:
            required = {k: e for k, e in work.state.items() if wanted.matches(k, me)}
        else:
            # MSC4186: with lazy members, a gapless timeline also carries every membership
            # change, so a client's cached member list stays right.
            all_members = wanted.lazy_members and not work.limited
            required = {k: e for k, e in work.changed.items()
                        if wanted.matches(k, me) or (all_members and k[0] == MEMBER)}
            previous = work.plan.previous
            if previous is not None and not previous.required_state.covers(wanted):
                # The config grew: send what it now matches and did not before.
                required.update({k: e for k, e in work.state.items()
                                 if wanted.matches(k, me) and not previous.required_state.matches(k, me)})
        if wanted.lazy_members:
            have = {} if work.initial else members_sent
            users = {r.sender for r in work.rows}
            users.update(r.state_key for r in work.rows if r.type == MEMBER and r.state_key is not None)
            for user_id in users:
                event_id = work.state.get((MEMBER, user_id))
                if event_id is not None and have.get(user_id) != event_id:
                    required[(MEMBER, user_id)] = event_id
        work.required = required

    async def _format_all(self, requester: Requester, works: list[_Work],
                          events: dict[str, EventRow]) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """room -> (timeline, required_state) in client format, one formatting pass per room version."""
        by_version: dict[str, list[_Work]] = {}
        for work in works:
            by_version.setdefault(work.version.identifier, []).append(work)
        out: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for group in by_version.values():
            version = group[0].version
            timeline_rows = [r for w in group for r in w.rows]
            state_rows = [events[e] for w in group for _, e in sorted(w.required.items()) if e in events]
            timeline = iter(await self._format.format_events(timeline_rows, version, requester))
            state = iter(await self._format.format_events(state_rows, version, requester, bundle=False))
            for work in group:
                out[work.room_id] = ([next(timeline) for _ in work.rows],
                                     [next(state) for _, e in sorted(work.required.items()) if e in events])
        return out

    def _body(self, work: _Work, timeline: list[dict[str, Any]], required_state: list[dict[str, Any]],
              events: dict[str, EventRow], heroes: list[tuple[str, str]] | None,
              live_after: int | None) -> dict[str, Any]:
        plan, room = work.plan, work.plan.room
        body: dict[str, Any] = {}
        if work.initial:
            body["initial"] = True
        for key, field_name, content_key in ((NAME, "name", "name"), (AVATAR, "avatar", "url")):
            if work.changed_key(key):
                value = self._text(self._content_of(work.state.get(key), events).get(content_key))
                if value is not None or not work.initial:  # null: removed since the client's copy
                    body[field_name] = value
        if heroes is not None:
            body["heroes"] = [self._hero(user_id, event_id, events) for user_id, event_id in heroes]
        if required_state:
            body["required_state"] = required_state
        if plan.config.timeline_limit > 0:
            if timeline:
                body["timeline"] = timeline
            body["limited"] = work.limited
            first = work.rows[0] if work.rows else None
            body["prev_batch"] = topo_token(first.depth, first.stream_ordering) if first else f"s{work.upto}"
            body["num_live"] = 0 if live_after is None else sum(1 for r in work.rows if r.stream_ordering > live_after)
        if plan.expand_timeline:
            # Synapse's name for it, which current clients read; the MSC's later name too.
            body["unstable_expanded_timeline"] = body["expanded_timeline"] = True
        body["bump_stamp"] = room.bump_stamp if work.joined and room.bump_stamp is not None else room.stream_ordering
        if plan.is_dm:
            body["is_dm"] = True
        return body

    @staticmethod
    def _content_of(event_id: str | None, events: dict[str, EventRow]) -> dict[str, Any]:
        row = events.get(event_id) if event_id is not None else None
        content = row.pdu.get("content") if row is not None and not row.redacted_by else None
        return content if isinstance(content, dict) else {}

    @staticmethod
    def _text(value: Any) -> str | None:
        """A name or URL as the spec reads it: absent, null and empty all mean unset."""
        return value if isinstance(value, str) and value else None

    @classmethod
    def _hero(cls, user_id: str, member_event_id: str, events: dict[str, EventRow]) -> dict[str, Any]:
        hero: dict[str, Any] = {"user_id": user_id}
        content = cls._content_of(member_event_id, events)
        for key in ("displayname", "avatar_url"):
            if isinstance(content.get(key), str):
                hero[key] = content[key]
        return hero
