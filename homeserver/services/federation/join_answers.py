"""The answer of send_join, as the resident server: the state before the join and its auth
chain (spec, server-server API: "Joining Rooms"), or with MSC3706's `omit_members` the state
without the room's members (the joining server fetches them later), and the servers in the
room before the join. The join itself goes through FederationMembership.send_membership.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.core.events import Event
from homeserver.core.ids import server_name_of
from storage.event_graph import EventGraphQueries
from storage.events import EventStore
from storage.state import StateStore

# The room summary's heroes (storage.sync.SyncQueries.heroes): room -> [(user_id, event_id)].
Heroes = Callable[[list[str], str, int], Awaitable[dict[str, list[tuple[str, str]]]]]
# As many heroes as /sync's room summary gives (spec: m.heroes, "up to 5").
MAX_HEROES = 5


class JoinAnswers:
    def __init__(self, event_store: EventStore, state_store: StateStore, graph: EventGraphQueries,
                 joined_servers: Callable[[str], Awaitable[set[str]]], server_name: str, *,
                 heroes: Heroes | None = None) -> None:
        self._event_store = event_store
        self._state = state_store
        self._graph = graph
        self._joined_servers = joined_servers
        self.server_name = server_name
        self._heroes = heroes

    async def answer(self, room_id: str, event: Event, *, omit_members: bool = False) -> dict[str, Any]:
        """The send_join answer: the state before the join and its auth chain.

        With `omit_members` (MSC3706, the joining server will fetch the full state later) the
        state leaves out the m.room.member events except the joiner's own and, in a room with
        neither name nor canonical alias, the heroes' (which the joiner needs to name it); the
        auth chain is that of what is returned and of the join, without events already in the
        state. `servers_in_room` lists the servers with joined members before the join."""
        row = await self._event_store.get_event(event.event_id)
        full_state = await self._state.state_ids(row.state_before) if row and row.state_before is not None else {}
        state = await self._partial_state(room_id, event, full_state) if omit_members else full_state
        chain = await self._graph.auth_chain_ids(room_id, list(state.values()) + [event.event_id])
        if omit_members:
            chain -= set(state.values())
        rows = await self._event_store.get_events(list(state.values()) + sorted(chain))
        # Oldest first: a joining server that takes the chain in order (sytest's does) ends with
        # the newest of each state key.
        ordered_chain = sorted((rows[e] for e in chain if e in rows), key=lambda r: (r.depth, r.event_id))
        return {
            "origin": self.server_name,
            "state": [rows[e].pdu for e in state.values() if e in rows],
            "auth_chain": [r.pdu for r in ordered_chain],
            "event": event.pdu,
            "members_omitted": omit_members,
            "servers_in_room": sorted(await self._servers_before_join(room_id, event, full_state)),
        }

    async def _partial_state(self, room_id: str, event: Event,
                             state: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        kept = {key: e for key, e in state.items() if key[0] != "m.room.member" or key[1] == event.state_key}
        if self._heroes is not None and ("m.room.name", "") not in state \
                and ("m.room.canonical_alias", "") not in state:
            # The heroes as the room summary of /sync picks them (spec: omit_members), from the
            # current state as Synapse does; their member events as of the state before the join.
            heroes = (await self._heroes([room_id], event.state_key, MAX_HEROES)).get(room_id, [])
            for user_id, _ in heroes:
                if ("m.room.member", user_id) in state:
                    kept[("m.room.member", user_id)] = state[("m.room.member", user_id)]
        return kept

    async def _servers_before_join(self, room_id: str, event: Event, state: dict[tuple[str, str], str]) -> set[str]:
        """The servers with joined members before `event`: those of the room now (the join is
        already in), less the joiner's unless another of its users was joined already."""
        servers = await self._joined_servers(room_id) | {self.server_name}
        origin = server_name_of(event.sender)
        if origin == self.server_name:
            return servers
        # Only the joiner's server's other members are looked at: usually none.
        others = [e for (kind, key), e in state.items()
                  if kind == "m.room.member" and key != event.state_key and server_name_of(key) == origin]
        rows = await self._event_store.get_events(others) if others else {}
        if not any(r.pdu.get("content", {}).get("membership") == "join" for r in rows.values()):
            servers.discard(origin)
        return servers
