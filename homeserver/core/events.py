"""Events: the frozen Event, PDU parsing per event format, and event IDs.

Formats: https://spec.matrix.org/v1.19/rooms/v1/#event-format (V1: event_id inside the PDU,
prev/auth events as [id, hashes] pairs), v3 (IDs are reference hashes), v4 (URL-safe
base64), v12 (the create event has no room_id; the room ID is derived from its ID).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from unpaddedbase64 import encode_base64

from homeserver.core.canonical_json import NonCanonicalJSON, encode_canonical_json, encode_canonical_json_strict
from homeserver.core.hashing import compute_reference_hash
from homeserver.core.ids import is_valid_user_id
from homeserver.core.room_versions import EventFormat, RoomVersion

# https://spec.matrix.org/v1.19/server-server-api/#size-limits
MAX_PDU_BYTES = 65536
MAX_FIELD_BYTES = 255


# https://spec.matrix.org/v1.19/client-server-api/#stripped-state: the state that lets a user
# recognise a room before joining it (shown with invites and knocks, sent with them to peers).
STRIPPED_STATE_TYPES = ("m.room.create", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.join_rules",
                        "m.room.canonical_alias", "m.room.encryption")


class InvalidEvent(ValueError):
    """A PDU that does not have the shape its room version requires."""


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    content: dict[str, Any]
    origin_server_ts: int
    depth: int
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    redacts: str | None
    room_version: RoomVersion
    pdu: dict[str, Any]
    unsigned: dict[str, Any] = field(default_factory=dict)

    @property
    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_key_tuple(self) -> tuple[str, str]:
        assert self.state_key is not None
        return (self.type, self.state_key)

    @property
    def membership(self) -> str | None:
        if self.type != "m.room.member":
            return None
        value = self.content.get("membership")
        return value if isinstance(value, str) else None


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    fmt = room_version.event_format
    if fmt is EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise InvalidEvent("event_id is required in this room version")
        return event_id
    digest = compute_reference_hash(pdu, room_version)
    return "$" + encode_base64(digest, urlsafe=fmt is not EventFormat.V2)


def room_id_for_create_event(create_event_id: str) -> str:
    """v12: the room ID is the create event's ID with the sigil '!'."""
    return "!" + create_event_id[1:]


def _string(pdu: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = pdu.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"'{key}' must be a string")
    if len(value.encode()) > MAX_FIELD_BYTES:
        raise InvalidEvent(f"'{key}' is longer than {MAX_FIELD_BYTES} bytes")
    return value


def _integer(pdu: dict[str, Any], key: str) -> int:
    value = pdu.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"'{key}' must be an integer")
    return value


def _event_refs(value: Any, key: str, fmt: EventFormat) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidEvent(f"'{key}' must be a list")
    ids = []
    for item in value:
        if fmt is EventFormat.V1:
            # [event_id, {"sha256": hash}]
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict)):
                raise InvalidEvent(f"'{key}' entries must be [event_id, hashes] pairs")
            ids.append(item[0])
        else:
            if not isinstance(item, str):
                raise InvalidEvent(f"'{key}' entries must be event IDs")
            ids.append(item)
    return tuple(ids)


def parse_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> Event:
    """Validate a PDU's shape for its room version and return the Event (ID computed)."""
    if not isinstance(pdu, dict):
        raise InvalidEvent("a PDU must be a JSON object")
    unsigned = pdu.get("unsigned") if isinstance(pdu.get("unsigned"), dict) else {}
    pdu = {k: v for k, v in pdu.items() if k != "unsigned"}
    try:
        strict = room_version.auth.strict_canonical_json
        size = len(encode_canonical_json_strict(pdu) if strict else encode_canonical_json(pdu))
    except NonCanonicalJSON as err:
        raise InvalidEvent(str(err)) from None
    except (TypeError, ValueError) as err:
        raise InvalidEvent(f"not encodable as canonical JSON: {err}") from None
    if size > MAX_PDU_BYTES:
        raise InvalidEvent(f"PDU is {size} bytes; the limit is {MAX_PDU_BYTES}")
    fmt = room_version.event_format
    event_type = _string(pdu, "type")
    sender = _string(pdu, "sender")
    if not is_valid_user_id(sender):
        raise InvalidEvent("'sender' must be a user ID")
    state_key = _string(pdu, "state_key", required=False)
    content = pdu.get("content")
    if not isinstance(content, dict):
        raise InvalidEvent("'content' must be an object")
    origin_server_ts = _integer(pdu, "origin_server_ts")
    depth = _integer(pdu, "depth")
    if depth < 0:
        raise InvalidEvent("'depth' must not be negative")
    prev = _event_refs(pdu.get("prev_events"), "prev_events", fmt)
    auth = _event_refs(pdu.get("auth_events"), "auth_events", fmt)
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise InvalidEvent("'hashes.sha256' must be a string")
    if not isinstance(pdu.get("signatures"), dict):
        raise InvalidEvent("'signatures' must be an object")
    event_id = compute_event_id(pdu, room_version)
    room_id = pdu.get("room_id")
    if room_id is None and fmt is EventFormat.V4 and event_type == "m.room.create":
        room_id = room_id_for_create_event(event_id)
    if not isinstance(room_id, str):
        raise InvalidEvent("'room_id' must be a string")
    redacts = pdu.get("redacts")
    if room_version.redaction.v11_rules and event_type == "m.room.redaction":
        redacts = content.get("redacts", redacts)
    if redacts is not None and not isinstance(redacts, str):
        raise InvalidEvent("'redacts' must be an event ID")
    return Event(
        event_id=event_id, room_id=room_id, type=event_type, state_key=state_key, sender=sender,
        content=content, origin_server_ts=origin_server_ts, depth=depth, prev_event_ids=prev,
        auth_event_ids=auth, redacts=redacts, room_version=room_version, pdu=pdu, unsigned=unsigned,
    )


def stored_event(pdu: dict[str, Any], room_version: RoomVersion, event_id: str) -> Event:
    """The Event of a PDU this server stored under `event_id`: parse_pdu checked its shape and
    computed that ID when it came in (or the builder made it), so neither is done again.
    Re-deriving the ID (canonical JSON and SHA-256 of the redacted event) and re-checking the
    JSON was most of the cost of loading stored events, as state resolution does by thousands."""
    unsigned = pdu.get("unsigned")
    if unsigned is not None:
        pdu = {k: v for k, v in pdu.items() if k != "unsigned"}
    fmt = room_version.event_format
    event_type = pdu["type"]
    content = pdu["content"]
    room_id = pdu.get("room_id")
    if room_id is None and fmt is EventFormat.V4 and event_type == "m.room.create":
        room_id = room_id_for_create_event(event_id)
    redacts = pdu.get("redacts")
    if room_version.redaction.v11_rules and event_type == "m.room.redaction":
        redacts = content.get("redacts", redacts)
    return Event(
        event_id=event_id, room_id=room_id, type=event_type, state_key=pdu.get("state_key"), sender=pdu["sender"],
        content=content, origin_server_ts=pdu["origin_server_ts"], depth=pdu["depth"],
        prev_event_ids=_event_refs(pdu["prev_events"], "prev_events", fmt),
        auth_event_ids=_event_refs(pdu["auth_events"], "auth_events", fmt), redacts=redacts,
        room_version=room_version, pdu=pdu, unsigned=unsigned if isinstance(unsigned, dict) else {},
    )


def make_event(room_version: RoomVersion, **fields: Any) -> Event:
    """An unsigned event for tests and algorithms: fills defaults, computes the ID.

    fields: type, sender, content, state_key, room_id, prev_events, auth_events, depth,
    origin_server_ts, redacts, event_id (format V1 only).
    """
    pdu: dict[str, Any] = {
        "type": fields.get("type", "m.room.message"),
        "sender": fields.get("sender", "@alice:example.org"),
        "content": fields.get("content", {}),
        "depth": fields.get("depth", 1),
        "origin_server_ts": fields.get("origin_server_ts", 0),
        "hashes": {"sha256": "AAAA"},
        "signatures": {},
    }
    if "room_id" in fields:
        if fields["room_id"] is not None:
            pdu["room_id"] = fields["room_id"]
    elif not (room_version.event_format is EventFormat.V4 and pdu["type"] == "m.room.create"):
        pdu["room_id"] = "!room:example.org"
    if fields.get("state_key") is not None:
        pdu["state_key"] = fields["state_key"]
    if fields.get("redacts") is not None:
        pdu["redacts"] = fields["redacts"]
    prev, auth = list(fields.get("prev_events", [])), list(fields.get("auth_events", []))
    if room_version.event_format is EventFormat.V1:
        seed = encode_canonical_json([pdu["type"], pdu["sender"], pdu.get("state_key"), prev, pdu["depth"], pdu["content"]])
        pdu["event_id"] = fields.get("event_id", f"${hashlib.sha256(seed).hexdigest()[:20]}:example.org")
        pdu["prev_events"] = [[e, {"sha256": "AAAA"}] for e in prev]
        pdu["auth_events"] = [[e, {"sha256": "AAAA"}] for e in auth]
    else:
        pdu["prev_events"] = prev
        pdu["auth_events"] = auth
    return parse_pdu(pdu, room_version)
