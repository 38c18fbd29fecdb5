"""Validation of client filters (https://spec.matrix.org/v1.19/client-server-api/#filtering).

A filter's shape is checked when it is uploaded or given inline, so that a stored filter is
always usable; a bad one is refused with the key that is wrong.
"""

from __future__ import annotations

from typing import Any


class InvalidFilter(ValueError):
    """A filter that does not have the spec's shape."""


_LISTS = ("types", "not_types", "senders", "not_senders", "rooms", "not_rooms")


def _event_filter(value: Any, where: str, *, room_event: bool = False) -> None:
    if not isinstance(value, dict):
        raise InvalidFilter(f"{where} must be an object")
    for key in _LISTS:
        if key in value and (not isinstance(value[key], list) or not all(isinstance(v, str) for v in value[key])):
            raise InvalidFilter(f"{where}.{key} must be a list of strings")
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
        if key in room and (not isinstance(room[key], list) or not all(isinstance(r, str) for r in room[key])):
            raise InvalidFilter(f"room.{key} must be a list of strings")
    for key in ("include_leave",):
        if key in room and not isinstance(room[key], bool):
            raise InvalidFilter(f"room.{key} must be a boolean")
    for key in ("timeline", "state", "ephemeral", "account_data"):
        if key in room:
            _event_filter(room[key], f"room.{key}", room_event=True)
    return value
