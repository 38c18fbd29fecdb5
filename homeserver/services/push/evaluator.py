"""Push rules evaluated for every new event: the push actions that move unread counts and
reach pushers.

PushEvaluator — an EventService.before_publish listener. For each new event it evaluates the
rules of every joined local member but the sender (and of a local invitee), unless they
ignore the sender, and stores the actions that notify or highlight for all of them with one
INSERT (spec: push, "Server behaviour"). HTTP pushers are then handed the notifying actions.

Off the send path: the listener only queues the batch with the room's snapshot after it (the
members it is evaluated for) and returns; the evaluation and the insert run in a task of the
room, in order, several queued batches together. So neither the sender, nor the room's next
batch, nor the stream wait for them. What stays consistent:
- a /sync that returns an event returns counts that include it: the batch is registered with
  UnreadCounts (`evaluating`) before its positions become visible, and every reader of a
  room's counts waits for the room's registered evaluations first (`settled`);
- other processes read counts from the database: the positions are announced to them only
  once the actions are written (EventService holds the announcement until the listener's
  awaitable completes);
- the members are those of the snapshot the batch left, as if it were evaluated at once.

Cheap per member: users whose rulesets differ only by their own ID share one compiled
template (core/push_templates.py); an event is planned once per template and each member costs
a few string comparisons (mentions, display name, localpart), none when the plan gives every
member of the template the same actions. The room's members, display names and power levels
are kept per state snapshot, updated from a batch's state changes (a join: one member event)
rather than derived again from every member; the local members grouped by template, and
their ignore lists, per room (`_Audience`), updated by who joined and left, so that an event
that notifies nobody (a join, a reaction) costs one plan per template, not a walk of the
members.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.caching import ENTRY_OVERHEAD, ID_BYTES, ByteLRU
from homeserver.core import power_levels
from homeserver.core.events import Event
from homeserver.core.push_rules import Effect, PushContext, effect_of
from homeserver.core.push_templates import Member, Plan, RulesetTemplate, member, plan
from homeserver.services.clock import Clock
from homeserver.services.push.pushers import EventNotices, PusherService
from homeserver.services.push.rules import PushRuleService
from homeserver.services.push.unread import UnreadCounts
from homeserver.services.rooms.state import RoomSnapshot, RoomStateCache, SnapshotMemo
from storage.push import PushAction, PushActionStore

logger = logging.getLogger(__name__)

# Ceilings of the room state and audience caches when the app gives none (config
# caches.push_room_state, caches.push_audiences).
ROOM_CACHE_BYTES = 8 * 1024 * 1024
AUDIENCE_CACHE_BYTES = 4 * 1024 * 1024
# Spec (threaded read receipts): follow relations at most 3 hops to find a thread; the
# event's own relation is the first.
THREAD_HOPS = 3
# A room with this many events waiting for evaluation makes its next batch wait (backpressure).
MAX_QUEUED_EVENTS = 2000
# The evaluation lets other tasks run after this many members (a room of thousands).
MEMBERS_PER_SLICE = 1000
# The pause between slices of a room's members evaluated in the background.
SLICE_PAUSE_S = 0.002
_POWER_KEYS = frozenset({("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.name", ""),
                         ("m.room.canonical_alias", "")})


@dataclass(frozen=True)
class _RoomPushState:
    """What push evaluation needs of a room, valid for one state snapshot."""
    local_members: dict[str, Member]  # joined local users
    joined: frozenset[str]  # every joined member
    display_names: dict[str, str]  # every joined member with one
    power_state: dict[tuple[str, str], Event]
    notification_levels: dict[str, int]
    room_name: str | None
    room_alias: str | None


def _room_push_state_size(state: _RoomPushState | None) -> int:
    """Estimated bytes: the members and their display names (the power state's events are
    the event cache's, shared)."""
    if state is None:
        return 0
    return ID_BYTES * (3 * len(state.local_members) + len(state.joined) + 2 * len(state.display_names)) \
        + ENTRY_OVERHEAD * (len(state.local_members) + len(state.power_state) + len(state.notification_levels) + 1)


class IgnoreLists(Protocol):
    """Whom users ignore (AccountDataService)."""
    ignored_generation: int  # moves with every change of anyone's list

    async def ignored_by(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]: ...


@dataclass
class _Audience:
    """A room's local members as push evaluation walks them: grouped by ruleset template,
    with their ignore lists. Kept per room across snapshots and updated by who joined and
    left, while no user's rules or ignore list changed (`generation`)."""
    members: dict[str, Member]  # the snapshot's local members it was last updated to
    generation: tuple[int, int]  # (rules, ignore lists) when built
    template_of: dict[str, RulesetTemplate]
    groups: dict[int, tuple[RulesetTemplate, dict[str, None]]]  # id(template) -> its members, in order
    ignoring: dict[str, frozenset[str]]  # members who ignore anyone

    def add(self, user_id: str, template: RulesetTemplate) -> None:
        self.template_of[user_id] = template
        group = self.groups.get(id(template))
        if group is None:
            group = self.groups[id(template)] = (template, {})
        group[1][user_id] = None

    def remove(self, user_id: str) -> None:
        template = self.template_of.pop(user_id, None)
        self.ignoring.pop(user_id, None)
        if template is not None:
            users = self.groups[id(template)][1]
            users.pop(user_id, None)
            if not users:
                del self.groups[id(template)]


def _audience_size(audience: _Audience) -> int:
    """Estimated bytes: each member is a key of two dicts (the templates are shared)."""
    return 2 * ID_BYTES * len(audience.template_of) + ENTRY_OVERHEAD * (len(audience.ignoring) + len(audience.groups))


@dataclass
class _RoomQueue:
    batches: list[tuple[list[tuple[Event, int]], RoomSnapshot | None]] = field(default_factory=list)
    events: int = 0
    written: asyncio.Future[None] | None = None  # done when the queued batches are written
    counted: asyncio.Future[None] | None = None  # done when the counts kept include them
    # Members with a waiting /sync when a batch came (a room of thousands): evaluated first,
    # and done when their counts kept include the queued batches.
    first: set[str] = field(default_factory=set)
    first_counted: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None


class PushEvaluator:
    def __init__(self, rules: PushRuleService, rooms: RoomStateCache, actions: PushActionStore,
                 pushers: PusherService, clock: Clock, server_name: str,
                 ignore_lists: IgnoreLists | None = None, *,
                 waiting_users: Callable[[], Collection[str]] | None = None,
                 unread: UnreadCounts, room_cache_bytes: int = ROOM_CACHE_BYTES,
                 audience_cache_bytes: int = AUDIENCE_CACHE_BYTES) -> None:
        self._rules = rules
        self._ignore_lists = ignore_lists
        self._waiting_users = waiting_users  # users with a waiting /sync (Notifier)
        self._rooms = rooms
        self._actions = actions
        self._pushers = pushers
        self._unread = unread  # the unread counts kept in memory, moved by the actions stored
        self._clock = clock
        self._local_suffix = ":" + server_name
        self._room_state: SnapshotMemo[_RoomPushState | None] = SnapshotMemo(
            rooms, self._derive_room, room_cache_bytes, _room_push_state_size, update=self._update_room)
        self.cache_stats = self._room_state.cache_stats
        self._audiences: ByteLRU[str, _Audience] = ByteLRU(audience_cache_bytes, _audience_size)
        self.audience_cache_stats = self._audiences.stats
        self._queues: dict[str, _RoomQueue] = {}

    async def on_persisted(self, published: list[tuple[Event, int]]) -> Awaitable[None] | None:
        """The listener (under the room's lock, before the positions are visible): queue the
        batch for its room's task; returns what completes once its actions are written."""
        by_room: dict[str, list[tuple[Event, int]]] = {}
        for event, position in published:
            by_room.setdefault(event.room_id, []).append((event, position))
        waits = []
        for room_id, items in by_room.items():
            queue = self._queues.get(room_id)
            if queue is None:
                queue = self._queues[room_id] = _RoomQueue()
            if queue.events >= MAX_QUEUED_EVENTS and queue.written is not None:
                await asyncio.shield(queue.written)  # the room sends faster than it is evaluated
            if queue.written is None or queue.written.done():
                loop = asyncio.get_running_loop()
                queue.written, queue.counted = loop.create_future(), loop.create_future()
                queue.first, queue.first_counted = set(), loop.create_future()
                self._unread.evaluating(room_id, queue.written, queue.counted)
            # Before the batch wakes anyone: whose /sync waits now.
            waiting = self._waiting_members(room_id)
            if waiting and len(queue.first | waiting) <= MEMBERS_PER_SLICE and queue.counted is not None \
                    and queue.first_counted is not None:
                queue.first |= waiting
                self._unread.evaluating_first(room_id, queue.counted, frozenset(queue.first), queue.first_counted)
            # The members to evaluate for: those of the snapshot this batch left.
            queue.batches.append((items, self._rooms.cached(room_id)))
            queue.events += len(items)
            if queue.task is None:
                # In a context of its own: not the sender's (its transaction, its logging).
                queue.task = asyncio.get_running_loop().create_task(
                    self._drain(room_id, queue), context=contextvars.Context())
            waits.append(queue.written)
        return waits[0] if len(waits) == 1 else asyncio.gather(*waits)

    async def _drain(self, room_id: str, queue: _RoomQueue) -> None:
        try:
            # Created while the batch is published: its senders' answers, scheduled just
            # after, go out before the evaluation starts.
            await asyncio.sleep(0)
            while queue.batches:
                batches, queue.batches, queue.events = queue.batches, [], 0
                written, queue.written = queue.written, None
                counted, queue.counted = queue.counted, None
                first, queue.first = frozenset(queue.first), set()
                first_counted, queue.first_counted = queue.first_counted, None
                try:
                    await self._process(room_id, batches, counted, first, first_counted)
                except Exception:
                    logger.exception("push evaluation failed for %d events",
                                     sum(len(items) for items, _ in batches))
                    self._unread.forget_room(room_id)  # the counts kept may hold actions not stored
                finally:
                    for future in (first_counted, counted, written):
                        if future is not None and not future.done():
                            future.set_result(None)
        finally:
            queue.task = None
            if self._queues.get(room_id) is queue and not queue.batches:
                del self._queues[room_id]

    async def _process(self, room_id: str, batches: list[tuple[list[tuple[Event, int]], RoomSnapshot | None]],
                       counted: asyncio.Future[None] | None = None, first: frozenset[str] = frozenset(),
                       first_counted: asyncio.Future[None] | None = None) -> None:
        now = self._clock.now_ms()
        threads = await self._threads([event for items, _ in batches for event, _ in items])
        new: list[PushAction] = []
        notices: list[EventNotices] = []
        rooms = []
        for items, snap in batches:
            room = await (self._room_state.get_at(room_id, snap) if snap is not None
                          else self._room_state.get(room_id))
            if room is not None:
                rooms.append((items, room))
        if first:
            # A room of thousands: the members whose /sync waits get their counts first, so
            # that it returns after their evaluation, not after everyone's.
            for items, room in rooms:
                await self._evaluate(room_id, room, items, threads, now, new, notices, only=first)
            with self._unread.changing():
                self._unread.added(new)
        if first_counted is not None and not first_counted.done():
            first_counted.set_result(None)
        early = len(new)
        for items, room in rooms:
            # Once the waiting /syncs have their counts, the rest is background work: it pauses
            # between slices so that their responses go out first.
            await self._evaluate(room_id, room, items, threads, now, new, notices, skip=first,
                                 pause=SLICE_PAUSE_S if first else 0.0)
        with self._unread.changing():
            # The counts kept move first, and the syncs of this process waiting for them go on
            # while the rows are written (a count from the database still waits for the rows).
            self._unread.added(new[early:])
            if counted is not None and not counted.done():
                counted.set_result(None)
            await self._actions.add(new)
        redacted = [e.redacts for items, _ in batches for e, _ in items if e.type == "m.room.redaction" and e.redacts]
        if redacted:
            with self._unread.changing():
                await self._actions.delete_for_events(redacted)
                self._unread.forget_room(room_id)
        if notices:
            self._pushers.deliver(notices)

    def _waiting_members(self, room_id: str) -> set[str] | None:
        """The room's local members with a waiting /sync, when the room has thousands (its
        members as of its last evaluation)."""
        audience = self._audiences.peek(room_id)
        if self._waiting_users is None or audience is None or len(audience.template_of) <= MEMBERS_PER_SLICE:
            return None
        members = audience.template_of
        waiting = self._waiting_users()
        return members.keys() & waiting if len(waiting) > len(members) else {u for u in waiting if u in members}

    async def _evaluate(self, room_id: str, room: _RoomPushState, items: list[tuple[Event, int]],
                        threads: dict[str, str], now: int, new: list[PushAction],
                        notices: list[EventNotices], *, only: frozenset[str] | None = None,
                        skip: frozenset[str] | None = None, pause: float = 0.0) -> None:
        """The push actions of `items` for the room's local members (those of `only`, or all
        but those of `skip`), appended to `new`, and their notices to `notices`."""
        audience = await self._audience(room_id, room)
        effects: dict[int, Effect] = {}
        walked = 0
        for event, position in items:
            as_dict = event.pdu if "room_id" in event.pdu else {**event.pdu, "room_id": event.room_id}
            ctx = PushContext(len(room.joined), None, power_levels.user_power_level(event.sender, room.power_state),
                              room.notification_levels)
            groups = list(audience.groups.values())
            invitee = self._invitee(event, room)
            if invitee is not None:  # not a member yet: evaluated on its own
                template = (await self._rules.templates_for([invitee]))[invitee]
                groups.append((template, {invitee: None}))
            plans = [(plan(template, as_dict, ctx), users) for template, users in groups]
            if all(self._silent(found, effects) for found, _ in plans):
                continue  # a member event, a reaction, an edit...: nobody is notified, no member walked
            thread = threads.get(event.event_id)
            recipients: list[tuple[str, dict[str, Any]]] = []
            sender, event_id = event.sender, event.event_id
            ignoring = audience.ignoring
            if invitee is not None and self._ignore_lists is not None:
                ignoring = {**ignoring, **await self._ignore_lists.ignored_by([invitee])}
            local = room.local_members
            for found, users in plans:
                if self._silent(found, effects):
                    continue
                if only is not None:
                    users = [u for u in only if u in users]
                elif skip:
                    users = [u for u in users if u not in skip]
                # The members a rule of their own matches (a mention); the others get the fallback.
                special = found.matching([local.get(u) or member(u, None) for u in users]) if found.candidates else {}
                fallback = found.fallback
                for user_id in users:
                    walked += 1
                    if walked == MEMBERS_PER_SLICE:
                        walked = 0
                        await asyncio.sleep(pause)  # a room of thousands: let sends and syncs run meanwhile
                    # The sender is not notified of their own event (spec: "Server behaviour"),
                    # nor anyone of an event from a user they ignore (spec: ignoring users).
                    if user_id == sender or (user_id in ignoring and sender in ignoring[user_id]):
                        continue
                    actions = special.get(user_id, fallback) if special else fallback
                    if actions is None:
                        continue
                    effect = effects.get(id(actions))
                    if effect is None:
                        effect = effects[id(actions)] = effect_of(actions)
                    if not (effect.notify or effect.highlight):
                        continue
                    new.append(PushAction(user_id, room_id, event_id, position, thread,
                                          effect.notify, effect.highlight, actions, now))
                    if effect.notify:
                        recipients.append((user_id, effect.tweaks))
            if recipients:
                notices.append(EventNotices(event, recipients, room.display_names.get(sender), room.room_name,
                                            room.room_alias))

    @staticmethod
    def _silent(found: Plan, effects: dict[int, Effect]) -> bool:
        """Whether the plan notifies nobody, whoever the member."""
        if found.candidates:
            return False
        if found.fallback is None:
            return True
        effect = effects.get(id(found.fallback))
        if effect is None:
            effect = effects[id(found.fallback)] = effect_of(found.fallback)
        return not (effect.notify or effect.highlight)

    def _invitee(self, event: Event, room: _RoomPushState) -> str | None:
        """The local target of an invite, whose rules apply though they are not a member yet
        (the members' apply too: spec, "Server behaviour")."""
        target = event.state_key
        if (event.type == "m.room.member" and event.content.get("membership") == "invite" and target
                and target != event.sender and target.endswith(self._local_suffix)
                and target not in room.local_members):
            return target
        return None

    async def _audience(self, room_id: str, room: _RoomPushState) -> _Audience:
        """The room's local members grouped by template, with their ignore lists, as of
        `room`: kept from the room's last evaluation and updated by who joined and left, or
        built again when anyone's rules or ignore list changed since."""
        generation = (self._rules.generation,
                      self._ignore_lists.ignored_generation if self._ignore_lists is not None else 0)
        audience = self._audiences.get(room_id)
        if audience is not None and audience.members is room.local_members and audience.generation == generation:
            return audience
        if audience is None or audience.generation != generation:
            audience = _Audience({}, generation, {}, {}, {})
        joined = list(room.local_members.keys() - audience.template_of.keys())
        for user_id in audience.template_of.keys() - room.local_members.keys():
            audience.remove(user_id)
        if joined:
            # Sorted, so that the walk is the same from run to run.
            joined.sort()
            templates = await self._rules.templates_for(joined)
            for user_id in joined:
                audience.add(user_id, templates[user_id])
            if self._ignore_lists is not None:
                audience.ignoring.update(await self._ignore_lists.ignored_by(joined))
        audience.members = room.local_members
        self._audiences.put(room_id, audience)  # its size again
        return audience

    async def _threads(self, events: list[Event]) -> dict[str, str]:
        """event_id -> thread root for the events that are in a thread."""
        found: dict[str, str] = {}
        parents: dict[str, str] = {}
        for event in events:
            relates = event.content.get("m.relates_to")
            if not isinstance(relates, dict):
                continue
            rel_type, parent = relates.get("rel_type"), relates.get("event_id")
            if not isinstance(rel_type, str) or not isinstance(parent, str):
                continue
            if rel_type == "m.thread":
                found[event.event_id] = parent
            else:
                parents[event.event_id] = parent
        if parents:
            roots = await self._actions.threads_of(list(set(parents.values())), THREAD_HOPS - 1)
            for event_id, parent in parents.items():
                if parent in roots:
                    found[event_id] = roots[parent]
        return found

    # --- the room's state, per snapshot ---------------------------------------------------------

    async def _derive_room(self, room_id: str, snap: RoomSnapshot | None) -> _RoomPushState | None:
        if snap is None:
            return None
        keys = [k for k in snap.state if k[0] == "m.room.member"] + list(_POWER_KEYS)
        state = await self._rooms.state_events(snap, keys)
        local: dict[str, Member] = {}
        names: dict[str, str] = {}
        joined = []
        for (event_type, state_key), event in state.items():
            if event_type != "m.room.member" or event.content.get("membership") != "join":
                continue
            joined.append(state_key)
            name = event.content.get("displayname")
            if isinstance(name, str):
                names[state_key] = name
            if state_key.endswith(self._local_suffix):
                local[state_key] = member(state_key, name if isinstance(name, str) else None)
        return self._room_push_state(local, frozenset(joined), names, state)

    async def _update_room(self, room_id: str, old: _RoomPushState | None, snap: RoomSnapshot,
                           changed: dict[tuple[str, str], Event]) -> _RoomPushState | None:
        """The state after a batch from the state before it: its member events applied (the
        power levels, name or alias changed: derived again)."""
        if old is None or any(key in _POWER_KEYS for key in changed):
            return None
        members = {k[1]: e for k, e in changed.items() if k[0] == "m.room.member"}
        if not members:
            return old
        local, names = dict(old.local_members), dict(old.display_names)
        now_joined = {u for u, e in members.items() if e.content.get("membership") == "join"}
        joined = (old.joined - members.keys()) | now_joined
        for user_id, event in members.items():
            names.pop(user_id, None)
            local.pop(user_id, None)
            if user_id in now_joined:
                name = event.content.get("displayname")
                name = name if isinstance(name, str) else None
                if name is not None:
                    names[user_id] = name
                if user_id.endswith(self._local_suffix):
                    local[user_id] = member(user_id, name)
        return _RoomPushState(local, joined, names, old.power_state, old.notification_levels,
                              old.room_name, old.room_alias)

    def _room_push_state(self, local: dict[str, Member], joined: frozenset[str], names: dict[str, str],
                         state: dict[tuple[str, str], Event]) -> _RoomPushState:
        power_state = {k: state[k] for k in (("m.room.create", ""), ("m.room.power_levels", "")) if k in state}
        levels_content = state[("m.room.power_levels", "")].content if ("m.room.power_levels", "") in state else {}
        notification_keys = {"room"}
        if isinstance(levels_content.get("notifications"), dict):
            notification_keys.update(k for k in levels_content["notifications"] if isinstance(k, str))
        name_event, alias_event = state.get(("m.room.name", "")), state.get(("m.room.canonical_alias", ""))
        return _RoomPushState(
            local_members=local,
            joined=joined,
            display_names=names,
            power_state=power_state,
            notification_levels={k: power_levels.notification_level(k, power_state) for k in notification_keys},
            room_name=_str(name_event.content.get("name")) if name_event else None,
            room_alias=_str(alias_event.content.get("alias")) if alias_event else None,
        )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
