"""Room state for events that did not come from this server: snapshots before and after them,
and state resolution over forks.

Use case: a received event's state is the resolved state after its prev events; the room's
current state becomes the resolution of the old current state and the new event's. This
module loads what the pure algorithm needs (the state sets, their events and auth chains),
runs it (in a thread when the input is large), and plans the snapshots to store.

Invariant: a snapshot is stored as a delta on a parent only when it only adds or replaces
entries of the parent; otherwise it is a full copy (deltas cannot remove entries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from homeserver.core.builder import auth_types_for_new_event
from homeserver.core.events import Event
from homeserver.core.room_versions import RoomVersion, StateResAlgorithm
from homeserver.core.state_res import resolve_state, split_conflicts
from homeserver.services.rooms.state import EventCache, delta_chain_limit
from storage.event_graph import EventGraphQueries
from storage.events import NewStateGroup
from storage.state import StateStore

StateIds = dict[tuple[str, str], str]

# Resolutions touching more events than this run in a thread, off the event loop.
THREAD_RESOLUTION_ABOVE = 2000


class RemoteState:
    def __init__(self, state: StateStore, graph: EventGraphQueries, cache: EventCache) -> None:
        self._state = state
        self._graph = graph
        self._cache = cache

    async def state_of_group(self, group: int) -> StateIds:
        return await self._state.state_ids(group)

    async def chain_length(self, group: int) -> int:
        return await self._state.chain_length(group)

    async def resolve(self, room_id: str, version: RoomVersion, state_sets: Sequence[Mapping[tuple[str, str], str]],
                      extra_events: Mapping[str, Event] = {}) -> StateIds:
        """The room version's resolution of `state_sets` of one room (their events must be
        stored, or be in `extra_events`)."""
        distinct: list[Mapping[tuple[str, str], str]] = []
        for state in state_sets:
            if not any(state == seen for seen in distinct):
                distinct.append(state)
        if len(distinct) <= 1:
            return dict(distinct[0]) if distinct else {}
        if version.state_res is StateResAlgorithm.V1:
            return await self._resolve_loading_all(room_id, version, distinct, extra_events)
        # v2/v2.1 read the conflicted events, their auth chains and the auth difference, and of
        # the unconflicted state only the keys the auth checks ask for: so load just those.
        unconflicted, conflicted = split_conflicts(distinct)
        if not conflicted:
            return unconflicted
        conflicted_ids = set().union(*conflicted.values())
        difference = await self._auth_difference(room_id, distinct, conflicted, unconflicted, extra_events)
        event_map = dict(extra_events)
        full = conflicted_ids | difference
        await self._load_with_auth_chains(room_id, version, full, event_map)
        needed = {("m.room.create", ""), ("m.room.power_levels", "")}
        for event_id in full:
            event = event_map.get(event_id)
            if event is not None and event.state_key is not None:
                needed.update(auth_types_for_new_event(version, event.type, event.sender, event.state_key,
                                                       event.content))
        read = [unconflicted[key] for key in needed if key in unconflicted]
        if not version.auth.create_event_in_auth_events:
            read.append("$" + room_id[1:])  # v12: the create event is implied, not an auth event
        await self._load_with_auth_chains(room_id, version, read, event_map)
        rejected = frozenset(await self._graph.rejected_among([e for e in event_map if e not in extra_events]))
        args = (version, distinct, event_map, (), rejected, frozenset(difference), (unconflicted, conflicted))
        if len(event_map) > THREAD_RESOLUTION_ABOVE:
            return await asyncio.to_thread(resolve_state, *args)
        return resolve_state(*args)

    async def _auth_chain(self, room_id: str, event_ids: Iterable[str], extra_events: Mapping[str, Event]) -> set[str]:
        """The auth chain of `event_ids`: stored events' walked in the database, and that of
        the auth events of those in `extra_events` (not stored yet)."""
        event_ids = list(event_ids)
        stored = [i for i in event_ids if i not in extra_events]
        chain = await self._graph.auth_chain_ids(room_id, stored) if stored else set()
        extra_auth = [a for e in event_ids if e in extra_events for a in extra_events[e].auth_event_ids]
        if extra_auth:
            chain |= set(extra_auth) | await self._graph.auth_chain_ids(room_id, extra_auth)
        return chain

    async def _auth_difference(self, room_id: str, state_sets: Sequence[Mapping[tuple[str, str], str]],
                               conflicted: Mapping[tuple[str, str], set[str]], unconflicted: Mapping[tuple[str, str], str],
                               extra_events: Mapping[str, Event]) -> set[str]:
        """The union of the state sets' auth chains minus their intersection, without walking
        the unconflicted state's chain in Python. Set i's chain is AC(U) | C_i, with U the
        unconflicted events (the same in every set) and C_i the chain of set i's conflicted
        events; so the difference is (union C_i - intersection C_i) - AC(U), and of AC(U) only
        whether it holds those few candidates matters: asked of the database, the walk stopping
        at the intersection (an auth chain holds its events' chains: no candidate lies below)."""
        chains = [await self._auth_chain(room_id, (s[k] for k in conflicted if k in s), extra_events)
                  for s in state_sets]
        common = set.intersection(*chains)
        candidates = set().union(*chains) - common
        if not candidates:
            return set()
        roots = list(unconflicted.values())
        stored = [i for i in roots if i not in extra_events]
        below = await self._graph.auth_chain_hits(stored, sorted(candidates), sorted(common)) if stored else set()
        extra_auth = [a for e in roots if e in extra_events for a in extra_events[e].auth_event_ids]
        if extra_auth:
            below |= candidates & set(extra_auth)
            below |= await self._graph.auth_chain_hits(extra_auth, sorted(candidates), sorted(common))
        return candidates - below

    async def _load_with_auth_chains(self, room_id: str, version: RoomVersion, event_ids: Iterable[str],
                                     event_map: dict[str, Event]) -> None:
        """Add `event_ids` and their auth chains to `event_map` (those stored or already in it)."""
        event_ids = set(event_ids)
        wanted = event_ids | await self._auth_chain(room_id, event_ids, event_map)
        event_map.update(await self._cache.get_many([e for e in wanted if e not in event_map], version))

    async def _resolve_loading_all(self, room_id: str, version: RoomVersion,
                                   distinct: Sequence[Mapping[tuple[str, str], str]],
                                   extra_events: Mapping[str, Event]) -> StateIds:
        """Every event of the state sets and their auth chains loaded (v1 reads them all)."""
        chains: list[frozenset[str]] = []
        wanted: set[str] = set()
        for state in distinct:
            chain = await self._auth_chain(room_id, state.values(), extra_events)
            chains.append(frozenset(chain))
            wanted |= chain | set(state.values())
        event_map = dict(extra_events)
        event_map.update(await self._cache.get_many([e for e in wanted if e not in event_map], version))
        rejected = frozenset(await self._graph.rejected_among(list(wanted)))
        if len(event_map) > THREAD_RESOLUTION_ABOVE:
            return await asyncio.to_thread(resolve_state, version, distinct, event_map, chains, rejected)
        return resolve_state(version, distinct, event_map, chains, rejected)


def plan_group(group_id: int, state: Mapping[tuple[str, str], str], parent: int | None,
               parent_state: Mapping[tuple[str, str], str] | None, parent_chain: int) -> tuple[NewStateGroup, int]:
    """The snapshot row(s) for `state`: a delta on `parent` when that is possible and the chain
    is short (as local sends: rooms/state.py delta_chain_limit) and the delta small, else a
    full copy. Returns the group and its chain length.
    The chain length counts the entries of the deltas down to the full copy (at least one per
    delta), so both the groups and the entries a read walks stay under the limit."""
    if parent is not None and parent_state is not None and all(key in state for key in parent_state):
        delta = {k: v for k, v in state.items() if parent_state.get(k) != v}
        chain = parent_chain + max(1, len(delta))
        if chain < delta_chain_limit(len(state)):
            return NewStateGroup(group_id, parent, chain, delta), chain
    return NewStateGroup(group_id, None, 0, dict(state)), 0
