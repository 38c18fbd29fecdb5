"""Power levels as the auth rules read them.

https://spec.matrix.org/v1.19/client-server-api/#mroompower_levels: with no m.room.power_levels
event the creator has 100 and everyone else 0, and state_default is 50 either way (as the
event schema says and Synapse does). v1-v9 accept integers written as strings ("stringy" levels,
https://spec.matrix.org/v1.19/rooms/v1/#authorization-rules); v10 requires integers.
v12: room creators have an infinite power level
(https://spec.matrix.org/v1.19/rooms/v12/#authorization-rules).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from homeserver.core.events import Event

StateMap = Mapping[tuple[str, str], Event]
INFINITE = math.inf
_STRINGY_INT = re.compile(r"^\s*[+-]?[0-9]+\s*$")


def as_int(value: Any, *, stringy: bool) -> int | None:
    """An integer power level, or None when the value is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if stringy and isinstance(value, str) and _STRINGY_INT.match(value):
        return int(value)
    return None


def _stringy(state: StateMap) -> bool:
    create = state.get(("m.room.create", ""))
    return create is None or not create.room_version.auth.enforce_int_power_levels


def creators(state: StateMap) -> frozenset[str]:
    """The room's creators: the create event's sender (or content.creator before v11),
    plus content.additional_creators in v12."""
    create = state.get(("m.room.create", ""))
    if create is None:
        return frozenset()
    rules = create.room_version.auth
    if rules.implicit_room_creator:
        found = {create.sender}
    else:
        creator = create.content.get("creator")
        found = {creator} if isinstance(creator, str) else set()
    if rules.privileged_room_creators:
        extra = create.content.get("additional_creators")
        if isinstance(extra, list):
            found.update(u for u in extra if isinstance(u, str))
    return frozenset(found)


def _content(state: StateMap) -> dict[str, Any] | None:
    event = state.get(("m.room.power_levels", ""))
    return event.content if event is not None else None


def user_power_level(user_id: str, state: StateMap) -> float:
    create = state.get(("m.room.create", ""))
    if create is not None and create.room_version.auth.privileged_room_creators and user_id in creators(state):
        return INFINITE
    content = _content(state)
    if content is None:
        return 100 if user_id in creators(state) else 0
    stringy = _stringy(state)
    users = content.get("users")
    if isinstance(users, dict) and user_id in users:
        level = as_int(users[user_id], stringy=stringy)
        if level is not None:
            return level
    default = as_int(content.get("users_default", 0), stringy=stringy)
    return default if default is not None else 0


def _named_level(state: StateMap, key: str, default_with_event: int, default_without: int) -> int:
    content = _content(state)
    if content is None:
        return default_without
    level = as_int(content.get(key, default_with_event), stringy=_stringy(state))
    return level if level is not None else default_with_event


def invite_level(state: StateMap) -> int:
    return _named_level(state, "invite", 0, 0)


def kick_level(state: StateMap) -> int:
    return _named_level(state, "kick", 50, 50)


def ban_level(state: StateMap) -> int:
    return _named_level(state, "ban", 50, 50)


def redact_level(state: StateMap) -> int:
    return _named_level(state, "redact", 50, 50)


def event_power_level(event_type: str, state_key: str | None, state: StateMap) -> int:
    """The level needed to send an event of this type (state or not)."""
    content = _content(state)
    stringy = _stringy(state)
    if content is not None:
        events = content.get("events")
        if isinstance(events, dict) and event_type in events:
            level = as_int(events[event_type], stringy=stringy)
            if level is not None:
                return level
    if state_key is not None:
        return _named_level(state, "state_default", 50, 50)
    return _named_level(state, "events_default", 0, 0)


def notification_level(key: str, state: StateMap) -> int:
    content = _content(state) or {}
    notifications = content.get("notifications")
    if isinstance(notifications, dict) and key in notifications:
        level = as_int(notifications[key], stringy=_stringy(state))
        if level is not None:
            return level
    return 50
