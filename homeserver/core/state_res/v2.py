"""State resolution v2 (rooms v2-v11) and v2.1 (room v12), numbered as the spec's algorithm.

https://spec.matrix.org/v1.19/rooms/v2/#algorithm ; v2.1 differences
(https://spec.matrix.org/v1.19/rooms/v12/#state-resolution): the conflicted state subgraph
joins the full conflicted set, and step 2's iterative auth checks start from an empty map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.core.auth_rules import AuthError, check
from homeserver.core.builder import auth_types_for_new_event
from homeserver.core.events import Event
from homeserver.core.room_versions import RoomVersion
from homeserver.core.state_res.sorting import mainline_sort, reverse_topological_power_sort

StateMap = Mapping[tuple[str, str], str]


def is_power_event(event: Event) -> bool:
    """Power events might remove someone's ability to do something (spec: Definitions)."""
    if event.state_key is None:
        return False
    if event.type in ("m.room.power_levels", "m.room.join_rules"):
        return True
    return event.type == "m.room.member" and event.membership in ("leave", "ban") and event.sender != event.state_key


def resolve(
    room_version: RoomVersion, state_sets: Sequence[StateMap], event_map: Mapping[str, Event],
    auth_chains: Sequence[frozenset[str]], rejected: frozenset[str], *, start_empty: bool,
    auth_difference: frozenset[str] | None = None,
    split: tuple[dict[tuple[str, str], str], dict[tuple[str, str], set[str]]] | None = None,
) -> dict[tuple[str, str], str]:
    from homeserver.core.state_res import split_conflicts

    unconflicted, conflicted = split or split_conflicts(state_sets)
    if not conflicted:
        return unconflicted
    conflicted_ids = set().union(*conflicted.values())
    if auth_difference is None:
        # Auth difference: what is not in every state set's auth chain.
        auth_difference = frozenset(set().union(*auth_chains) - set.intersection(*(set(c) for c in auth_chains))
                                    if auth_chains else ())
    full_conflicted = conflicted_ids | auth_difference
    if start_empty:
        full_conflicted |= conflicted_subgraph(conflicted_ids, event_map)
    full_conflicted = {e for e in full_conflicted if e in event_map and e not in rejected}

    # 1. Power events of the full conflicted set, with their auth chains within it.
    power = {e for e in full_conflicted if is_power_event(event_map[e])}
    selected = set(power)
    for event_id in power:
        selected |= _auth_chain_within(event_id, event_map, full_conflicted)
    power_order = reverse_topological_power_sort(selected, event_map)

    # 2. Iterative auth checks from the unconflicted map (v2) or an empty map (v2.1).
    partial = iterative_auth_checks({} if start_empty else dict(unconflicted), power_order, event_map, rejected)

    # 3. The other events, by mainline ordering on the partially resolved power levels.
    others = [e for e in full_conflicted if e not in selected]
    ordered = mainline_sort(others, partial.get(("m.room.power_levels", "")), event_map)

    # 4. Iterative auth checks on the partially resolved state.
    resolved = iterative_auth_checks(partial, ordered, event_map, rejected)

    # 5. The unconflicted state map wins.
    resolved.update(unconflicted)
    return resolved


def iterative_auth_checks(
    state: dict[tuple[str, str], str], ordered: Sequence[str], event_map: Mapping[str, Event], rejected: frozenset[str],
) -> dict[tuple[str, str], str]:
    """Apply each state event allowed by the auth rules against the state so far; keys the
    rules need but the state lacks come from the event's own (non-rejected) auth events."""
    state = dict(state)
    for event_id in ordered:
        event = event_map[event_id]
        if event.state_key is None:
            continue
        auth_state: dict[tuple[str, str], Event] = {}
        for auth_id in event.auth_event_ids:
            auth = event_map.get(auth_id)
            if auth is not None and auth.state_key is not None and auth_id not in rejected:
                auth_state[(auth.type, auth.state_key)] = auth
        if not event.room_version.auth.create_event_in_auth_events:
            create = event_map.get("$" + event.room_id[1:])
            if create is not None:
                auth_state[("m.room.create", "")] = create
        needed = auth_types_for_new_event(event.room_version, event.type, event.sender, event.state_key, event.content)
        for key in [*needed, ("m.room.create", "")]:
            if key in state and state[key] in event_map:
                auth_state[key] = event_map[state[key]]
        try:
            check(event, auth_state)
        except AuthError:
            continue
        state[(event.type, event.state_key)] = event_id
    return state


def conflicted_subgraph(conflicted: set[str], event_map: Mapping[str, Event]) -> set[str]:
    """v2.1: every event on an auth-events path between two conflicted events (endpoints included)."""
    # Events reachable from a conflicted event by following auth_events (the conflicted ones too).
    below: set[str] = set()
    stack = [e for e in conflicted if e in event_map]
    while stack:
        event_id = stack.pop()
        if event_id in below:
            continue
        below.add(event_id)
        stack.extend(a for a in event_map[event_id].auth_event_ids if a in event_map and a not in below)
    # Of those, the ones from which a conflicted event can be reached (memoised DFS, iterative).
    reaches: dict[str, bool] = {}
    for start in below:
        if start in reaches:
            continue
        path = [(start, iter(event_map[start].auth_event_ids))]
        found = {start: start in conflicted}
        while path:
            node, children = path[-1]
            advanced = False
            for child in children:
                if child not in event_map or child not in below:
                    continue
                if child in reaches:
                    found[node] = found[node] or reaches[child]
                    continue
                if child in found:  # on the current path (cannot happen in a DAG)
                    continue
                found[child] = child in conflicted
                path.append((child, iter(event_map[child].auth_event_ids)))
                advanced = True
                break
            if not advanced:
                path.pop()
                reaches[node] = found[node]
                if path:
                    parent = path[-1][0]
                    found[parent] = found[parent] or found[node]
    return {e for e in below if reaches.get(e)} | (conflicted & set(event_map))


def _auth_chain_within(event_id: str, event_map: Mapping[str, Event], within: set[str]) -> set[str]:
    """The event's auth chain, kept to the events of `within` (walking through the others too)."""
    out: set[str] = set()
    seen: set[str] = set()
    stack = list(event_map[event_id].auth_event_ids)
    while stack:
        current = stack.pop()
        if current in seen or current not in event_map:
            continue
        seen.add(current)
        if current in within:
            out.add(current)
        stack.extend(event_map[current].auth_event_ids)
    return out
