"""Building this server's own events: a complete, hashed, signed PDU per room version.

The caller (a service) chooses prev_events, auth_events and depth from the room's state; this
module lays the PDU out in the room version's event format, adds the content hash
(https://spec.matrix.org/v1.19/server-server-api/#calculating-the-content-hash-for-an-event),
signs the redacted form (https://spec.matrix.org/v1.19/server-server-api/#signing-events)
and derives the event ID (and, for a v12 create event, the room ID).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.events import Event, parse_pdu
from homeserver.core.hashing import compute_content_hash
from homeserver.core.room_versions import EventFormat, RoomVersion
from homeserver.core.signing import sign_event

# https://spec.matrix.org/v1.19/rooms/v1/#event-format: depth is capped to the largest
# integer canonical JSON allows.
MAX_DEPTH = 2**53 - 1
# https://spec.matrix.org/v1.19/client-server-api/#size-limits: 65536 bytes of canonical JSON.
MAX_EVENT_BYTES = 65536


class EventTooLarge(ValueError):
    """The event would exceed the spec's size limit."""


def auth_types_for_new_event(
    room_version: RoomVersion, event_type: str, sender: str, state_key: str | None, content: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """The state keys whose current events become the new event's auth_events.

    https://spec.matrix.org/v1.19/server-server-api/#auth-events-selection
    """
    if event_type == "m.room.create":
        return []
    keys: list[tuple[str, str]] = []
    # The create event is selected in v1-v11; v12 implies it by the room ID.
    if room_version.auth.create_event_in_auth_events:
        keys.append(("m.room.create", ""))
    keys += [("m.room.power_levels", ""), ("m.room.member", sender)]
    if event_type == "m.room.member" and state_key is not None:
        keys.append(("m.room.member", state_key))
        membership = content.get("membership")
        if membership in ("join", "invite", "knock"):
            keys.append(("m.room.join_rules", ""))
        third_party = content.get("third_party_invite")
        if membership == "invite" and isinstance(third_party, dict):
            token = (third_party.get("signed") or {}).get("token")
            if isinstance(token, str):
                keys.append(("m.room.third_party_invite", token))
        via = content.get("join_authorised_via_users_server")
        if membership == "join" and isinstance(via, str) and room_version.auth.restricted_join_rule:
            keys.append(("m.room.member", via))
    # No duplicates (the sender may be the target).
    return list(dict.fromkeys(keys))


def build_event(
    room_version: RoomVersion,
    *,
    room_id: str | None,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None,
    prev_events: Sequence[str],
    auth_events: Sequence[str],
    depth: int,
    origin_server_ts: int,
    server_name: str,
    signing_key: Any,
    redacts: str | None = None,
    hashes_of: Mapping[str, Mapping[str, str]] | None = None,
) -> Event:
    """A new signed event. `hashes_of` gives the referenced events' hashes (format V1 only).

    `room_id` is None only for a v12 create event, whose room ID derives from its own ID.
    """
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "depth": min(depth, MAX_DEPTH),
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        # v11 moved `redacts` into content; servers also read the top-level key there.
        if room_version.redaction.v11_rules:
            pdu["content"] = {**content, "redacts": redacts}
        pdu["redacts"] = redacts
    if not room_version.redaction.v11_rules:
        pdu["origin"] = server_name  # dropped from the format in v11
    if room_version.event_format is EventFormat.V1:
        hashes_of = hashes_of or {}
        pdu["event_id"] = f"${_random_localpart()}:{server_name}"
        pdu["prev_events"] = [[e, dict(hashes_of.get(e, {}))] for e in prev_events]
        pdu["auth_events"] = [[e, dict(hashes_of.get(e, {}))] for e in auth_events]
    else:
        pdu["prev_events"] = list(prev_events)
        pdu["auth_events"] = list(auth_events)
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    pdu = sign_event(pdu, server_name, signing_key, room_version)
    size = len(encode_canonical_json(pdu))
    if size > MAX_EVENT_BYTES:
        raise EventTooLarge(f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}")
    if room_id is None:
        if not room_version.auth.room_id_from_create_event or event_type != "m.room.create":
            raise ValueError("only a v12 create event may be built without a room ID")
    return parse_pdu(pdu, room_version)


def _random_localpart() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(18))


def complete_event(room_version: RoomVersion, template: Mapping[str, Any], *, server_name: str, signing_key: Any,
                   origin_server_ts: int) -> Event:
    """Finish an event another server laid out for us (make_join, make_leave, make_knock):
    our timestamp, its content hash, our signature and, in format V1, an event ID of ours.

    https://spec.matrix.org/v1.19/server-server-api/#joining-rooms: the joining server fills in
    the template and signs it. Keys the template should not carry (hashes, signatures,
    unsigned) are dropped first. Raises InvalidEvent when the result is not a valid event.
    """
    pdu = {k: v for k, v in template.items() if k not in ("hashes", "signatures", "unsigned", "event_id")}
    pdu["origin_server_ts"] = origin_server_ts
    if not room_version.redaction.v11_rules:
        pdu["origin"] = server_name
    else:
        pdu.pop("origin", None)
    if room_version.event_format is EventFormat.V1:
        pdu["event_id"] = f"${_random_localpart()}:{server_name}"
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    pdu = sign_event(pdu, server_name, signing_key, room_version)
    return parse_pdu(pdu, room_version)


def template_of(event: Event) -> dict[str, Any]:
    """The unsigned layout of an event, as make_join/make_leave/make_knock answer it: everything
    but its hashes and signatures (the requesting server fills those in)."""
    return {k: v for k, v in event.pdu.items() if k not in ("hashes", "signatures", "unsigned")}
