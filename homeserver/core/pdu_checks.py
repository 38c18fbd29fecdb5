"""Checks on PDUs received from other servers: the pure half of the intake pipeline.

https://spec.matrix.org/v1.19/server-server-api/#checks-performed-on-receipt-of-a-pdu numbers
six checks (seven with policy servers). This module does everything of them that needs no
I/O; the service (homeserver/services/federation/pdu_checks.py) adds the keyring and the room's
stored events:

1. the event is valid for its room version, otherwise it is dropped: `precheck_pdu` runs
   `parse_pdu` (shape, 65536-byte limit, 255-byte fields, strict canonical JSON from v6) and
   the extra bounds below, and computes the event ID;
2. it is signed by the servers that must sign it, otherwise it is dropped: `required_signers`
   says which (the keyring verifies them);
3. its content hash matches, otherwise its redacted copy is used instead: `precheck_pdu`
   compares the hash and keeps the redacted copy ready;
4. it passes the auth rules against its own auth events, otherwise it is rejected:
   `check_against_auth_events`;
5. and 6. it passes them against the state before it (otherwise rejected) and against the
   room's current state (otherwise soft-failed): `check_against_state`, once the caller
   has resolved those states.

Only plain exceptions (events.InvalidEvent) and frozen results; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeserver.core.auth_rules import AuthError, StateMap, check, check_auth_events
from homeserver.core.events import MAX_FIELD_BYTES, Event, InvalidEvent, parse_pdu
from homeserver.core.hashing import check_content_hash
from homeserver.core.ids import (
    is_valid_event_id,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
    server_name_of,
)
from homeserver.core.redaction import redact
from homeserver.core.room_versions import EventFormat, RoomVersion

# Synapse refuses received events citing more than 20 prev_events or 10 auth_events
# (FederationEventHandler._sanity_check_event): more would mean a huge state resolution or a
# cascade of fetches. Not in the spec; we enforce the same bounds so we agree with it.
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
# Depth bounds. pdu_v1.yaml: "Must be less than the maximum value for an integer (2^63 - 1)";
# depth_v6.yaml (v6+, canonical JSON): 2^53 - 1. Negative depths are refused by parse_pdu.
MAX_DEPTH = 2**63 - 1
MAX_DEPTH_V6 = 2**53 - 1
# v12 room IDs are '!' + the create event's reference hash: 32 bytes of URL-safe unpadded
# base64 (https://spec.matrix.org/v1.19/appendices/#room-ids).
_V12_ROOM_ID_LENGTH = 1 + 43
_URLSAFE_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

# The content key naming the user whose server vouches for a restricted join (v8+).
AUTHORISING_USER = "join_authorised_via_users_server"


# --- 1-3: format, signers, content hash -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PduPrecheck:
    """What a received PDU is, before any key is looked up.

    `event` is the PDU as received (event ID computed); `signed_form` is its redacted form with
    its `signatures` — the object every signature covers, whether we were sent the full event
    or a redacted copy; `required_signers` must each have signed it, with a key valid at
    `minimum_valid_until_ts` (the event's origin_server_ts from v5, else 0). When the content
    hash does not match (`content_hash_ok` false), `redacted_event` is the copy to use instead.
    """
    event: Event
    signed_form: dict[str, Any]
    required_signers: tuple[str, ...]
    minimum_valid_until_ts: int
    content_hash_ok: bool
    redacted_event: Event | None

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def event_to_process(self) -> Event:
        """The event the later checks should see: the redacted copy after a hash mismatch."""
        return self.event if self.redacted_event is None else self.redacted_event


def precheck_pdu(pdu: Any, room_version: RoomVersion, *, origin: str | None = None,
                 expected_room_id: str | None = None) -> PduPrecheck:
    """Checks 1 and 3, and the list of signers for check 2. Raises InvalidEvent (drop it).

    `origin` is the server that sent us the PDU (it may stand in for the sender's server on a
    third-party invite, see `required_signers`). `expected_room_id`, when given, is the room
    the PDU must belong to (send_join, backfill, get_missing_events, a /send whose room
    version was looked up by room ID).
    """
    event = check_pdu_format(pdu, room_version)
    if expected_room_id is not None and event.room_id != expected_room_id:
        raise InvalidEvent(f"the event belongs to {event.room_id}, not {expected_room_id}")
    signers = required_signers(event, origin)
    # https://spec.matrix.org/v1.19/server-server-api/#validating-hashes-and-signatures-on-received-events:
    # signatures are checked on the redacted event, so they hold for a redacted copy too.
    signed_form = redact(event.pdu, room_version)
    # Check 3: a hash mismatch means we were given a redacted (or tampered) copy: "the
    # receiving server should use the redacted copy it calculated rather than the full copy".
    hash_ok = check_content_hash(event.pdu)
    redacted_event = None if hash_ok else parse_pdu(signed_form, room_version)
    # https://spec.matrix.org/v1.19/rooms/v5/#signing-key-validity-period: from v5 a key must be
    # valid at the event's origin_server_ts; v1-v4 ignore key validity.
    minimum = event.origin_server_ts if room_version.signatures.enforce_key_validity else 0
    return PduPrecheck(event, signed_form, signers, minimum, hash_ok, redacted_event)


def check_pdu_format(pdu: Any, room_version: RoomVersion) -> Event:
    """Check 1: the PDU is a valid event of its room version; returns it with its ID.

    parse_pdu checks the shape of each field, the 65536-byte limit on the canonical JSON
    (https://spec.matrix.org/v1.19/client-server-api/#size-limits), 255 bytes for type,
    sender and state_key, and strict canonical JSON from v6 (no floats, integers within
    +/-(2^53 - 1): https://spec.matrix.org/v1.19/rooms/v6/#canonical-json). The rest is here.
    """
    if not isinstance(pdu, dict):
        raise InvalidEvent("a PDU must be a JSON object")
    event = parse_pdu(pdu, room_version)
    fmt = room_version.event_format

    # Depth: 0 <= depth <= 2^63 - 1 (v1-v5) or 2^53 - 1 (v6+).
    max_depth = MAX_DEPTH_V6 if room_version.auth.strict_canonical_json else MAX_DEPTH
    if event.depth > max_depth:
        raise InvalidEvent(f"'depth' is above {max_depth}")

    # Synapse's bounds on the DAG an event may pull in.
    if len(event.prev_event_ids) > MAX_PREV_EVENTS:
        raise InvalidEvent(f"{len(event.prev_event_ids)} prev_events; at most {MAX_PREV_EVENTS} are accepted")
    if len(event.auth_event_ids) > MAX_AUTH_EVENTS:
        raise InvalidEvent(f"{len(event.auth_event_ids)} auth_events; at most {MAX_AUTH_EVENTS} are accepted")
    # Every reference is an event ID (https://spec.matrix.org/v1.19/appendices/#event-ids).
    for ref in (*event.prev_event_ids, *event.auth_event_ids):
        if not is_valid_event_id(ref) or (fmt is EventFormat.V1 and server_name_of(ref) is None):
            raise InvalidEvent(f"{ref!r} is not an event ID")

    # The event ID: v1-v2 carry it, `$opaque:server`, within the size limit for event IDs;
    # from v3 it is a hash we computed.
    if fmt is EventFormat.V1:
        domain = server_name_of(event.event_id) if event.event_id.startswith("$") else None
        if not is_valid_event_id(event.event_id) or domain is None or not is_valid_server_name(domain):
            raise InvalidEvent("'event_id' must be $opaque:server in this room version")

    _check_room_id(event, room_version)
    _check_signatures_shape(event.pdu.get("signatures"))
    return event


def _check_room_id(event: Event, room_version: RoomVersion) -> None:
    """https://spec.matrix.org/v1.19/appendices/#room-ids: at most 255 bytes; `!opaque:server`
    before v12, `!` + the create event's URL-safe reference hash from v12 (where the create
    event itself carries none: its room ID was derived by parse_pdu)."""
    room_id = event.room_id
    if not is_valid_room_id(room_id):
        raise InvalidEvent(f"'room_id' must be a room ID of at most {MAX_FIELD_BYTES} bytes")
    if room_version.auth.room_id_from_create_event:
        if len(room_id) != _V12_ROOM_ID_LENGTH or not set(room_id[1:]) <= _URLSAFE_BASE64:
            raise InvalidEvent("'room_id' must be '!' + the create event's hash in this room version")
        # v12 auth rule 3.2 forbids citing the create event; Synapse drops such PDUs outright
        # (event_from_pdu_json), so do we: nobody can then store it as merely rejected.
        if "$" + room_id[1:] in event.auth_event_ids:
            raise InvalidEvent("auth_events must not list the create event in this room version")
    else:
        if server_name_of(room_id) is None:
            raise InvalidEvent("'room_id' must be !opaque:server in this room version")


def _check_signatures_shape(signatures: Any) -> None:
    """`signatures` maps server names to {key ID: base64 signature} (appendices, Signing JSON);
    anything else would trip the verifier later."""
    if not isinstance(signatures, dict):
        raise InvalidEvent("'signatures' must be an object")
    for server, by_key in signatures.items():
        if not isinstance(by_key, dict) or not all(
            isinstance(key_id, str) and isinstance(sig, str) for key_id, sig in by_key.items()
        ):
            raise InvalidEvent(f"'signatures.{server}' must map key IDs to signatures")


def is_third_party_invite(event: Event) -> bool:
    return event.type == "m.room.member" and event.membership == "invite" and "third_party_invite" in event.content


def required_signers(event: Event, origin: str | None = None) -> tuple[str, ...]:
    """The servers whose valid signatures the event needs (check 2), without duplicates.

    https://spec.matrix.org/v1.19/server-server-api/#validating-hashes-and-signatures-on-received-events
    and each room version's "Events must be signed by the server denoted by the sender":
    - the sender's server. A third-party invite is the exception ("the server which actually
      sends the event may be a different server"): when its sender's server did not sign it,
      the server that sent it to us (`origin`) must have;
    - v1-v2: also the server of the event ID, when it differs;
    - v8+ (restricted rooms): a join naming `join_authorised_via_users_server` needs the
      signature of that user's server too (auth rule 5.2: "If the event is not validly signed
      by the homeserver of the user ID denoted by the key, reject"). As Synapse does, this
      is checked on joins only, and failing it drops the event.
    Raises InvalidEvent when the list cannot be made (a malformed authorising user).
    """
    room_version = event.room_version
    signatures = event.pdu.get("signatures") or {}
    sender_server = server_name_of(event.sender)
    assert sender_server is not None  # parse_pdu checked the sender is a user ID
    signers = [sender_server]
    if is_third_party_invite(event) and sender_server not in signatures:
        if origin is None:
            raise InvalidEvent("a third-party invite must be signed by its sender's server or its origin")
        signers = [origin]
    if room_version.event_format is EventFormat.V1:
        event_id_server = server_name_of(event.event_id)
        assert event_id_server is not None  # check_pdu_format checked it
        signers.append(event_id_server)
    if room_version.auth.restricted_join_rule and event.membership == "join" and AUTHORISING_USER in event.content:
        via = event.content[AUTHORISING_USER]
        if not isinstance(via, str) or not is_valid_user_id(via):
            raise InvalidEvent(f"'{AUTHORISING_USER}' must be a user ID")
        signers.append(server_name_of(via))  # type: ignore[arg-type]
    return tuple(dict.fromkeys(signers))


# --- 4-6: auth rules ---------------------------------------------------------------------------

class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    # https://spec.matrix.org/v1.19/server-server-api/#rejection: stored, but neither relayed
    # to clients nor used as a prev event, nor applied to the state.
    REJECTED = "rejected"
    # https://spec.matrix.org/v1.19/server-server-api/#soft-failure: stored and part of the DAG
    # and of state resolution, but neither relayed to clients nor made a forward extremity.
    SOFT_FAILED = "soft_failed"


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    outcome: Outcome
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def rejected(self) -> bool:
        return self.outcome is Outcome.REJECTED

    @property
    def soft_failed(self) -> bool:
        return self.outcome is Outcome.SOFT_FAILED


ACCEPTED = AuthVerdict(Outcome.ACCEPTED)


def create_event_id_of(event: Event) -> str | None:
    """v12: the ID of the room's create event, implied by the room ID; None before v12 (it is
    listed among the auth events there) and for a create event itself."""
    if event.room_version.auth.room_id_from_create_event and event.type != "m.room.create":
        return "$" + event.room_id[1:]
    return None


def missing_auth_event_ids(event: Event, auth_events_by_id: Mapping[str, Event]) -> tuple[str, ...]:
    """The auth events (and, v12, the create event) the caller must fetch before check 4."""
    wanted = list(event.auth_event_ids)
    if (create_id := create_event_id_of(event)) is not None:
        wanted.append(create_id)
    return tuple(e for e in dict.fromkeys(wanted) if e not in auth_events_by_id)


def check_against_auth_events(event: Event, auth_events_by_id: Mapping[str, Event],
                              rejected_event_ids: frozenset[str] | set[str] = frozenset()) -> AuthVerdict:
    """Check 4: the event passes the auth rules against its own auth events.

    `auth_events_by_id` holds the event's auth events, and from v12 also the room's create
    event (its ID is the room ID with '$': see `create_event_id_of`); extra entries are
    ignored. Fetch what `missing_auth_event_ids` names first: an auth event still unknown
    rejects the event. `rejected_event_ids` are those of them this server rejected (rule 3.3).
    """
    missing = missing_auth_event_ids(event, auth_events_by_id)
    if missing:
        return AuthVerdict(Outcome.REJECTED, f"unknown auth events {list(missing)}")
    try:
        # Rule 3 (v12 numbering): no duplicates, only what auth events selection picks, none
        # rejected, all in the event's room.
        check_auth_events(event, auth_events_by_id, frozenset(rejected_event_ids))
        auth_state: dict[tuple[str, str], Event] = {}
        if (create_id := create_event_id_of(event)) is not None:
            # v12 rule 2: the room ID names an accepted create event.
            if create_id in rejected_event_ids:
                raise AuthError("2: the room's create event was rejected")
            create = auth_events_by_id[create_id]
            if create.type != "m.room.create" or create.state_key != "":
                raise AuthError("2: the room ID does not name a create event")
            auth_state[("m.room.create", "")] = create
        for auth_id in event.auth_event_ids:
            auth = auth_events_by_id[auth_id]
            auth_state[(auth.type, auth.state_key or "")] = auth
        check(event, auth_state)
    except AuthError as err:
        return AuthVerdict(Outcome.REJECTED, str(err))
    return ACCEPTED


def check_against_state(event: Event, state_before: StateMap, current_state: StateMap | None = None) -> AuthVerdict:
    """Checks 5 and 6: the auth rules against the state before the event (else REJECTED), then
    against the room's current state — the resolved state of its forward extremities — (else
    SOFT_FAILED). Pass `current_state=None` when it is the state before the event (the event
    extends the current extremities) or when soft failure does not apply (backfill, outliers).
    State maps hold (type, state_key) -> Event, the create event included.
    """
    try:
        check(event, state_before)
    except AuthError as err:
        return AuthVerdict(Outcome.REJECTED, str(err))
    if current_state is not None and current_state is not state_before:
        try:
            check(event, current_state)
        except AuthError as err:
            return AuthVerdict(Outcome.SOFT_FAILED, str(err))
    return ACCEPTED
