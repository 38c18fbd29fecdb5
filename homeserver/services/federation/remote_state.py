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
from collections.abc import Mapping, Sequence

from homeserver.core.events import Event
from homeserver.core.room_versions import RoomVersion
from homeserver.core.state_res import resolve_state
from homeserver.services.rooms.state import EventCache
from storage.events import EventGraphQueries, NewStateGroup
from storage.state import StateStore

StateIds = dict[tuple[str, str], str]

# A snapshot is stored as a delta while its parent chain is shorter than this (as local sends).
FULL_SNAPSHOT_EVERY = 50
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
        distinct = []
        for state in state_sets:
            if not any(state == seen for seen in distinct):
                distinct.append(state)
        if len(distinct) <= 1:
            return dict(distinct[0]) if distinct else {}
        chains: list[frozenset[str]] = []
        wanted: set[str] = set()
        for state in distinct:
            ids = list(state.values())
            chain = await self._graph.auth_chain_ids(room_id, [i for i in ids if i not in extra_events])
            for event_id in ids:
                if event_id in extra_events:
                    chain |= set(extra_events[event_id].auth_event_ids)
            chain |= await self._graph.auth_chain_ids(
                room_id, [a for e in ids if e in extra_events for a in extra_events[e].auth_event_ids])
            chains.append(frozenset(chain))
            wanted |= chain | set(ids)
        event_map = dict(extra_events)
        event_map.update(await self._cache.get_many([e for e in wanted if e not in event_map], version))
        rejected = frozenset(await self._graph.rejected_among(list(wanted)))
        if len(event_map) > THREAD_RESOLUTION_ABOVE:
            return await asyncio.to_thread(resolve_state, version, distinct, event_map, chains, rejected)
        return resolve_state(version, distinct, event_map, chains, rejected)


def plan_group(group_id: int, state: Mapping[tuple[str, str], str], parent: int | None,
               parent_state: Mapping[tuple[str, str], str] | None, parent_chain: int) -> tuple[NewStateGroup, int]:
    """The snapshot row(s) for `state`: a delta on `parent` when that is possible and the chain
    is short, else a full copy. Returns the group and its chain length."""
    if parent is not None and parent_state is not None and parent_chain + 1 < FULL_SNAPSHOT_EVERY \
            and all(key in state for key in parent_state):
        delta = {k: v for k, v in state.items() if parent_state.get(k) != v}
        return NewStateGroup(group_id, parent, parent_chain + 1, delta), parent_chain + 1
    return NewStateGroup(group_id, None, 0, dict(state)), 0
