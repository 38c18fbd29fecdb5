"""Validation of client filters (https://spec.matrix.org/v1.19/client-server-api/#filtering).

A filter's shape is checked when it is uploaded or given inline, so that a stored filter is
always usable; a bad one is refused with the key that is wrong.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from homeserver.core.ids import is_valid_room_id, is_valid_user_id


class InvalidFilter(ValueError):
    """A filter that does not have the spec's shape."""


_LISTS = ("types", "not_types", "senders", "not_senders", "rooms", "not_rooms")
# Lists whose entries must be IDs: a filter naming "not_a_room_id" is a client's mistake worth
# a 400 (as Synapse's filter schema), not a filter that silently matches nothing.
_ID_CHECKS = {"senders": is_valid_user_id, "not_senders": is_valid_user_id,
              "rooms": is_valid_room_id, "not_rooms": is_valid_room_id}


def _string_list(value: dict[str, Any], key: str, where: str) -> None:
    if key not in value:
        return
    items = value[key]
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise InvalidFilter(f"{where}.{key} must be a list of strings")
    check = _ID_CHECKS.get(key)
    if check is not None and not all(check(v) for v in items):
        raise InvalidFilter(f"{where}.{key} must list {'user' if 'senders' in key else 'room'} IDs")


def _event_filter(value: Any, where: str, *, room_event: bool = False) -> None:
    if not isinstance(value, dict):
        raise InvalidFilter(f"{where} must be an object")
    for key in _LISTS:
        _string_list(value, key, where)
    if "limit" in value and (isinstance(value["limit"], bool) or not isinstance(value["limit"], int) or value["limit"] < 0):
        raise InvalidFilter(f"{where}.limit must be a non-negative integer")
    if room_event:
        for key in ("lazy_load_members", "include_redundant_members", "contains_url", "unread_thread_notifications"):
            if key in value and not isinstance(value[key], bool):
                raise InvalidFilter(f"{where}.{key} must be a boolean")


def validate_filter(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidFilter("a filter must be a JSON object")
    if "event_fields" in value and (not isinstance(value["event_fields"], list)
                                    or not all(isinstance(f, str) for f in value["event_fields"])):
        raise InvalidFilter("event_fields must be a list of strings")
    if value.get("event_format", "client") not in ("client", "federation"):
        raise InvalidFilter("event_format must be 'client' or 'federation'")
    for key in ("presence", "account_data"):
        if key in value:
            _event_filter(value[key], key)
    room = value.get("room", {})
    if not isinstance(room, dict):
        raise InvalidFilter("room must be an object")
    for key in ("rooms", "not_rooms"):
        _string_list(room, key, "room")
    for key in ("include_leave",):
        if key in room and not isinstance(room[key], bool):
            raise InvalidFilter(f"room.{key} must be a boolean")
    for key in ("timeline", "state", "ephemeral", "account_data"):
        if key in room:
            _event_filter(room[key], f"room.{key}", room_event=True)
    return value


# --- applying filters ---------------------------------------------------------------------------

def _type_matches(pattern: str, value: str) -> bool:
    """Filter type patterns may end or contain `*` wildcards (spec: "A '*' can be used as a wildcard")."""
    if "*" not in pattern:
        return pattern == value
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


@dataclass(frozen=True)
class EventFilter:
    """One EventFilter/RoomEventFilter of a client filter, ready to apply."""

    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: frozenset[str] | None = None
    not_senders: frozenset[str] = frozenset()
    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    contains_url: bool | None = None
    limit: int | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> EventFilter:
        value = value or {}
        return cls(
            types=tuple(value["types"]) if "types" in value else None,
            not_types=tuple(value.get("not_types", ())),
            senders=frozenset(value["senders"]) if "senders" in value else None,
            not_senders=frozenset(value.get("not_senders", ())),
            rooms=frozenset(value["rooms"]) if "rooms" in value else None,
            not_rooms=frozenset(value.get("not_rooms", ())),
            contains_url=value.get("contains_url"),
            limit=value.get("limit"),
            lazy_load_members=value.get("lazy_load_members", False),
            include_redundant_members=value.get("include_redundant_members", False),
            unread_thread_notifications=value.get("unread_thread_notifications", False),
        )

    def allows_room(self, room_id: str) -> bool:
        return room_id not in self.not_rooms and (self.rooms is None or room_id in self.rooms)

    @property
    def filters_events(self) -> bool:
        """Whether `matches` can refuse an event (beyond its room)."""
        return bool(self.types is not None or self.not_types or self.senders is not None or self.not_senders
                    or self.contains_url is not None)

    def matches(self, event_type: str, sender: str | None, content: Any = None, room_id: str | None = None) -> bool:
        if any(_type_matches(p, event_type) for p in self.not_types):
            return False
        if self.types is not None and not any(_type_matches(p, event_type) for p in self.types):
            return False
        if sender is not None and (sender in self.not_senders or (self.senders is not None and sender not in self.senders)):
            return False
        if room_id is not None and not self.allows_room(room_id):
            return False
        if self.contains_url is not None:
            has_url = isinstance(content, dict) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True


@dataclass(frozen=True)
class SyncFilter:
    """A whole client filter as /sync applies it."""

    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    room_account_data: EventFilter = field(default_factory=EventFilter)
    presence: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    include_leave: bool = False
    event_fields: tuple[str, ...] | None = None
    event_format: str = "client"

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> SyncFilter:
        value = value or {}
        room = value.get("room", {})
        return cls(
            timeline=EventFilter.from_json(room.get("timeline")),
            state=EventFilter.from_json(room.get("state")),
            ephemeral=EventFilter.from_json(room.get("ephemeral")),
            room_account_data=EventFilter.from_json(room.get("account_data")),
            presence=EventFilter.from_json(value.get("presence")),
            account_data=EventFilter.from_json(value.get("account_data")),
            rooms=frozenset(room["rooms"]) if "rooms" in room else None,
            not_rooms=frozenset(room.get("not_rooms", ())),
            include_leave=room.get("include_leave", False),
            event_fields=tuple(value["event_fields"]) if "event_fields" in value else None,
            event_format=value.get("event_format", "client"),
        )

    def allows_room(self, room_id: str) -> bool:
        return room_id not in self.not_rooms and (self.rooms is None or room_id in self.rooms)


# A /sync without a filter: everything (shared: a SyncFilter is immutable).
NO_FILTER = SyncFilter.from_json(None)


def _split_field(path: str) -> list[str]:
    """`content.m\\.relates_to` -> ["content", "m.relates_to"]: `\\.` escapes a dot."""
    parts, current, escaped = [], [], False
    for char in path:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def only_fields(event: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The event reduced to the listed (dotted) fields, as `event_fields` asks."""
    out: dict[str, Any] = {}
    for path in fields:
        keys = _split_field(path)
        source: Any = event
        for key in keys:
            if not isinstance(source, dict) or key not in source:
                break
            source = source[key]
        else:
            target = out
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = copy.deepcopy(source)
    return out
