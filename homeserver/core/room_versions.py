"""Room versions as values: each version is a frozen record of rule sets, one per concern.

Spec: https://spec.matrix.org/v1.19/rooms/ . Each version is built from the previous one with
`dataclasses.replace`, changing only what that version changed; each flag names the version
that introduced it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class UnsupportedRoomVersion(ValueError):
    """A room version this server does not know."""


class EventFormat(enum.Enum):
    # v1, v2: the event ID is a field of the PDU, `$opaque:server`; prev/auth events are
    # [event_id, {hashes}] pairs. https://spec.matrix.org/v1.19/rooms/v1/#event-format
    V1 = 1
    # v3: the event ID is '$' + the reference hash in standard unpadded base64.
    # https://spec.matrix.org/v1.19/rooms/v3/#event-format
    V2 = 2
    # v4-v11: as V2 with URL-safe unpadded base64. https://spec.matrix.org/v1.19/rooms/v4/#event-format
    V3 = 3
    # v12: as V3; the create event has no room_id, and the room ID is '!' + the create
    # event's reference hash. https://spec.matrix.org/v1.19/rooms/v12/#event-format
    V4 = 4


class StateResAlgorithm(enum.Enum):
    V1 = 1    # https://spec.matrix.org/v1.19/rooms/v1/#state-resolution
    V2 = 2    # https://spec.matrix.org/v1.19/rooms/v2/#state-resolution
    V2_1 = 3  # https://spec.matrix.org/v1.19/rooms/v12/#state-resolution


@dataclass(frozen=True)
class RedactionRules:
    # v1-v5 keep `aliases` in m.room.aliases content; dropped in v6.
    # https://spec.matrix.org/v1.19/rooms/v6/#redactions
    keep_aliases_content: bool = True
    # v9+: keep `join_authorised_via_users_server` in m.room.member content.
    # https://spec.matrix.org/v1.19/rooms/v9/#redactions
    keep_join_authorised_via_users_server: bool = False
    # v11+: keep all of m.room.create's content, `invite` in power levels, `signed` in
    # member third_party_invite, `redacts` in redaction content; drop top-level `origin`,
    # `membership` and `prev_state`. https://spec.matrix.org/v1.19/rooms/v11/#redactions
    v11_rules: bool = False
    # v8+: keep `allow` in m.room.join_rules content.
    # https://spec.matrix.org/v1.19/rooms/v8/#redactions
    keep_join_rules_allow: bool = False


@dataclass(frozen=True)
class AuthRules:
    # v1-v5: m.room.aliases is authorised by the sender's domain, not by power.
    special_case_aliases_auth: bool = True
    # v6+: canonical JSON rejects floats and out-of-range integers.
    strict_canonical_json: bool = False
    # v6+: `notifications` in power levels is checked like the other keys.
    limit_notifications_power_levels: bool = False
    # v1-v2: a redaction is allowed when the redacted event's domain is the sender's.
    redaction_sender_domain_check: bool = True
    # v7+: the `knock` join rule and membership.
    knock_join_rule: bool = False
    # v8+: the `restricted` join rule.
    restricted_join_rule: bool = False
    # v10+: the `knock_restricted` join rule.
    knock_restricted_join_rule: bool = False
    # v10+: power levels must be integers (no strings).
    enforce_int_power_levels: bool = False
    # v11+: the creator is the create event's sender; content.creator is gone.
    implicit_room_creator: bool = False
    # v12+: creators (sender + additional_creators) have infinite power.
    privileged_room_creators: bool = False
    # v12+: the room ID is derived from the create event.
    room_id_from_create_event: bool = False
    # v1-v11: the create event is listed in auth_events; v12 implies it by room_id.
    create_event_in_auth_events: bool = True


@dataclass(frozen=True)
class SignatureRules:
    # v5+: signing keys must be valid (valid_until_ts) at the event's origin_server_ts.
    # https://spec.matrix.org/v1.19/rooms/v5/#signing-key-validity-period
    enforce_key_validity: bool = False


@dataclass(frozen=True)
class RoomVersion:
    identifier: str
    stable: bool
    event_format: EventFormat
    state_res: StateResAlgorithm
    redaction: RedactionRules
    auth: AuthRules
    signatures: SignatureRules


V1 = RoomVersion("1", True, EventFormat.V1, StateResAlgorithm.V1, RedactionRules(), AuthRules(), SignatureRules())
# v2: state resolution v2.
V2 = replace(V1, identifier="2", state_res=StateResAlgorithm.V2)
# v3: event IDs are hashes; redaction auth no longer compares domains.
V3 = replace(V2, identifier="3", event_format=EventFormat.V2,
             auth=replace(V2.auth, redaction_sender_domain_check=False))
# v4: URL-safe event IDs.
V4 = replace(V3, identifier="4", event_format=EventFormat.V3)
# v5: signing key validity.
V5 = replace(V4, identifier="5", signatures=replace(V4.signatures, enforce_key_validity=True))
# v6: aliases lose their special case, strict canonical JSON, notifications power level.
V6 = replace(V5, identifier="6",
             redaction=replace(V5.redaction, keep_aliases_content=False),
             auth=replace(V5.auth, special_case_aliases_auth=False, strict_canonical_json=True,
                          limit_notifications_power_levels=True))
# v7: knocking.
V7 = replace(V6, identifier="7", auth=replace(V6.auth, knock_join_rule=True))
# v8: restricted joins.
V8 = replace(V7, identifier="8", auth=replace(V7.auth, restricted_join_rule=True),
             redaction=replace(V7.redaction, keep_join_rules_allow=True))
# v9: redaction keeps join_authorised_via_users_server.
V9 = replace(V8, identifier="9", redaction=replace(V8.redaction, keep_join_authorised_via_users_server=True))
# v10: knock_restricted, integer-only power levels.
V10 = replace(V9, identifier="10", auth=replace(V9.auth, knock_restricted_join_rule=True, enforce_int_power_levels=True))
# v11: implicit room creator, new redaction rules.
V11 = replace(V10, identifier="11", auth=replace(V10.auth, implicit_room_creator=True),
              redaction=replace(V10.redaction, v11_rules=True))
# v12: room IDs from the create event, privileged creators, state resolution v2.1.
V12 = replace(V11, identifier="12", event_format=EventFormat.V4, state_res=StateResAlgorithm.V2_1,
              auth=replace(V11.auth, privileged_room_creators=True, room_id_from_create_event=True,
                           create_event_in_auth_events=False))

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)}
DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion:
    try:
        return KNOWN_ROOM_VERSIONS[identifier]
    except (KeyError, TypeError):
        raise UnsupportedRoomVersion(f"unsupported room version {identifier!r}") from None
