"""State resolution: merging the room states of forked histories.

v1 (room v1): https://spec.matrix.org/v1.19/rooms/v1/#state-resolution
v2 (rooms v2-v11): https://spec.matrix.org/v1.19/rooms/v2/#state-resolution
v2.1 (room v12): https://spec.matrix.org/v1.19/rooms/v12/#state-resolution

Pure: the caller passes every event the algorithm may touch (the state sets' events and
their auth chains) in `event_map`, so a large resolution can run in a thread unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.core.events import Event
from homeserver.core.room_versions import RoomVersion, StateResAlgorithm
from homeserver.core.state_res import v1, v2

StateMap = Mapping[tuple[str, str], str]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Event],
    auth_chains: Sequence[frozenset[str]],
    rejected: frozenset[str] = frozenset(),
) -> dict[tuple[str, str], str]:
    """The resolved state of `state_sets`. `rejected`: events rejected on their auth chain."""
    if not state_sets:
        return {}
    if len(state_sets) == 1:
        return dict(state_sets[0])
    if room_version.state_res is StateResAlgorithm.V1:
        return v1.resolve(state_sets, event_map)
    return v2.resolve(room_version, state_sets, event_map, auth_chains, rejected,
                      start_empty=room_version.state_res is StateResAlgorithm.V2_1)


def split_conflicts(state_sets: Sequence[StateMap]) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], set[str]]]:
    """(unconflicted state map, conflicted keys -> their event IDs)."""
    unconflicted: dict[tuple[str, str], str] = {}
    conflicted: dict[tuple[str, str], set[str]] = {}
    keys = set().union(*(s.keys() for s in state_sets))
    for key in keys:
        values = {s.get(key) for s in state_sets}
        if len(values) == 1 and None not in values:
            unconflicted[key] = values.pop()
        else:
            conflicted[key] = {v for v in values if v is not None}
    return unconflicted, conflicted
