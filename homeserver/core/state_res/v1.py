"""State resolution v1 (room version 1), numbered as the spec describes its passes.

https://spec.matrix.org/v1.19/rooms/v1/#state-resolution. Known to reset state in some
forks (the reason v2 exists); implemented for room v1 compatibility.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from homeserver.core.auth_rules import AuthError, check
from homeserver.core.events import Event

StateMap = Mapping[tuple[str, str], str]


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode()).hexdigest()


def resolve(state_sets: Sequence[StateMap], event_map: Mapping[str, Event]) -> dict[tuple[str, str], str]:
    from homeserver.core.state_res import split_conflicts

    unconflicted, conflicted = split_conflicts(state_sets)
    resolved: dict[tuple[str, str], str] = dict(unconflicted)

    def state_events() -> dict[tuple[str, str], Event]:
        return {k: event_map[v] for k, v in resolved.items() if v in event_map}

    def resolve_auth_key(key: tuple[str, str]) -> None:
        # Ascending depth, then descending sha1(event_id); take the first, then each next one
        # while it passes auth in R; stop at the first that does not.
        events = sorted((event_map[e] for e in conflicted[key] if e in event_map),
                        key=lambda ev: (ev.depth, _neg_sha1(ev.event_id)))
        if not events:
            return
        resolved[key] = events[0].event_id
        for event in events[1:]:
            try:
                check(event, state_events())
            except AuthError:
                break
            resolved[key] = event.event_id

    # 1. m.room.power_levels, then 2. m.room.join_rules, then 3. m.room.member conflicts.
    for event_type in ("m.room.power_levels", "m.room.join_rules", "m.room.member"):
        for key in sorted(k for k in conflicted if k[0] == event_type):
            resolve_auth_key(key)

    # 4. Every other conflict: the highest depth, lowest sha1(event_id) event passing auth in R.
    for key in sorted(k for k in conflicted if k[0] not in ("m.room.power_levels", "m.room.join_rules", "m.room.member")):
        events = sorted((event_map[e] for e in conflicted[key] if e in event_map),
                        key=lambda ev: (-ev.depth, _sha1(ev.event_id)))
        chosen = None
        for event in events:
            try:
                check(event, state_events())
            except AuthError:
                continue
            chosen = event
            break
        if chosen is None and events:
            chosen = events[-1]  # none passes: keep the shallowest, so the key is never lost
        if chosen is not None:
            resolved[key] = chosen.event_id
    return resolved


def _neg_sha1(event_id: str) -> tuple[int, ...]:
    """A sort key that orders sha1 digests descending."""
    return tuple(-b for b in hashlib.sha1(event_id.encode()).digest())
