"""Simplified sliding sync (MSC4186): the rooms a client asks for, and what changed in them.

A client keeps a *connection* (per user, device and `conn_id`) and sends each request with the
`pos` of the last response it processed. The server keeps, per connection and per response,
which rooms it has sent and at which room-event position (with the room config the client's
copy was built with), so the next response carries only rooms with news since then, rooms
new to the connection whole (`initial`), and rooms whose config grew. Connection state lives
in memory, bounded; a `pos` the server no longer knows is M_UNKNOWN_POS and the client starts
over. Lists are the user's rooms ordered by their latest event, filtered, then cut to ranges.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.services.auth import Requester
from homeserver.services.clock import Clock
from homeserver.services.ephemeral.account_data import AccountDataService
from homeserver.services.ephemeral.presence import PresenceService
from homeserver.services.ephemeral.receipts import ReceiptService
from homeserver.services.ephemeral.typing import TypingService
from homeserver.services.push.notifications import total_counts
from homeserver.services.streams.aux import AuxStream
from homeserver.services.streams.notifier import Notifier
from homeserver.services.streams.tracker import StreamTracker
from homeserver.services.sync.sliding_extensions import ExtensionPositions, SlidingExtensions, Window
from homeserver.services.sync.sliding_filters import FilterFacts, gather_facts, passes
from homeserver.services.sync.sliding_request import (
    UNKNOWN_POS,
    Pos,
    RoomConfig,
    SlidingList,
    SlidingSyncRequest,
)
from homeserver.services.sync.sliding_rooms import BuiltRoom, RoomPlan, SlidingRoomBuilder
from homeserver.services.sync.sync import MAX_TIMEOUT_MS, SET_PRESENCE_VALUES, SyncService
from storage.sync import SlidingRoomRow, SyncQueries

# Events that move a room's `bump_stamp` (what clients sort their room list by), as Synapse.
BUMP_EVENT_TYPES = ["m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite",
                    "m.poll.start", "m.beacon_info", "org.matrix.msc3381.poll.start",
                    "org.matrix.msc3672.beacon_info"]
MAX_CONNECTIONS = 10_000
# Responses remembered per connection: the client may retry with any pos it was given.
MAX_GENERATIONS = 10


@dataclass(frozen=True)
class RoomSent:
    """A room as the client of a connection has it: up to `position` of the room-event
    stream, as of membership `membership_event_id`, built with `config`."""
    position: int
    membership_event_id: str
    config: RoomConfig


@dataclass
class ConnectionState:
    """What a connection's client has after one response."""
    rooms: dict[str, RoomSent] = field(default_factory=dict)
    members_sent: dict[str, dict[str, str]] = field(default_factory=dict)  # room -> user -> member event
    extensions: ExtensionPositions = field(default_factory=ExtensionPositions)

    def copy(self) -> ConnectionState:
        # Inner member maps are replaced, never mutated, so sharing them is safe.
        return ConnectionState(dict(self.rooms), dict(self.members_sent), self.extensions.copy())


ConnectionKey = tuple[str, str, str]  # (user_id, device_id, conn_id)


class Connections:
    """Connection states by generation, in memory: the least recently used connections are
    forgotten first. Generations are unique in the process and start from the clock, so a
    `pos` from before a restart never names a state of the new process."""

    def __init__(self, clock: Clock, max_connections: int = MAX_CONNECTIONS) -> None:
        self._connections: OrderedDict[ConnectionKey, OrderedDict[int, ConnectionState]] = OrderedDict()
        self._max = max_connections
        self._generations = itertools.count(clock.now_ms() * 1000)

    def start(self, key: ConnectionKey) -> None:
        """A request without `pos` starts the connection over."""
        self._connections.pop(key, None)

    def resume(self, key: ConnectionKey, generation: int) -> ConnectionState:
        states = self._connections.get(key)
        if states is None or generation not in states:
            raise MatrixError(400, UNKNOWN_POS, "Unknown pos")
        self._connections.move_to_end(key)
        # The client processed that response: the others are from before it, or never reached it.
        for other in [g for g in states if g != generation]:
            del states[other]
        return states[generation]

    def save(self, key: ConnectionKey, state: ConnectionState) -> int:
        states = self._connections.setdefault(key, OrderedDict())
        self._connections.move_to_end(key)
        generation = next(self._generations)
        states[generation] = state
        while len(states) > MAX_GENERATIONS:
            states.popitem(last=False)
        while len(self._connections) > self._max:
            self._connections.popitem(last=False)
        return generation


class SlidingSyncService:
    def __init__(self, queries: SyncQueries, rooms: SlidingRoomBuilder, extensions: SlidingExtensions,
                 stream: StreamTracker, aux: AuxStream, typing: TypingService, notifier: Notifier,
                 account_data: AccountDataService, receipts: ReceiptService, presence: PresenceService,
                 sync: SyncService, clock: Clock) -> None:
        self._queries = queries
        self._rooms = rooms
        self._extensions = extensions
        self._stream = stream
        self._aux = aux
        self._typing = typing
        self._notifier = notifier
        self._account_data = account_data
        self._receipts = receipts
        self._presence = presence
        self._sync = sync  # its unread_counts callable, wired by the app
        self.connections = Connections(clock)

    async def sync(self, requester: Requester, body: dict[str, Any], *, pos: str | None, timeout_ms: int | None,
                   set_presence: str | None) -> dict[str, Any]:
        """POST .../org.matrix.simplified_msc3575/sync. `pos`, `timeout` and `set_presence` come
        from the query string, or else from the body (the later MSC form)."""
        request = SlidingSyncRequest.from_json(body)
        pos = pos if pos is not None else _optional_str(body, "pos")
        set_presence = set_presence if set_presence is not None else _optional_str(body, "set_presence")
        if set_presence is not None and set_presence not in SET_PRESENCE_VALUES:
            raise MatrixError(400, Codes.INVALID_PARAM, "'set_presence' must be online, offline or unavailable")
        if timeout_ms is None:
            timeout_ms = body.get("timeout", 0)
            if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
                raise MatrixError(400, Codes.INVALID_PARAM, "'timeout' must be a non-negative integer")
        key = (requester.user_id, requester.device_id, request.conn_id)
        since = Pos.parse(pos) if pos is not None else None
        if since is None:
            self.connections.start(key)
            previous = None
        else:
            previous = self.connections.resume(key, since.generation)
        if not requester.is_guest:
            await self._presence.on_sync(requester.user_id, set_presence)

        deadline = time.monotonic() + min(timeout_ms, MAX_TIMEOUT_MS) / 1000
        while True:
            upto = self._current()
            if since is not None:
                # Positions from the future (a restored database) count as now.
                since = Pos(min(since.events, upto.events), min(since.aux, upto.aux), since.typing, since.generation)
            response, state, news = await self._build(requester, request, previous, since, upto)
            remaining = deadline - time.monotonic()
            if news or since is None or remaining <= 0:
                break
            future = self._notifier.register(requester.user_id)
            if self._current() != upto:  # something landed while we were building
                self._notifier.notify_users([requester.user_id])
            await self._notifier.wait(requester.user_id, future, remaining)
            if time.monotonic() >= deadline and self._current() == upto:
                break
        generation = self.connections.save(key, state)
        response["pos"] = str(replace(upto, generation=generation))
        return response

    def _current(self) -> Pos:
        return Pos(self._stream.current, self._aux.current, self._typing.serial, 0)

    async def _build(self, requester: Requester, request: SlidingSyncRequest, previous: ConnectionState | None,
                     since: Pos | None, upto: Pos) -> tuple[dict[str, Any], ConnectionState, bool]:
        """One response from `previous` up to `upto`; the connection state after it; whether it
        has news (else a long-poll keeps waiting)."""
        user_id = requester.user_id
        previous = previous or ConnectionState()
        rooms = {r.room_id: r for r in await self._queries.sliding_sync_rooms(user_id, upto.events, BUMP_EVENT_TYPES)
                 if not (r.forgotten and r.membership in ("leave", "ban"))}
        ignored = await self._account_data.ignored_users(user_id)
        dm_rooms = await self._dm_rooms(user_id)

        listed = sorted((r for r in rooms.values() if _listed(r, user_id, previous, ignored)),
                        key=lambda r: (-r.last_activity, r.room_id))
        facts = await gather_facts(self._queries, self._account_data, user_id,
                                   (lst.filters for lst in request.lists.values()), listed, rooms, dm_rooms)
        lists_out, list_rooms, configs = _cut_lists(request.lists, listed, facts)
        # Subscriptions: any room the user is or was in, or is invited to (others are ignored).
        subscribed = [r for r in request.subscriptions if r in rooms and not _hidden_invite(rooms[r], ignored)]
        for room_id in subscribed:
            config = request.subscriptions[room_id]
            configs[room_id] = configs[room_id].combine(config) if room_id in configs else config

        # Rooms joined with a partial state whose full state came in since: sent whole again,
        # as new to the connection, unless lazy-loading members (as v2 /sync, and Synapse,
        # which lists such rooms only once their state is whole).
        whole_again: set[str] = set()
        full_state_arrived = self._sync.full_state_arrived
        if since is not None and full_state_arrived is not None:
            eager = [r for r, c in configs.items() if r in previous.rooms and rooms[r].membership == "join"
                     and not c.required_state.lazy_members]
            whole_again = await full_state_arrived(eager, since.events, upto.events) if eager else set()
        plans = [plan for room_id, config in configs.items()
                 if (plan := self._plan(rooms[room_id], config,
                                        None if room_id in whole_again else previous.rooms.get(room_id),
                                        room_id in dm_rooms))]
        if since is not None and self._sync.unread_counts is not None:
            # Reading a room elsewhere changes its counts without any new event: resend it.
            planned = {plan.room.room_id for plan in plans}
            quiet = [r for r in configs if r not in planned and rooms[r].membership == "join"]
            for room_id in await self._read_by(user_id, quiet, since.aux, upto.aux):
                sent = previous.rooms[room_id]
                plans.append(RoomPlan(rooms[room_id], configs[room_id], sent.position, sent.config,
                                      is_dm=room_id in dm_rooms))
        built = await self._rooms.build(requester, plans, upto.events, since.events if since else None,
                                        previous.members_sent, ignored)
        await self._add_unread_counts(user_id, rooms, built)

        state = previous.copy()
        for plan in plans:
            room = plan.room
            sent = built[room.room_id]
            limit = plan.config.timeline_limit
            if plan.since is not None and not sent.limited and not plan.expand_timeline and plan.previous:
                # A gapless update: the client still has the deeper timeline it had before.
                limit = max(limit, plan.previous.timeline_limit)
            state.rooms[room.room_id] = RoomSent(upto.events, room.event_id, replace(plan.config, timeline_limit=limit))
            state.members_sent[room.room_id] = sent.members_sent
        for room_id in configs.keys() - built.keys():
            # Nothing new there: the client's copy is current as of `upto`.
            state.rooms[room_id] = replace(state.rooms[room_id], position=upto.events)

        window = Window(list_rooms, subscribed, rooms, since.events if since else None, since.aux if since else None,
                        since.typing if since else None, upto.events, upto.aux, upto.typing)
        extensions, extension_news = await self._extensions.build(requester, request.extensions, window, built,
                                                                  state.extensions)
        response: dict[str, Any] = {}
        if lists_out:
            response["lists"] = lists_out
        response["rooms"] = {room_id: room.body for room_id, room in built.items()}
        response["extensions"] = extensions
        return response, state, bool(built) or extension_news

    @staticmethod
    def _plan(room: SlidingRoomRow, config: RoomConfig, sent: RoomSent | None, is_dm: bool) -> RoomPlan | None:
        """What to send of a room in the window, or None when the client's copy is current."""
        rejoined = sent is not None and sent.membership_event_id != room.event_id and \
            room.membership in ("join", "invite", "knock")
        if sent is None or rejoined:
            return RoomPlan(room, config, None, None, is_dm=is_dm)
        # Invites and knocks have no timeline to expand.
        expand_timeline = config.timeline_limit > sent.config.timeline_limit and \
            room.membership not in ("invite", "knock")
        state_grew = not sent.config.required_state.covers(config.required_state)
        if room.last_activity > sent.position or expand_timeline or state_grew:
            return RoomPlan(room, config, sent.position, sent.config, expand_timeline, is_dm)
        return None

    async def _dm_rooms(self, user_id: str) -> set[str]:
        """Rooms named in the user's m.direct account data."""
        content = await self._account_data.get(user_id, "", "m.direct") or {}
        return {room_id for rooms in content.values() if isinstance(rooms, list)
                for room_id in rooms if isinstance(room_id, str)}

    async def _read_by(self, user_id: str, room_ids: list[str], since_aux: int, upto_aux: int) -> list[str]:
        """The rooms where the user's own read receipt moved in (since, upto]."""
        if not room_ids or since_aux == upto_aux:
            return []
        found = await self._receipts.ephemeral_events(user_id, room_ids, since_aux, upto_aux)
        return [room_id for room_id, event in found.items()
                if any(user_id in users for by_type in event["content"].values() for users in by_type.values())]

    async def _add_unread_counts(self, user_id: str, rooms: dict[str, SlidingRoomRow],
                                 built: dict[str, BuiltRoom]) -> None:
        joined = [r for r in built if rooms[r].membership == "join"]
        counts: dict[str, Any] = {}
        if self._sync.unread_counts is not None and joined:
            counts = await self._sync.unread_counts(user_id, joined)
        for room_id, room in built.items():
            found = counts.get(room_id)
            total = total_counts(found) if found is not None else {"notification_count": 0, "highlight_count": 0}
            room.body["notification_count"], room.body["highlight_count"] = (total["notification_count"],
                                                                              total["highlight_count"])


def _cut_lists(lists: dict[str, SlidingList], listed: list[SlidingRoomRow], facts: FilterFacts
               ) -> tuple[dict[str, Any], dict[str, list[str]], dict[str, RoomConfig]]:
    """Each list: the user's rooms (newest activity first) that pass its filters, cut to its
    ranges. Returns the `lists` response, each list's rooms in range, and each such room's
    config (combined over the lists it is in)."""
    lists_out: dict[str, Any] = {}
    list_rooms: dict[str, list[str]] = {}
    configs: dict[str, RoomConfig] = {}
    for name, lst in lists.items():
        matching = [r.room_id for r in listed if passes(r, lst.filters, facts)]
        ranges = lst.ranges if lst.ranges is not None else ((0, max(len(matching) - 1, 0)),)
        ops = [{"op": "SYNC", "range": [start, end], "room_ids": matching[start:end + 1]} for start, end in ranges]
        lists_out[name] = {"count": len(matching), "ops": ops}
        list_rooms[name] = list(dict.fromkeys(room_id for op in ops for room_id in op["room_ids"]))
        for room_id in list_rooms[name]:
            configs[room_id] = configs[room_id].combine(lst.config) if room_id in configs else lst.config
    return lists_out, list_rooms, configs


def _listed(room: SlidingRoomRow, user_id: str, previous: ConnectionState, ignored: frozenset[str]) -> bool:
    """Whether a room belongs in the user's lists (MSC4186 "Lists"): rooms they are in, are
    invited to, knocked on, or were kicked or banned from; rooms they left themselves only
    when this connection has them already (so it learns they left)."""
    if room.membership in ("join", "knock", "ban"):
        return True
    if room.membership == "invite":
        return not _hidden_invite(room, ignored)
    return room.sender != user_id or room.room_id in previous.rooms


def _hidden_invite(room: SlidingRoomRow, ignored: frozenset[str]) -> bool:
    # Spec (ignoring users): invites from ignored users are not shown.
    return room.membership == "invite" and room.sender in ignored


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a string")
    return value
