"""Orderings used by state resolution v2/v2.1: reverse topological power ordering and
mainline ordering (https://spec.matrix.org/v1.19/rooms/v2/#definitions)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from homeserver.core import power_levels as pl
from homeserver.core.events import Event


def auth_state_of(event: Event, event_map: Mapping[str, Event]) -> dict[tuple[str, str], Event]:
    """The event's auth events as a state map (plus the create event in v12, implied by the room ID)."""
    state: dict[tuple[str, str], Event] = {}
    for auth_id in event.auth_event_ids:
        auth = event_map.get(auth_id)
        if auth is not None and auth.state_key is not None:
            state[(auth.type, auth.state_key)] = auth
    if not event.room_version.auth.create_event_in_auth_events:
        create = event_map.get("$" + event.room_id[1:])
        if create is not None:
            state[("m.room.create", "")] = create
    return state


def sender_power(event: Event, event_map: Mapping[str, Event]) -> float:
    """The sender's power level "when looking at their auth_events"."""
    return pl.user_power_level(event.sender, auth_state_of(event, event_map))


def reverse_topological_power_sort(events: Iterable[str], event_map: Mapping[str, Event]) -> list[str]:
    """Kahn's algorithm over the auth DAG within `events`, picking the smallest candidate by
    (higher sender power first, then origin_server_ts, then event_id); earliest first."""
    members = set(events)
    depends: dict[str, set[str]] = {}
    dependents: dict[str, set[str]] = {e: set() for e in members}
    for event_id in members:
        parents = {a for a in event_map[event_id].auth_event_ids if a in members}
        depends[event_id] = parents
        for parent in parents:
            dependents[parent].add(event_id)

    def key(event_id: str) -> tuple[float, int, str]:
        event = event_map[event_id]
        return (-sender_power(event, event_map), event.origin_server_ts, event_id)

    remaining = {e: len(p) for e, p in depends.items()}
    heap = [key(e) for e, n in remaining.items() if n == 0]
    heapq.heapify(heap)
    ordered: list[str] = []
    while heap:
        _, _, event_id = heapq.heappop(heap)
        ordered.append(event_id)
        for child in dependents[event_id]:
            remaining[child] -= 1
            if remaining[child] == 0:
                heapq.heappush(heap, key(child))
    if len(ordered) != len(members):  # a cycle: auth events cannot form one in a valid room
        raise ValueError("auth events form a cycle")
    return ordered


def _power_levels_parent(event: Event, event_map: Mapping[str, Event]) -> Event | None:
    for auth_id in event.auth_event_ids:
        auth = event_map.get(auth_id)
        if auth is not None and auth.type == "m.room.power_levels" and auth.state_key == "":
            return auth
    return None


def mainline_sort(events: Iterable[str], power_event_id: str | None, event_map: Mapping[str, Event]) -> list[str]:
    """Order events by their mainline position based on `power_event_id` (earlier mainline
    first; events that reach no mainline event first of all), then origin_server_ts, event_id."""
    mainline: dict[str, int] = {}
    current = event_map.get(power_event_id) if power_event_id else None
    index = 0
    while current is not None:
        mainline[current.event_id] = index
        index += 1
        current = _power_levels_parent(current, event_map)
    infinity = float("inf")
    cache: dict[str, float] = {}

    def position(event: Event) -> float:
        # The smallest j >= 1 whose e_j is on the mainline; its index i there, else infinity.
        seen = []
        current = _power_levels_parent(event, event_map)
        result = infinity
        while current is not None:
            if current.event_id in cache:
                result = cache[current.event_id]
                break
            if current.event_id in mainline:
                result = mainline[current.event_id]
                break
            seen.append(current.event_id)
            current = _power_levels_parent(current, event_map)
        for event_id in seen:
            cache[event_id] = result
        return result

    def key(event_id: str) -> tuple[float, int, str]:
        event = event_map[event_id]
        # A greater position sorts first.
        return (-position(event), event.origin_server_ts, event_id)

    return sorted(events, key=key)
