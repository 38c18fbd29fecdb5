"""Sliding sync requests (MSC4186): the validated body, room configs, required_state, `pos`.

The body is the shape Synapse serves at the unstable endpoint and Element X sends: lists with
`ranges`, `required_state` as [type, state_key] pairs (`*` wildcards, `$LAZY`, `$ME`),
`filters` with `is_invite`. The later MSC revisions are accepted too where they are plain
renames (`range`, `is_invited`, `required_state` as {include, exclude, lazy_members}).
Anything malformed is a 400 (M_BAD_JSON for a wrong shape, M_INVALID_PARAM for a bad value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.core.ids import is_valid_room_id
from homeserver.errors import Codes, MatrixError

UNKNOWN_POS = "M_UNKNOWN_POS"
MAX_LISTS = 100
MAX_LIST_KEY_LENGTH = 64
MAX_SUBSCRIPTIONS = 100
MAX_TIMELINE_LIMIT = 1000
WILDCARD = "*"
LAZY = "$LAZY"
ME = "$ME"
MEMBER = "m.room.member"

StateKey = tuple[str, str]


def _bad(message: str) -> MatrixError:
    return MatrixError(400, Codes.BAD_JSON, message)


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, message)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"'{where}' must be an object")
    return value


def _or_empty(body: dict[str, Any], key: str) -> Any:
    """An optional object field: absent or null reads as {} (any other value is checked)."""
    value = body.get(key)
    return {} if value is None else value


def _optional_bool(body: dict[str, Any], key: str, where: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"'{where}.{key}' must be a boolean")
    return value


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{where}' must be an integer")
    if value < minimum:
        raise _invalid(f"'{where}' must be at least {minimum}")
    return value


def _strings(value: Any, where: str, *, nullable_items: bool = False) -> list[Any]:
    if not isinstance(value, list) or not all(
            isinstance(v, str) or (nullable_items and v is None) for v in value):
        raise _bad(f"'{where}' must be a list of strings")
    return value


# --- required_state ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequiredState:
    """Which state entries a room's response carries: (type, state_key) patterns where `*`
    matches anything and `$ME` is the requester; `lazy_members` adds the member events of
    the timeline's senders and targets."""
    include: frozenset[StateKey] = frozenset()
    exclude: frozenset[StateKey] = frozenset()
    lazy_members: bool = False

    @classmethod
    def from_json(cls, value: Any, where: str) -> RequiredState:
        if isinstance(value, dict):  # the later MSC form
            include = cls._elements(value.get("include", []), f"{where}.include")
            exclude = cls._elements(value.get("exclude", []), f"{where}.exclude")
            lazy = _optional_bool(value, "lazy_members", where) or False
            return cls(frozenset(include), frozenset(exclude), lazy)
        if not isinstance(value, list):
            raise _bad(f"'{where}' must be a list of [type, state_key] pairs")
        pairs: set[StateKey] = set()
        lazy = False
        for pair in value:
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(p, str) for p in pair)):
                raise _bad(f"'{where}' must be a list of [type, state_key] pairs")
            if pair[1] == LAZY:
                lazy = lazy or pair[0] == MEMBER  # $LAZY means nothing for other types
            else:
                pairs.add((pair[0], pair[1]))
        return cls(frozenset(pairs), frozenset(), lazy)

    @staticmethod
    def _elements(value: Any, where: str) -> list[StateKey]:
        if not isinstance(value, list):
            raise _bad(f"'{where}' must be a list")
        out = []
        for element in value:
            element = _object(element, where)
            event_type, state_key = element.get("type", WILDCARD), element.get("state_key", WILDCARD)
            if not isinstance(event_type, str) or not isinstance(state_key, str):
                raise _bad(f"'{where}' entries must have string 'type' and 'state_key'")
            out.append((event_type, state_key))
        return out

    def matches(self, key: StateKey, me: str) -> bool:
        return self._any(self.include, key, me) and not self._any(self.exclude, key, me)

    @staticmethod
    def _any(patterns: frozenset[StateKey], key: StateKey, me: str) -> bool:
        event_type, state_key = key
        for pattern_type, pattern_key in patterns:
            if pattern_type not in (WILDCARD, event_type):
                continue
            if pattern_key in (WILDCARD, state_key) or (pattern_key == ME and state_key == me):
                return True
        return False

    def union(self, other: RequiredState) -> RequiredState:
        # An exclusion survives only where both configs exclude: the union is a superset.
        return RequiredState(self.include | other.include, self.exclude & other.exclude,
                             self.lazy_members or other.lazy_members)

    def covers(self, other: RequiredState) -> bool:
        """Whether everything `other` asks for is asked for here too (patterns, not state)."""
        if other.lazy_members and not self.lazy_members:
            return False
        if not self.exclude <= other.exclude:
            return False
        for pattern_type, pattern_key in other.include:
            if not any(t in (WILDCARD, pattern_type) and k in (WILDCARD, pattern_key) for t, k in self.include):
                return False
        return True


@dataclass(frozen=True)
class RoomConfig:
    """What a room's response carries: `timeline_limit` events and the `required_state`."""
    timeline_limit: int
    required_state: RequiredState

    @classmethod
    def from_json(cls, body: Any, where: str) -> RoomConfig:
        body = _object(body, where)
        if "timeline_limit" not in body:
            raise _bad(f"'{where}.timeline_limit' is required")
        limit = min(_int(body["timeline_limit"], f"{where}.timeline_limit"), MAX_TIMELINE_LIMIT)
        if "required_state" not in body:
            raise _bad(f"'{where}.required_state' is required")
        return cls(limit, RequiredState.from_json(body["required_state"], f"{where}.required_state"))

    def combine(self, other: RoomConfig) -> RoomConfig:
        """The superset of two configs (a room that matches several lists or subscriptions)."""
        return RoomConfig(max(self.timeline_limit, other.timeline_limit),
                          self.required_state.union(other.required_state))


# --- lists -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListFilters:
    """Every set field must hold (AND); within a list-valued field any entry may match (OR)."""
    is_dm: bool | None = None
    is_encrypted: bool | None = None
    is_invite: bool | None = None
    room_types: tuple[str | None, ...] | None = None
    not_room_types: tuple[str | None, ...] = ()
    spaces: tuple[str, ...] | None = None  # children (m.space.child) of these joined spaces
    tags: tuple[str, ...] | None = None  # rooms with any of these m.tag tags
    not_tags: tuple[str, ...] = ()  # rooms with none of these
    room_name_like: str | None = None  # case-insensitive substring of m.room.name

    @classmethod
    def from_json(cls, body: Any, where: str) -> ListFilters:
        body = _object(body, where)
        invite = _optional_bool(body, "is_invite", where)
        if invite is None:
            invite = _optional_bool(body, "is_invited", where)

        def strings(key: str, nullable_items: bool = False) -> tuple[Any, ...] | None:
            value = body.get(key)
            return None if value is None else tuple(_strings(value, f"{where}.{key}", nullable_items=nullable_items))

        name_like = body.get("room_name_like")
        if name_like is not None and not isinstance(name_like, str):
            raise _bad(f"'{where}.room_name_like' must be a string")
        return cls(
            is_dm=_optional_bool(body, "is_dm", where),
            is_encrypted=_optional_bool(body, "is_encrypted", where),
            is_invite=invite,
            room_types=strings("room_types", nullable_items=True),
            not_room_types=strings("not_room_types", nullable_items=True) or (),
            spaces=strings("spaces"),
            tags=strings("tags"),
            not_tags=strings("not_tags") or (),
            room_name_like=name_like,
        )

    @property
    def needs_room_kinds(self) -> bool:
        return (self.is_encrypted is not None or self.room_types is not None or bool(self.not_room_types)
                or self.room_name_like is not None)

    @property
    def needs_tags(self) -> bool:
        return self.tags is not None or bool(self.not_tags)


@dataclass(frozen=True)
class SlidingList:
    ranges: tuple[tuple[int, int], ...] | None  # None: the whole filtered list
    config: RoomConfig
    filters: ListFilters

    @classmethod
    def from_json(cls, body: Any, where: str) -> SlidingList:
        body = _object(body, where)
        ranges = body.get("ranges")
        if ranges is None and body.get("range") is not None:
            ranges = [body["range"]]
        parsed = None
        if ranges is not None:
            if not isinstance(ranges, list):
                raise _bad(f"'{where}.ranges' must be a list of [start, end] pairs")
            parsed = []
            for pair in ranges:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise _bad(f"'{where}.ranges' must be a list of [start, end] pairs")
                start, end = _int(pair[0], f"{where}.ranges"), _int(pair[1], f"{where}.ranges")
                if start > end:
                    raise _invalid(f"'{where}.ranges': start {start} is after end {end}")
                parsed.append((start, end))
            parsed = tuple(parsed)
        filters = ListFilters.from_json(_or_empty(body, "filters"), f"{where}.filters")
        return cls(parsed, RoomConfig.from_json(body, where), filters)


# --- extensions ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExtensionScope:
    """An extension switched on, for the rooms of some lists and subscriptions (`*`: all)."""
    lists: tuple[str, ...] = (WILDCARD,)
    rooms: tuple[str, ...] = (WILDCARD,)

    @classmethod
    def from_json(cls, body: dict[str, Any], where: str) -> ExtensionScope:
        scope = {}
        for key in ("lists", "rooms"):
            if key in body:  # an explicit null selects nothing
                value = body[key]
                scope[key] = () if value is None else tuple(_strings(value, f"{where}.{key}"))
        return cls(**scope)


@dataclass(frozen=True)
class ToDeviceRequest:
    since: int | None  # the `next_batch` the client processed: messages up to it are acknowledged
    limit: int  # checked, but the batch size is the server's (ToDeviceService: 100)


@dataclass(frozen=True)
class Extensions:
    to_device: ToDeviceRequest | None = None
    e2ee: bool = False
    account_data: ExtensionScope | None = None
    receipts: ExtensionScope | None = None
    typing: ExtensionScope | None = None

    @classmethod
    def from_json(cls, body: Any) -> Extensions:
        body = _object(body, "extensions")
        enabled: dict[str, dict[str, Any]] = {}
        for name in ("to_device", "e2ee", "account_data", "receipts", "typing"):
            if body.get(name) is None:
                continue
            config = _object(body[name], f"extensions.{name}")
            if _optional_bool(config, "enabled", f"extensions.{name}"):
                enabled[name] = config
        to_device = None
        if "to_device" in enabled:
            config = enabled["to_device"]
            since = config.get("since")
            if since is not None and (not isinstance(since, str) or not since.isdigit()):
                raise _invalid("'extensions.to_device.since' must be a next_batch token")
            limit = _int(config.get("limit", 100), "extensions.to_device.limit", minimum=1)
            to_device = ToDeviceRequest(int(since) if since is not None else None, limit)
        scopes = {name: ExtensionScope.from_json(enabled[name], f"extensions.{name}")
                  for name in ("account_data", "receipts", "typing") if name in enabled}
        return cls(to_device=to_device, e2ee="e2ee" in enabled, **scopes)


# --- the request ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlidingSyncRequest:
    conn_id: str = ""
    lists: dict[str, SlidingList] = field(default_factory=dict)
    subscriptions: dict[str, RoomConfig] = field(default_factory=dict)
    extensions: Extensions = Extensions()

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SlidingSyncRequest:
        conn_id = body.get("conn_id")
        if conn_id is not None and not isinstance(conn_id, str):
            raise _bad("'conn_id' must be a string")
        lists = _object(_or_empty(body, "lists"), "lists")
        if len(lists) > MAX_LISTS:
            raise _invalid(f"At most {MAX_LISTS} lists")
        for key in lists:
            if len(key) > MAX_LIST_KEY_LENGTH:
                raise _invalid(f"List keys must be at most {MAX_LIST_KEY_LENGTH} characters")
        subscriptions = _object(_or_empty(body, "room_subscriptions"), "room_subscriptions")
        if len(subscriptions) > MAX_SUBSCRIPTIONS:
            raise _invalid(f"At most {MAX_SUBSCRIPTIONS} room subscriptions")
        for room_id in subscriptions:
            if not is_valid_room_id(room_id):
                raise _invalid(f"Invalid room ID in room_subscriptions: {room_id!r}")
        return cls(
            conn_id=conn_id or "",
            lists={key: SlidingList.from_json(value, f"lists.{key}") for key, value in lists.items()},
            subscriptions={room_id: RoomConfig.from_json(value, f"room_subscriptions.{room_id}")
                           for room_id, value in subscriptions.items()},
            extensions=Extensions.from_json(_or_empty(body, "extensions")),
        )


# --- pos ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pos:
    """`s{events}_{aux}_{typing}_{generation}`: the stream positions the response covered (as
    in a /sync token, so /messages takes it as a `from`), and the connection state it left."""
    events: int
    aux: int
    typing: int
    generation: int

    def __str__(self) -> str:
        return f"s{self.events}_{self.aux}_{self.typing}_{self.generation}"

    @classmethod
    def parse(cls, token: str) -> Pos:
        parts = token[1:].split("_") if token.startswith("s") else []
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            # The client restarts its connection on M_UNKNOWN_POS, which is all it can do here.
            raise MatrixError(400, UNKNOWN_POS, "Unknown pos")
        return cls(*(int(p) for p in parts))
